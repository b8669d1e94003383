"""A Kinesis record back into the message the device published.

What cannot be read as the rule's record (see ``rule.py``) is not a device's
bad data but a broken envelope (another producer on the stream, a rule edited
by hand); it is quarantined as ``bad_record`` with what was wrong, never
retried: retrying bytes cannot make them readable.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass

from core.ingest.ingestor import Inbound
from core.protocol.limits import MAX_PAYLOAD_BYTES

BAD_RECORD = "bad_record"
# topic + base64 payload (4/3) + a little JSON: anything longer is not ours
MAX_RECORD_BYTES = 8192 + MAX_PAYLOAD_BYTES * 4 // 3 + 256


class BadRecord(ValueError):
    """The record is not one the rule writes; ``str()`` says why."""


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One Kinesis record: where it sits on its shard, and what it carries."""

    sequence_number: str
    partition_key: str
    data: bytes

    @property
    def position(self) -> int:
        """Kinesis sequence numbers are decimal strings that grow along a shard."""
        return int(self.sequence_number)


def decode_record(data: bytes) -> Inbound:
    """The device's message (topic, the payload's bytes, when IoT Core got it)."""
    if len(data) > MAX_RECORD_BYTES:
        raise BadRecord(f"record of {len(data)} bytes is larger than any the rule writes "
                        f"(at most {MAX_RECORD_BYTES})")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRecord(f"record is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise BadRecord(f"record must be a JSON object, got {type(doc).__name__}")
    topic, payload, received = doc.get("topic"), doc.get("payload"), doc.get("received_at")
    if not isinstance(topic, str) or not topic:
        raise BadRecord(f"record's 'topic' must be non-empty text, got {topic!r}")
    if not isinstance(payload, str):
        raise BadRecord(f"record's 'payload' must be base64 text, got {type(payload).__name__}")
    if isinstance(received, bool) or not isinstance(received, int) or received < 0:
        raise BadRecord(f"record's 'received_at' must be epoch milliseconds, got {received!r}")
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRecord(f"record's 'payload' is not base64: {exc}") from None
    return Inbound(topic, raw, received)
