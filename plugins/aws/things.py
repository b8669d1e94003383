"""AWS IoT's thing registry kept in step with the device registry.

On AWS a device connects to IoT Core as a *thing*: its certificate is
attached to the thing, IoT Jobs target things and thing groups, and fleet
indexing searches them. So every device registered here is also a thing of
the thing type named after its device type, in the thing group named after
its organization; a deleted device's thing is deleted. DynamoDB stays the
record: a thing registry call that fails is logged with the device id and
made good by the device's next change, never turned into a failed edit."""

from __future__ import annotations

import builtins
import contextlib
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from core.model import Device
from core.ports.registry import DeviceQuery, DeviceRegistry
from plugins.aws.dynamodb.registry import DynamoDeviceRegistry

log = logging.getLogger(__name__)

_NAME_BAD = re.compile(r"[^a-zA-Z0-9:_-]")  # thing type and group names
_ATTRIBUTE_BAD = re.compile(r"[^a-zA-Z0-9_.,@/:#=\[\]-]")  # attribute values
_PARALLEL_CALLS = 8


def iot_name(value: str) -> str:
    """A device type or organization as a thing type or group name: IoT allows
    [a-zA-Z0-9:_-]{1,128}, so anything else becomes '-'."""
    return _NAME_BAD.sub("-", value)[:128] or "-"


class ThingRegistry:
    def __init__(self, iot: Any) -> None:
        self._iot = iot
        self._types: set[str] = set()
        self._groups: set[str] = set()

    def put(self, device: Device, *, new: bool = False) -> None:
        """``new``: the device was just registered, so its thing is in no group yet."""
        thing_type, group = iot_name(device.device_type), iot_name(device.organization)
        self._ensure_type(thing_type)
        self._ensure_group(group)
        payload = {"attributes": {
            "organization": _ATTRIBUTE_BAD.sub("-", device.organization)[:800],
            "device_type": _ATTRIBUTE_BAD.sub("-", device.device_type)[:800]}}
        try:
            self._iot.create_thing(thingName=device.device_id, thingTypeName=thing_type,
                                   attributePayload=payload)
        except self._iot.exceptions.ResourceAlreadyExistsException:
            # AWS refuses CreateThing for an existing thing with another configuration
            self._iot.update_thing(thingName=device.device_id, thingTypeName=thing_type,
                                   attributePayload={**payload, "merge": True})
        if not new:  # it may sit in the group of the organization it left
            for other in self._groups_of(device.device_id):
                if other != group:
                    self._iot.remove_thing_from_thing_group(thingGroupName=other,
                                                            thingName=device.device_id)
        self._iot.add_thing_to_thing_group(thingGroupName=group, thingName=device.device_id)

    def remove(self, device_id: str) -> None:
        # never made (or removed by someone else): nothing to keep in step
        with contextlib.suppress(self._iot.exceptions.ResourceNotFoundException):
            self._iot.delete_thing(thingName=device_id)

    def _groups_of(self, thing: str) -> builtins.list[str]:
        groups: builtins.list[str] = []
        token = ""
        while True:
            page = self._iot.list_thing_groups_for_thing(
                thingName=thing, **({"nextToken": token} if token else {}))
            groups += [g["groupName"] for g in page.get("thingGroups", [])]
            token = page.get("nextToken") or ""
            if not token:
                return groups

    def _ensure_type(self, name: str) -> None:
        if name not in self._types:
            with contextlib.suppress(self._iot.exceptions.ResourceAlreadyExistsException):
                self._iot.create_thing_type(thingTypeName=name)
            self._types.add(name)

    def _ensure_group(self, name: str) -> None:
        if name not in self._groups:
            with contextlib.suppress(self._iot.exceptions.ResourceAlreadyExistsException):
                self._iot.create_thing_group(thingGroupName=name)
            self._groups.add(name)


class ThingSyncedRegistry(DeviceRegistry):
    """The DynamoDB registry, with every registration, edit and deletion
    mirrored into the thing registry (devices first heard of in traffic too)."""

    def __init__(self, devices: DynamoDeviceRegistry, things: ThingRegistry) -> None:
        self.devices = devices
        self.things = things

    def upsert(self, device: Device) -> None:
        self.upsert_many([device])

    def upsert_many(self, devices: Sequence[Device]) -> None:
        self.devices.upsert_many(devices)
        self._sync(list({d.device_id: d for d in devices}.values()))

    def record_activity(self, devices: Sequence[Device]) -> None:
        self._sync(self.devices.record_new_activity(devices), new=True)

    def save(self, device: Device, *, expected_version: int | None = None) -> Device:
        saved = self.devices.save(device, expected_version=expected_version)
        self._sync([saved])
        return saved

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        self.devices.delete(device_id, expected_version=expected_version)
        self._guarded(self.things.remove, device_id, device_id)

    def get(self, device_id: str) -> Device:
        return self.devices.get(device_id)

    def find(self, device_id: str) -> Device | None:
        return self.devices.find(device_id)

    def list(self, query: DeviceQuery | None = None) -> builtins.list[Device]:
        return self.devices.list(query)

    def count(self, query: DeviceQuery | None = None) -> int:
        return self.devices.count(query)

    def _sync(self, devices: builtins.list[Device], *, new: bool = False) -> None:
        def put(device: Device) -> None:
            self.things.put(device, new=new)

        if len(devices) <= 1:
            for device in devices:
                self._guarded(put, device, device.device_id)
            return
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_CALLS, len(devices)),
                                thread_name_prefix="iot-things") as pool:
            for device in devices:
                pool.submit(self._guarded, put, device, device.device_id)

    @staticmethod
    def _guarded(call: Any, argument: Any, device_id: str) -> None:
        try:
            call(argument)
        except (BotoCoreError, ClientError) as exc:
            # the device is stored; its thing follows on its next change
            log.warning("the IoT thing of device %s could not be updated: %s", device_id, exc)
