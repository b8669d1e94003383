"""``slot_updater``: the ingest path's copy of a frozen record with a fixed set of
fields changed equals ``dataclasses.replace`` with the same changes."""

from __future__ import annotations

from dataclasses import fields, replace
from datetime import UTC, datetime

import pytest

from core.ingest.fast_records import slot_updater
from core.model import Device, DeviceStatus, LinkStats


def test_equals_replace_and_leaves_the_original_alone() -> None:
    at = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    stats = LinkStats("dev-1", received=5, lost=1, last_seq=9, updated_at=at)
    update = slot_updater(LinkStats, ("received", "last_seq", "updated_at"))
    later = datetime(2026, 12, 4, 12, 1, tzinfo=UTC)
    copy = update(stats, 6, 10, later)
    assert copy == replace(stats, received=6, last_seq=10, updated_at=later)
    assert (stats.received, stats.last_seq) == (5, 9)
    device = Device("dev-1", device_type="pump", tags=frozenset({"a"}),
                    status=DeviceStatus.ONLINE, firmware_version="1.0.0")
    seen = slot_updater(Device, ("last_seen", "firmware_version", "updated_at"))(
        device, later, "1.1.0", later)
    assert seen == replace(device, last_seen=later, firmware_version="1.1.0", updated_at=later)
    assert all(getattr(seen, f.name) is getattr(device, f.name) for f in fields(Device)
               if f.name not in ("last_seen", "firmware_version", "updated_at"))
    with pytest.raises(AttributeError):
        seen.last_seen = at  # type: ignore[misc]  # still frozen


def test_refuses_fields_the_record_does_not_have() -> None:
    with pytest.raises(ValueError, match="nope"):
        slot_updater(LinkStats, ("received", "nope"))
    with pytest.raises(ValueError, match="distinct"):
        slot_updater(LinkStats, ("received", "received"))
