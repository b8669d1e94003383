"""The device registry on DynamoDB (``iot-devices-{stage}``).

Keys: ``device_id`` (hash); the ``OrganizationIndex`` GSI (``organization_id``,
``device_id``) answers "an organization's devices, in id order" with a Query,
page by page. The whole fleet is the organizations listed in
``iot-organizations-{stage}`` (one partition, one Query), each queried on the
index and merged in id order: the seed's ``list_all`` Scans the table, which
reads (and bills) every item on every listing and slows with the fleet.

Edits are conditional on the stored ``version`` (as the SQL store's
``WHERE version = expected``), so of two people saving from the same version
exactly one wins and the other gets ConcurrentModification.
"""

from __future__ import annotations

import builtins
import contextlib
import heapq
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from core.errors import ConcurrentModification, NotFound
from core.model import Device, DeviceStatus, Location
from core.ports.registry import DeviceQuery, DeviceRegistry
from plugins.aws.dynamodb.codec import (
    Item,
    get_int,
    get_json,
    get_num,
    get_stamps,
    get_str,
    get_time,
    iso,
    put_json,
    put_num,
    put_str,
    put_time,
)
from plugins.aws.dynamodb.paging import batch_get, batch_put, query_count, query_items
from plugins.aws.dynamodb.tables import DEVICES_BY_ORGANIZATION, ORGANIZATIONS_PARTITION
from plugins.aws.settings import AwsSettings

# What traffic may change on a known device (record_activity); everything else
# is what people edit.
_DECOMMISSIONED = DeviceStatus.DECOMMISSIONED.value
# Conditional writes in flight at once for one traffic batch (boto3 clients are
# thread-safe; botocore's default pool holds 10 connections).
_PARALLEL_WRITES = 8


class DynamoDeviceRegistry(DeviceRegistry):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("devices")
        self._organizations = settings.table("organizations")
        self._page = settings.page_size
        self._known_organizations: set[str] = set()

    # -- writes ---------------------------------------------------------------

    def upsert(self, device: Device) -> None:
        self.upsert_many([device])

    def upsert_many(self, devices: Sequence[Device]) -> None:
        """BatchWriteItem, 25 items a request. The version counts saves as in the
        SQL store's upsert, so the stored versions are read first (BatchGetItem);
        a save racing a bulk upsert is last-writer-wins, as the SQL upsert is."""
        latest = {d.device_id: d for d in devices}  # last one wins within a batch
        if not latest:
            return
        versions = {get_str(i, "device_id"): get_int(i, "version")
                    for i in batch_get(self._client, self._table, _keys(latest),
                                       projection="device_id, version")}
        self._remember_organizations(d.organization for d in latest.values())
        batch_put(self._client, self._table, [
            _to_item(replace(d, version=versions.get(d.device_id, 0) + 1))
            for d in latest.values()])

    def save(self, device: Device, *, expected_version: int | None = None) -> Device:
        """One UpdateItem conditional on the item existing (and on its version
        when one is expected); the version is incremented by DynamoDB itself."""
        item = _to_item(device)
        del item["device_id"], item["version"]
        names: dict[str, str] = {"#v": "version"}
        values: dict[str, Any] = {":one": {"N": "1"}}
        sets = ["#v = #v + :one"]
        for i, (attribute, value) in enumerate(sorted(item.items())):
            names[f"#a{i}"] = attribute
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        removed = sorted(_OPTIONAL_ATTRIBUTES - item.keys())
        for i, attribute in enumerate(removed):
            names[f"#r{i}"] = attribute
        condition = "attribute_exists(device_id)"
        if expected_version is not None:
            condition += " AND #v = :expected"
            values[":expected"] = {"N": str(expected_version)}
        expression = "SET " + ", ".join(sets)
        if removed:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(removed)))
        self._remember_organizations([device.organization])
        try:
            answer = self._client.update_item(
                TableName=self._table, Key={"device_id": {"S": device.device_id}},
                UpdateExpression=expression, ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW")
        except self._client.exceptions.ConditionalCheckFailedException:
            raise self._missing_or_stale(device.device_id, expected_version) from None
        return _to_domain(answer["Attributes"])

    def record_activity(self, devices: Sequence[Device]) -> None:
        self.record_new_activity(devices)

    def record_new_activity(self, devices: Sequence[Device]) -> builtins.list[Device]:
        """record_activity, returning the devices it registered (first heard of).

        New devices are put whole (only if still absent); for known ones only
        the traffic-derived attributes change, and never on a decommissioned
        device, so a person's edits and decisions win over the hub's copy.

        Conditional writes cannot be batched (BatchWriteItem takes no
        conditions, and one failed condition cancels a whole transaction), so
        they go out a few at a time in parallel: an ingest batch of hundreds of
        devices costs a few round trips of latency, not hundreds."""
        latest = {d.device_id: d for d in devices}
        if not latest:
            return []
        stored = self._stored_types(latest)
        self._remember_organizations(d.organization for d in latest.values()
                                     if d.device_id not in stored)

        def record(device: Device) -> Device | None:
            if device.device_id not in stored and self._insert_new(device):
                return device
            self._update_traffic(device, generic=stored.get(device.device_id) == "generic")
            return None

        if len(latest) == 1:
            outcomes = [record(next(iter(latest.values())))]
        else:
            with ThreadPoolExecutor(max_workers=min(_PARALLEL_WRITES, len(latest)),
                                    thread_name_prefix="dynamodb-activity") as pool:
                # .result() hands the first failure to the caller
                outcomes = [done.result() for done in
                            [pool.submit(record, d) for d in latest.values()]]
        return [replace(d, version=1) for d in outcomes if d is not None]

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        condition = "attribute_exists(device_id)"
        values: dict[str, Any] = {}
        if expected_version is not None:
            condition += " AND version = :expected"
            values[":expected"] = {"N": str(expected_version)}
        try:
            self._client.delete_item(TableName=self._table,
                                     Key={"device_id": {"S": device_id}},
                                     ConditionExpression=condition,
                                     **({"ExpressionAttributeValues": values} if values else {}))
        except self._client.exceptions.ConditionalCheckFailedException:
            raise self._missing_or_stale(device_id, expected_version) from None

    # -- reads ----------------------------------------------------------------

    def get(self, device_id: str) -> Device:
        device = self.find(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} is not registered")
        return device

    def find(self, device_id: str) -> Device | None:
        answer = self._client.get_item(TableName=self._table,
                                       Key={"device_id": {"S": device_id}},
                                       ConsistentRead=True)
        item = answer.get("Item")
        return None if item is None else _to_domain(item)

    def list(self, query: DeviceQuery | None = None) -> builtins.list[Device]:
        q = query or DeviceQuery()
        matching = (d for d in map(_to_domain, self._items_in_id_order(q)) if _matches(d, q))
        out: builtins.list[Device] = []
        skipped = 0
        for device in matching:
            if skipped < q.offset:
                skipped += 1
                continue
            if q.limit is not None and len(out) >= q.limit:
                break
            out.append(device)
        return out

    def count(self, query: DeviceQuery | None = None) -> int:
        q = query or DeviceQuery()
        if _only_organizations(q):
            # nothing to filter: DynamoDB counts, no item is transferred
            return sum(query_count(self._client, self._page, **self._by_organization(org))
                       for org in self._organizations_of(q))
        return sum(1 for d in map(_to_domain, self._items_in_id_order(q)) if _matches(d, q))

    def organizations(self) -> builtins.list[str]:
        """Every organization that has (had) devices, from its own table."""
        return [str(get_str(i, "organization_id")) for i in query_items(
            self._client, self._page, TableName=self._organizations,
            KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": ORGANIZATIONS_PARTITION}})]

    # -- helpers --------------------------------------------------------------

    def _organizations_of(self, q: DeviceQuery) -> builtins.list[str]:
        return sorted(q.organizations) if q.organizations else self.organizations()

    def _by_organization(self, organization: str, after: str = "") -> dict[str, Any]:
        if not after:
            return {"TableName": self._table, "IndexName": DEVICES_BY_ORGANIZATION,
                    "KeyConditionExpression": "organization_id = :o",
                    "ExpressionAttributeValues": {":o": {"S": organization}}}
        # the index's sort key: DynamoDB starts reading at the id, nothing before it
        return {"TableName": self._table, "IndexName": DEVICES_BY_ORGANIZATION,
                "KeyConditionExpression": "organization_id = :o AND device_id > :a",
                "ExpressionAttributeValues": {":o": {"S": organization},
                                              ":a": {"S": after}}}

    def _items_in_id_order(self, q: DeviceQuery) -> Iterator[Item]:
        """Each organization's index partition is sorted by device id; merging
        them lazily keeps the fleet in id order and reads only the pages a
        limited listing needs. A page after the first starts each partition's
        Query at the last id read (``q.after``), so page 20 reads what page 1
        reads, not the 19 pages before it."""
        # A limited listing asks each partition for about what it needs: a page
        # of 500 plus the one telling whether more follow is one Query, not two.
        page = self._page if q.limit is None else min(max(q.limit, 100), 1000)
        streams = [query_items(self._client, page, **self._by_organization(org, q.after))
                   for org in self._organizations_of(q)]
        return heapq.merge(*streams, key=lambda item: str(get_str(item, "device_id")))

    def _stored_types(self, latest: dict[str, Device]) -> dict[str, str]:
        found = batch_get(self._client, self._table, _keys(latest),
                          projection="device_id, device_type")
        return {str(get_str(i, "device_id")): str(get_str(i, "device_type")) for i in found}

    def _insert_new(self, device: Device) -> bool:
        """Put the device only if no one registered it in the meantime."""
        try:
            self._client.put_item(TableName=self._table,
                                  Item=_to_item(replace(device, version=1)),
                                  ConditionExpression="attribute_not_exists(device_id)")
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def _update_traffic(self, device: Device, *, generic: bool) -> None:
        names = {"#s": "status", "#u": "updated_at"}
        values: dict[str, Any] = {":s": {"S": device.status.value},
                                  ":u": {"S": iso(device.updated_at)},
                                  ":retired": {"S": _DECOMMISSIONED}}
        sets = ["#s = :s", "#u = :u"]
        if device.last_seen is not None:
            names["#l"] = "last_seen"
            values[":l"] = {"S": iso(device.last_seen)}
            sets.append("#l = :l")
        if device.firmware_version:
            names["#f"] = "firmware_version"
            values[":f"] = {"S": device.firmware_version}
            sets.append("#f = :f")
        if generic:
            # a device first heard of through a bare Last Will is "generic"
            # until its first telemetry says what it is
            names["#t"] = "device_type"
            values[":t"] = {"S": device.device_type}
            sets.append("#t = :t")
        # refused when decommissioned (it stays so) or deleted meanwhile (traffic
        # does not revive it)
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.update_item(
                TableName=self._table, Key={"device_id": {"S": device.device_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(device_id) AND #s <> :retired",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values)

    def _remember_organizations(self, organizations: Iterable[str]) -> None:
        new = sorted(set(organizations) - self._known_organizations)
        if not new:
            return
        batch_put(self._client, self._organizations, [
            {"kind": {"S": ORGANIZATIONS_PARTITION}, "organization_id": {"S": org}}
            for org in new])
        self._known_organizations.update(new)

    def _missing_or_stale(self, device_id: str, expected_version: int | None) -> Exception:
        current = self.find(device_id)
        if current is None:
            return NotFound(f"device {device_id!r} is not registered")
        return ConcurrentModification(
            f"device {device_id} changed since version {expected_version} (it is now version "
            f"{current.version}); read it again and retry")


_OPTIONAL_ATTRIBUTES = frozenset({"name", "latitude", "longitude", "location_label",
                                  "firmware_version", "last_seen", "tags"})


def _keys(devices: dict[str, Device]) -> builtins.list[Item]:
    return [{"device_id": {"S": device_id}} for device_id in devices]


def _only_organizations(q: DeviceQuery) -> bool:
    return not (q.text or q.statuses or q.device_types or q.tag or q.firmware_version
                or q.limit is not None or q.offset or q.after)


def _matches(d: Device, q: DeviceQuery) -> bool:
    """The filters the SQL store applies in its WHERE clause, here on the items
    the key condition selected (they cost the same reads either way)."""
    if q.text:
        needle = q.text.lower()
        label = d.location.label if d.location else ""
        if not any(needle in s.lower() for s in (d.device_id, d.name, label)):
            return False
    if q.statuses and d.status not in q.statuses:
        return False
    if q.device_types and d.device_type not in q.device_types:
        return False
    if q.organizations and d.organization not in q.organizations:
        return False
    if q.tag and q.tag not in d.tags:
        return False
    return not (q.firmware_version and d.firmware_version != q.firmware_version)


def _to_item(d: Device) -> Item:
    item: Item = {"device_id": {"S": d.device_id}}
    put_str(item, "name", d.name)
    put_str(item, "device_type", d.device_type)
    put_str(item, "status", d.status.value)
    put_str(item, "organization_id", d.organization)
    if d.location is not None:
        put_num(item, "latitude", d.location.latitude)
        put_num(item, "longitude", d.location.longitude)
        put_str(item, "location_label", d.location.label)
    put_str(item, "firmware_version", d.firmware_version)
    if d.tags:
        item["tags"] = {"SS": sorted(d.tags)}
    put_json(item, "metadata", d.metadata)
    put_time(item, "created_at", d.created_at)
    put_time(item, "updated_at", d.updated_at)
    put_time(item, "last_seen", d.last_seen)
    put_num(item, "version", max(d.version, 1))
    return item


def _to_domain(item: Item) -> Device:
    latitude, longitude = get_num(item, "latitude"), get_num(item, "longitude")
    location = None
    if latitude is not None and longitude is not None:
        location = Location(latitude, longitude, get_str(item, "location_label") or "")
    created, updated = get_stamps(item, "devices")
    return Device(
        device_id=str(get_str(item, "device_id")),
        name=get_str(item, "name") or "",
        device_type=get_str(item, "device_type") or "generic",
        status=DeviceStatus.parse(get_str(item, "status") or "offline"),
        organization=get_str(item, "organization_id") or "default",
        location=location,
        firmware_version=get_str(item, "firmware_version"),
        tags=frozenset(item.get("tags", {}).get("SS", ())),
        metadata=get_json(item, "metadata", {}),
        created_at=created,
        updated_at=updated,
        last_seen=get_time(item, "last_seen"),
        version=get_int(item, "version", 1),
    )
