"""Listing a large fleet through the HTTP client against the hub's API on a
real store (SQLite; PostgreSQL too when SMARTIOT_TEST_PG_URL is set): every
device comes back exactly once, in id order, also when devices are added
and removed while the pages are read, and a token the server did not issue
is a 400 naming ``next``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from core.errors import SmartIotError
from core.model import Alert, Device, DeviceStatus, Reading, Severity
from core.model.roles import Role
from core.ports.registry import DeviceQuery
from core.services.device_lookup import CachedDeviceLookup
from core.store import Store
from plugins.api.client import HttpFleetApi, StaticToken
from tests.integration.api.conftest import Api, start_api

ORG = "demo"
FLEET = 2_000
PAGE = 97  # small and odd: many pages, none lines up with the fleet's size


def _device(i: int, org: str = ORG) -> Device:
    return Device(f"dev-{i:05d}", name=f"Pump {i}", device_type="pump",
                  status=DeviceStatus.ONLINE if i % 3 else DeviceStatus.OFFLINE,
                  organization=org)


@pytest.fixture
def fleet_api(store: Store, tmp_path: Path) -> Iterator[tuple[Api, HttpFleetApi]]:
    store.registry.upsert_many([_device(i) for i in range(FLEET)]
                               + [_device(i, "other") for i in range(FLEET, FLEET + 50)])
    gen = start_api(store, tmp_path)
    server = next(gen)
    token = server.client.tokens.issue("support-1", Role.SUPPORT, ORG)
    try:
        yield server, HttpFleetApi(server.client.base, StaticToken(token), retries=0)
    finally:
        gen.close()  # type: ignore[attr-defined]


def test_every_device_once_in_order(fleet_api: tuple[Api, HttpFleetApi]) -> None:
    _server, http = fleet_api
    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = http.devices.list(limit=PAGE, next_token=token)
        assert len(page.items) <= PAGE
        seen.extend(d.device_id for d in page.items)
        pages += 1
        if not page.next:
            break
        token = page.next
    assert seen == [f"dev-{i:05d}" for i in range(FLEET)]  # the other organization's: none
    assert pages == -(-FLEET // PAGE)
    assert [d.device_id for d in http.devices.all()] == seen


def test_devices_added_and_removed_while_paging(fleet_api: tuple[Api, HttpFleetApi]) -> None:
    """Removing a device already read does not make the next page skip one
    (as an offset would), and a device added ahead of the reader appears once."""
    server, http = fleet_api
    registry = server.store.registry
    first = http.devices.list(limit=PAGE)
    second = http.devices.list(limit=PAGE, next_token=first.next)
    for d in first.items[:10]:
        registry.delete(d.device_id)
    registry.upsert(_device(1_500_000))  # sorts after everything: "dev-1500000"
    registry.upsert(Device("dev-00000a", device_type="pump", organization=ORG))  # behind
    seen = [d.device_id for d in first.items + second.items]
    token = second.next
    while token:
        page = http.devices.list(limit=PAGE, next_token=token)
        seen.extend(d.device_id for d in page.items)
        token = page.next
    expected = [f"dev-{i:05d}" for i in range(FLEET)] + ["dev-1500000"]
    assert seen == expected
    assert len(set(seen)) == len(seen)


def test_filtered_listing_pages_to_the_end(fleet_api: tuple[Api, HttpFleetApi]) -> None:
    _server, http = fleet_api
    offline = http.devices.all(DeviceQuery(statuses=frozenset({DeviceStatus.OFFLINE})))
    assert [d.device_id for d in offline] == [f"dev-{i:05d}" for i in range(0, FLEET, 3)]


def test_overview_pages_carry_their_devices_values_and_alerts(
        fleet_api: tuple[Api, HttpFleetApi]) -> None:
    server, http = fleet_api
    now = datetime.now(UTC)
    server.store.telemetry.write_batch([Reading("dev-00150", "battery_pct", now, 42.0),
                                  Reading("dev-01999", "rssi", now, -71.0)])
    server.store.alerts.add(Alert("dev-01998", "r1", Severity.CRITICAL, "too hot"))
    pages = list(http.devices.overview_pages(limit=PAGE))
    assert pages[0].total == FLEET and all(p.total is None for p in pages[1:])
    assert all(len(p.overview.devices) <= PAGE for p in pages)
    ids = [d.device_id for p in pages for d in p.overview.devices]
    assert ids == [f"dev-{i:05d}" for i in range(FLEET)]
    where = {d.device_id: p.overview for p in pages for d in p.overview.devices}
    assert where["dev-00150"].latest_values["dev-00150"]["battery_pct"] == 42.0
    assert where["dev-01999"].latest_values["dev-01999"]["rssi"] == -71.0
    assert where["dev-01998"].alert_counts == {"dev-01998": 1}
    assert where["dev-01998"].worst == {"dev-01998": Severity.CRITICAL}
    whole = http.devices.overview()
    assert [d.device_id for d in whole.devices] == ids
    summary = http.devices.open_alerts(["dev-01998", "dev-00001", "dev-02010"])
    assert summary.counts == {"dev-01998": 1, "dev-00001": 0}  # another org's: unknown
    assert summary.worst["dev-01998"] is Severity.CRITICAL


@pytest.mark.parametrize("path", ["/devices", "/devices/overview", "/alerts"])
@pytest.mark.parametrize("token", ["not-a-token", "eyJvIjotNX0", "eyJvIjoxLCJhIjo1fQ", "%%%"])
def test_a_token_the_server_did_not_issue_is_a_400_naming_next(
        fleet_api: tuple[Api, HttpFleetApi], path: str, token: str) -> None:
    server, _http = fleet_api
    reply = server.client.call("GET", f"{path}?limit=5&next={token}", role=Role.SUPPORT,
                               org=ORG)
    assert reply.status == 400, reply.body
    assert "next" in reply.error["message"]
    assert "first page" in reply.error["message"]


def test_records_by_id_in_the_order_asked_and_only_the_callers(
        fleet_api: tuple[Api, HttpFleetApi]) -> None:
    server, http = fleet_api
    found = http.devices.get_many(["dev-01998", "no-such", "dev-00001", "dev-02010",
                                   "dev-01998"])
    assert [d.device_id for d in found] == ["dev-01998", "dev-00001"]  # dev-02010: "other"
    assert found[0] == server.store.registry.find("dev-01998")
    too_many = ",".join(f"dev-{i:05d}" for i in range(201))
    reply = server.client.call("GET", f"/devices/records?ids={too_many}", role=Role.SUPPORT,
                               org=ORG)
    assert reply.status == 400
    assert reply.error["message"] == "ids: 201 devices; ask for at most 200 at a time"


def test_a_status_burst_is_looked_up_a_hundred_devices_a_request(
        fleet_api: tuple[Api, HttpFleetApi]) -> None:
    """A console following a hub through its API, 1,000 devices coming online:
    ten requests, not a thousand; then the cache; unknown ids are remembered
    as unknown too."""
    _server, http = fleet_api
    paths: list[str] = []
    real_get = http.http.get

    def counting_get(path: str, query: Any = None) -> Any:
        paths.append(path)
        return real_get(path, query)

    http.http.get = counting_get  # type: ignore[method-assign]
    lookup = CachedDeviceLookup(SimpleNamespace(api=http))
    ids = [f"dev-{i:05d}" for i in range(1000)] + ["no-such"]
    found = lookup.find_many(ids)
    assert sorted(found) == ids[:-1]
    assert found["dev-00042"].name == "Pump 42"
    assert paths == ["/devices/records"] * 11
    assert lookup.find_many([*ids[:500], "no-such"]) == {i: found[i] for i in ids[:500]}
    assert lookup.find("dev-00007") == found["dev-00007"]
    assert len(paths) == 11  # all from the cache


def test_hostile_ids_are_a_400_naming_ids(fleet_api: tuple[Api, HttpFleetApi]) -> None:
    """Control characters and an over-long id are the caller's error, said as
    one (a NUL reached PostgreSQL as a 500 before), and so is SQL in an id."""
    server, http = fleet_api
    for bad in ["dev-00001%00", "%1B%5B31mred", "x" * 2_000, "dev-00002'%20OR%20'1'='1"]:
        for path in ("/devices/records", "/devices/open-alerts"):
            reply = server.client.call("GET", f"{path}?ids=dev-00005,{bad}",
                                       role=Role.SUPPORT, org=ORG)
            assert reply.status == 400, (path, bad, reply.body)
            assert reply.error["message"].startswith("ids: ")
    with pytest.raises(SmartIotError, match=r"^ids: device id"):
        http.devices.get_many(["dev-00002' OR '1'='1", "dev-00005"])
