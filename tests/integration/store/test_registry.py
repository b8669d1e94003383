from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.errors import NotFound
from core.model import Device, DeviceStatus, Location
from core.ports.registry import DeviceQuery
from core.store import Store

T0 = datetime(2024, 5, 1, 8, 0, 0, 123456, tzinfo=UTC)


def _device(n: int, **kw: object) -> Device:
    base: dict[str, object] = {
        "device_id": f"dev-{n:03d}",
        "name": f"Pump {n}",
        "device_type": "pump" if n % 2 else "sensor",
        "status": DeviceStatus.ONLINE if n % 3 else DeviceStatus.OFFLINE,
        "organization": "acme" if n < 6 else "globex",
        "tags": frozenset({"north"} if n % 4 == 0 else {"south", "lab"}),
        "firmware_version": "1.0.0" if n < 4 else "1.1.0",
        "created_at": T0,
        "updated_at": T0 + timedelta(seconds=n),
    }
    base.update(kw)
    return Device(**base)  # type: ignore[arg-type]


def test_device_round_trips_all_fields(store: Store) -> None:
    device = Device(
        device_id="th:ermo_1-A",
        name="Thermostat ünïcode",
        device_type="thermostat",
        status=DeviceStatus.WARNING,
        organization="acme",
        location=Location(52.52, 13.405, "Pump house 3"),
        firmware_version="2.0.0-rc.1",
        tags=frozenset({"a", "b c"}),
        metadata={"serial": 42, "nested": {"x": [1, 2.5, None]}},
        created_at=T0,
        updated_at=T0 + timedelta(minutes=1),
        last_seen=T0 + timedelta(minutes=2),
    )
    store.registry.upsert(device)
    assert store.registry.get(device.device_id) == device
    assert store.registry.find("missing") is None
    with pytest.raises(NotFound):
        store.registry.get("missing")


def test_upsert_replaces_fields_and_tags(store: Store) -> None:
    store.registry.upsert(_device(1))
    changed = _device(1, name="Renamed", tags=frozenset({"only"}), location=None)
    store.registry.upsert(changed)
    assert store.registry.get("dev-001") == changed
    assert store.registry.count() == 1
    assert store.registry.list(DeviceQuery(tag="south")) == []


def test_upsert_many_and_delete(store: Store) -> None:
    devices = [_device(n) for n in range(10)]
    store.registry.upsert_many(devices)
    assert store.registry.list() == sorted(devices, key=lambda d: d.device_id)
    store.registry.delete("dev-004")
    assert store.registry.count() == 9
    assert store.registry.list(DeviceQuery(text="dev-004")) == []
    with pytest.raises(NotFound):
        store.registry.delete("dev-004")


def test_device_query_filters(store: Store) -> None:
    devices = {d.device_id: d for d in (_device(n) for n in range(12))}
    store.registry.upsert_many(list(devices.values()))

    def ids(q: DeviceQuery) -> list[str]:
        got = [d.device_id for d in store.registry.list(q)]
        assert store.registry.count(q) == len(got) or q.limit is not None
        return got

    def expect(pred: object) -> list[str]:
        return sorted(i for i, d in devices.items() if pred(d))  # type: ignore[operator]

    assert ids(DeviceQuery(text="PUMP 1")) == ["dev-001", "dev-010", "dev-011"]
    assert ids(DeviceQuery(text="%")) == []  # LIKE wildcards are escaped
    assert ids(DeviceQuery(statuses=frozenset({DeviceStatus.OFFLINE}))) == expect(
        lambda d: d.status is DeviceStatus.OFFLINE
    )
    assert ids(DeviceQuery(device_types=frozenset({"pump"}))) == expect(
        lambda d: d.device_type == "pump"
    )
    assert ids(DeviceQuery(organizations=frozenset({"globex"}))) == expect(
        lambda d: d.organization == "globex"
    )
    assert ids(DeviceQuery(tag="north")) == ["dev-000", "dev-004", "dev-008"]
    assert ids(DeviceQuery(firmware_version="1.0.0")) == [
        "dev-000",
        "dev-001",
        "dev-002",
        "dev-003",
    ]
    combined = DeviceQuery(
        device_types=frozenset({"sensor"}), organizations=frozenset({"acme"}), tag="lab"
    )
    assert ids(combined) == ["dev-002"]
    assert ids(DeviceQuery(limit=3, offset=2)) == ["dev-002", "dev-003", "dev-004"]
    assert store.registry.count(DeviceQuery(tag="north")) == 3


def test_record_activity_never_overwrites_edits_or_revives_decommissioned(store):
    from dataclasses import replace as _replace
    from datetime import UTC as _UTC
    from datetime import datetime as _dt

    from core.model import DeviceStatus as _Status

    registry = store.registry
    seen = _dt(2026, 11, 26, 12, 0, tzinfo=_UTC)
    hub_copy = Device("act-1", name="", device_type="pump", status=_Status.ONLINE,
                      tags=frozenset({"auto"}), last_seen=seen)
    registry.record_activity([hub_copy])
    assert registry.get("act-1").tags == frozenset({"auto"})
    # a technician renames and re-tags; the hub's stale copy then reports traffic
    registry.upsert(_replace(registry.get("act-1"), name="North pump",
                             tags=frozenset({"hall-a"})))
    later = _dt(2026, 11, 26, 12, 5, tzinfo=_UTC)
    registry.record_activity([_replace(hub_copy, last_seen=later, firmware_version="2.0.0")])
    device = registry.get("act-1")
    assert device.name == "North pump" and device.tags == frozenset({"hall-a"})
    assert device.last_seen == later and device.firmware_version == "2.0.0"
    registry.upsert(_replace(device, status=_Status.DECOMMISSIONED))
    registry.record_activity([_replace(hub_copy, status=_Status.ONLINE)])
    assert registry.get("act-1").status is _Status.DECOMMISSIONED
