"""The device registry keeps AWS IoT's thing registry in step (moto's server
over HTTP): a registered device is a thing of its device type's thing type in
its organization's thing group; moving it moves the thing; deleting it
deletes the thing; traffic creates things only for devices heard of first.

Thing names are the device ids (IoT Core's policies and topics use them), so
the thing registry is shared by every stage of an account: ids here carry the
test's stage so tests on the same moto server never meet."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.model import Device, DeviceStatus
from tests.integration.aws.conftest import DynamoFleet


def _thing(dynamo: DynamoFleet, name: str) -> tuple[str, dict[str, str], list[str]]:
    iot = dynamo.backend.clients.client("iot")
    described = iot.describe_thing(thingName=name)
    groups = [g["groupName"] for g in iot.list_thing_groups_for_thing(
        thingName=name)["thingGroups"]]
    return described.get("thingTypeName", ""), described["attributes"], groups


def test_devices_are_mirrored_as_things_of_their_type_in_their_organizations_group(
        dynamo: DynamoFleet) -> None:
    registry, stage = dynamo.backend.registry, dynamo.settings.stage
    pump, meter, new = f"pump-{stage}", f"meter-{stage}", f"new-{stage}"
    acme, globex = f"acme-{stage}", f"globex-{stage}"
    registry.upsert_many([Device(pump, device_type="pump", organization=acme),
                          Device(meter, device_type="Flow meter v2", organization=globex)])
    assert _thing(dynamo, pump) == ("pump", {"organization": acme, "device_type": "pump"},
                                    [acme])
    # IoT's name alphabet is narrower than a device type's: spaces become '-'
    assert _thing(dynamo, meter)[0] == "Flow-meter-v2"

    moved = registry.save(replace(registry.get(pump), organization=globex,
                                  device_type="valve"))
    assert moved.organization == globex
    assert _thing(dynamo, pump) == ("valve", {"organization": globex,
                                              "device_type": "valve"}, [globex])

    registry.record_activity([Device(pump, device_type="generic", status=DeviceStatus.ONLINE),
                              Device(new, device_type="sensor", organization=acme)])
    assert _thing(dynamo, pump)[0] == "valve"  # traffic does not retype a known device
    assert _thing(dynamo, new) == ("sensor", {"organization": acme, "device_type": "sensor"},
                                   [acme])

    registry.delete(meter)
    iot = dynamo.backend.clients.client("iot")
    with pytest.raises(iot.exceptions.ResourceNotFoundException):
        iot.describe_thing(thingName=meter)
