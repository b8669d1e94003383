"""The device registry on DynamoDB, through moto's server over HTTP: listings
are Queries on the OrganizationIndex followed page by page (never a Scan),
registration is batched, and an edit from an older version is refused by
DynamoDB's own conditional update."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.errors import ConcurrentModification, NotFound
from core.model import Device, DeviceStatus, Location
from core.ports.registry import DeviceQuery
from plugins.aws.dynamodb.tables import DEVICES_BY_ORGANIZATION
from tests.integration.aws.conftest import PAGE, DynamoFleet


def _fleet(n: int = 7) -> list[Device]:
    return [Device(f"pump-{i:02d}", device_type="pump", organization="acme" if i % 2 else "globex",
                   tags=frozenset({"roof"} if i % 3 == 0 else set()),
                   location=Location(48.1, 11.5, f"Site {i}"), metadata={"rated_kw": 1.5 * i})
            for i in range(n)]


def test_listing_an_organization_is_a_paged_query_on_the_index_never_a_scan(
        dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    registry.upsert_many(_fleet(9))
    dynamo.calls.clear()

    acme = registry.list(DeviceQuery(organizations=frozenset({"acme"})))

    assert [d.device_id for d in acme] == ["pump-01", "pump-03", "pump-05", "pump-07"]
    queries = dynamo.calls.named("Query")
    assert {q["IndexName"] for q in queries} == {DEVICES_BY_ORGANIZATION}
    assert all(q["Limit"] == PAGE for q in queries)
    # four items at two a page: the second and later requests continue where the last stopped
    assert len(queries) >= 2 and all("ExclusiveStartKey" in q for q in queries[1:])
    assert "Scan" not in dynamo.calls.operations


def test_the_whole_fleet_is_every_organization_merged_in_id_order_without_a_scan(
        dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    registry.upsert_many(_fleet(9))
    registry.upsert(Device("zz-1", organization="initech"))
    registry.upsert(Device("aa-1", organization="hooli"))
    dynamo.calls.clear()

    everything = registry.list()
    assert [d.device_id for d in everything] == ["aa-1"] + [f"pump-{i:02d}" for i in range(9)] \
        + ["zz-1"]
    assert registry.count() == 11
    assert registry.count(DeviceQuery(organizations=frozenset({"acme"}))) == 4
    # pages cut after the filters, as the SQL store's OFFSET/LIMIT
    page = registry.list(DeviceQuery(limit=3, offset=2))
    assert [d.device_id for d in page] == ["pump-01", "pump-02", "pump-03"]
    assert [d.device_id for d in registry.list(DeviceQuery(tag="roof", text="PUMP"))] == [
        "pump-00", "pump-03", "pump-06"]
    assert registry.count(DeviceQuery(tag="roof")) == 3
    # the organizations' own listing is paged too (4 organizations, 2 a page)
    org_queries = [q for q in dynamo.calls.named("Query") if "IndexName" not in q]
    assert org_queries and any("ExclusiveStartKey" in q for q in org_queries)
    assert "Scan" not in dynamo.calls.operations


def test_registration_is_batched_and_a_record_comes_back_as_it_went_in(
        dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    devices = _fleet(30)
    registry.upsert_many(devices)
    writes = dynamo.calls.named("BatchWriteItem")
    device_writes = [w for w in writes if dynamo.settings.table("devices") in w["RequestItems"]]
    assert [len(w["RequestItems"][dynamo.settings.table("devices")])
            for w in device_writes] == [25, 5]
    stored = registry.get("pump-03")
    assert replace(stored, version=0) == devices[3]
    assert stored.version == 1 and stored.metadata == {"rated_kw": 4.5}
    registry.upsert_many(devices[:2])  # a second upsert counts as a save
    assert registry.get("pump-00").version == 2 and registry.get("pump-03").version == 1


def test_an_edit_from_a_stale_version_is_refused_by_the_conditional_update(
        dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    registry.upsert(Device("pump-1", organization="acme"))
    other = dynamo.second_backend().registry  # another console on the same table
    seen_here, seen_there = registry.get("pump-1"), other.get("pump-1")

    saved = other.save(replace(seen_there, name="Theirs", tags=frozenset({"roof"})),
                       expected_version=seen_there.version)
    assert saved.version == 2 and saved.name == "Theirs"
    with pytest.raises(ConcurrentModification, match=r"changed since version 1 .*now version 2"):
        registry.save(replace(seen_here, name="Mine"), expected_version=seen_here.version)
    with pytest.raises(ConcurrentModification):
        registry.delete("pump-1", expected_version=1)
    kept = registry.get("pump-1")
    assert (kept.name, kept.tags, kept.version) == ("Theirs", frozenset({"roof"}), 2)
    updates = [u for u in dynamo.calls.named("UpdateItem")
               if u["Key"]["device_id"]["S"] == "pump-1"]
    assert updates and "#v = :expected" in updates[-1]["ConditionExpression"]
    # a field removed by an edit is removed from the item
    assert registry.save(replace(kept, location=None, tags=frozenset())).tags == frozenset()
    with pytest.raises(NotFound, match="'ghost' is not registered"):
        registry.save(Device("ghost"), expected_version=1)
    registry.delete("pump-1")
    with pytest.raises(NotFound):
        registry.delete("pump-1")


def test_traffic_updates_only_what_traffic_knows_and_never_revives_a_retired_device(
        dynamo: DynamoFleet) -> None:
    registry = dynamo.backend.registry
    registry.upsert_many([Device("pump-1", name="Main pump", organization="acme"),
                          Device("lw-1", organization="acme"),  # first heard of by Last Will
                          Device("old-1", status=DeviceStatus.DECOMMISSIONED)])
    edited = registry.get("pump-1")
    heard = [replace(edited, name="", status=DeviceStatus.ONLINE, firmware_version="2.0.0"),
             Device("lw-1", device_type="meter", status=DeviceStatus.ONLINE),
             Device("old-1", status=DeviceStatus.ONLINE),
             Device("new-1", device_type="valve", organization="globex")]
    registry.record_activity(heard)
    pump = registry.get("pump-1")
    assert (pump.name, pump.status, pump.firmware_version, pump.version) == (
        "Main pump", DeviceStatus.ONLINE, "2.0.0", edited.version)
    assert registry.get("lw-1").device_type == "meter"
    assert registry.get("old-1").status is DeviceStatus.DECOMMISSIONED
    assert registry.get("new-1").organization == "globex"
    assert [d.device_id for d in registry.list(
        DeviceQuery(organizations=frozenset({"globex"})))] == ["new-1"]
