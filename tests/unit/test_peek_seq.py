"""``peek_seq``: a payload's seq read without decoding it, for a message the
hub drops. Anything unusual answers None (the seq is then awaited as any gap's),
never a wrong seq."""

from __future__ import annotations

import json

import pytest

from core.protocol.payloads import MAX_SEQ, peek_seq


@pytest.mark.parametrize("payload, seq", [
    (json.dumps({"device_id": "d1", "seq": 42, "ts": 1, "metrics": {"t": 1.5}}), 42),
    ('{"seq":7,"ts":1}', 7),
    ('{"ts": 1, "seq" :  0 }', 0),
    ('{"ts": 1, "seq": 12}', 12),
])
def test_a_plain_seq_is_read(payload: str, seq: int) -> None:
    assert peek_seq(payload.encode()) == seq


@pytest.mark.parametrize("payload", [
    '{"ts": 1}',                                       # none
    '{"seq": 1, "metrics": {"seq": 2}}',               # twice
    '{"note": "\\"seq\\": 3", "ts": 1}',           # inside a string
    '{"seq": -1}', '{"seq": 1.5}', '{"seq": "4"}',     # not a plain integer
    '{"seq": 1e3}', '{"seq": true}',
    '{"seq": 99999999999999999}',                      # past 2^53
    '"seq"',                                           # at the start: no object
    '{"seq": 12',                                      # cut short
    '{"seq": ' + "9" * 1000 + "}",                     # a thousand digits
    '{"seq":\x00 5}', '{"seq": 5\x07}',                 # control characters
])
def test_anything_unusual_is_none(payload: str) -> None:
    assert peek_seq(payload.encode()) is None


def test_the_largest_seq_is_read() -> None:
    assert peek_seq(b'{"seq": %d}' % MAX_SEQ) == MAX_SEQ


def test_a_huge_payload_is_read_at_the_speed_of_a_scan() -> None:
    filler = "x" * 8_000_000
    assert peek_seq(f'{{"note": "{filler}", "seq": 3}}'.encode()) == 3
    assert peek_seq(f'{{"note": "{filler}"}}'.encode()) is None
