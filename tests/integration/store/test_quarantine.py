from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from core.model.link import QUARANTINE_PAYLOAD_LIMIT, QuarantinedMessage
from core.store import Store

T0 = datetime(2024, 7, 3, 8, 0, tzinfo=UTC)


def _msg(i: int, reason: str = "bad_json", device: str | None = "dev-1") -> QuarantinedMessage:
    return QuarantinedMessage(
        topic=f"dt/acme/{device or '?'}/telemetry",
        reason=reason,
        detail=f"line {i}: unexpected token",
        payload=b"\x00\xff{not json" + bytes([i % 256]),
        device_id=device,
        received_at=T0 + timedelta(seconds=i),
    )


def test_round_trip_newest_first_with_ids(store: Store) -> None:
    messages = [_msg(i) for i in range(5)]
    store.quarantine.add_many(messages)
    store.quarantine.add_many([])
    got = store.quarantine.list()
    assert [dataclasses.replace(m, message_id=None) for m in got] == messages[::-1]
    ids = [m.message_id for m in got]
    assert all(isinstance(i, int) for i in ids) and len(set(ids)) == 5
    # Same timestamp: the later insert is listed first.
    twin = dataclasses.replace(_msg(4), detail="twin")
    store.quarantine.add_many([twin])
    assert store.quarantine.list(limit=1)[0].detail == "twin"
    assert len(store.quarantine.list(limit=3)) == 3


def test_filters_counts_and_purge(store: Store) -> None:
    store.quarantine.add_many(
        [
            _msg(0, "bad_json", "dev-1"),
            _msg(1, "schema", "dev-1"),
            _msg(2, "schema", "dev-2"),
            _msg(3, "unknown_device", None),
            _msg(4, "schema", "dev-2"),
        ]
    )
    assert [m.received_at for m in store.quarantine.list(reason="schema")] == [
        T0 + timedelta(seconds=s) for s in (4, 2, 1)
    ]
    assert [m.reason for m in store.quarantine.list(device_id="dev-1")] == ["schema", "bad_json"]
    assert len(store.quarantine.list(reason="schema", device_id="dev-2")) == 2
    nobody = store.quarantine.list(reason="unknown_device")
    assert [m.device_id for m in nobody] == [None]
    assert store.quarantine.counts_by_reason() == {"bad_json": 1, "schema": 3, "unknown_device": 1}

    assert store.quarantine.purge_before(T0 + timedelta(seconds=2)) == 2
    assert store.quarantine.counts_by_reason() == {"schema": 2, "unknown_device": 1}
    assert store.quarantine.purge_before(T0) == 0


def test_payload_is_capped_and_oversized_fields_do_not_fail_the_batch(store: Store) -> None:
    big = QuarantinedMessage(
        topic="dt/" + "t" * 2000,
        reason="too_large_" + "x" * 100,
        detail="d" * 10_000,
        payload=bytes(range(256)) * 40,  # 10,240 bytes
        device_id="d" * 300,
        received_at=T0,
    )
    store.quarantine.add_many([big, _msg(1)])
    stored = store.quarantine.list(reason=big.reason[:64])
    assert len(stored) == 1
    (got,) = stored
    assert len(got.payload) == QUARANTINE_PAYLOAD_LIMIT == 4096
    assert got.payload == (bytes(range(256)) * 40)[:4096]
    assert got.topic == big.topic and got.detail == big.detail
    assert got.device_id == "d" * 128
