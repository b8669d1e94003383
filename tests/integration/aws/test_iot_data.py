"""Shadows and commands over AWS IoT's data plane, behind moto's server: the
shadow's version is the lock (a stale version refused with the same error as
the local hub's), and a command is a QoS 1 publish of the protocol's request
on the device's command topic."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.errors import ConcurrentModification, NotFound, SmartIotError
from core.model import Device
from core.ports.commands import CommandOutcome
from core.protocol.payloads import CommandResponse, decode_command_request
from tests.integration.aws.conftest import ApiCalls, DynamoFleet, record_calls


@pytest.fixture
def fleet(dynamo: DynamoFleet) -> DynamoFleet:
    """pump-1 of acme, registered (and so a thing in AWS IoT)."""
    dynamo.backend.registry.upsert(Device("pump-1", device_type="pump", organization="acme"))
    return dynamo


@pytest.fixture
def iot_calls(fleet: DynamoFleet) -> ApiCalls:
    return record_calls(fleet.backend.clients.client("iot-data"), "iot-data")


def device_reports(fleet: DynamoFleet, device_id: str, reported: dict[str, Any]) -> None:
    """The device's own update (as it would publish on .../shadow/update)."""
    fleet.backend.clients.client("iot-data").update_thing_shadow(
        thingName=device_id, payload=json.dumps({"state": {"reported": reported}}).encode())


def test_desired_state_round_trips_with_its_version_and_delta(fleet: DynamoFleet,
                                                              iot_calls: ApiCalls) -> None:
    shadows = fleet.backend.shadows
    fresh = shadows.get("pump-1")
    assert (fresh.version, fresh.desired, fresh.reported) == (0, {}, {})
    first = shadows.update_desired("pump-1", {"interval_s": 30, "led": "on"},
                                   expected_version=0)
    assert (first.version, first.desired) == (1, {"interval_s": 30, "led": "on"})
    device_reports(fleet, "pump-1", {"interval_s": 60, "led": "on"})
    seen = shadows.get("pump-1")
    assert seen.version == 2 and seen.delta == {"interval_s": 30}
    assert seen.updated_at is not None
    after = shadows.update_desired("pump-1", {"led": None}, expected_version=2)
    assert (after.version, after.desired) == (3, {"interval_s": 30})  # None deletes, as IoT
    sent = iot_calls.named("UpdateThingShadow")
    assert sent[0]["thingName"] == "pump-1"
    assert json.loads(sent[-1]["payload"]) == {"state": {"desired": {"led": None}},
                                               "version": 2}


def test_an_update_from_a_stale_version_is_refused_and_changes_nothing(
        fleet: DynamoFleet) -> None:
    shadows = fleet.backend.shadows
    shadows.update_desired("pump-1", {"interval_s": 30})
    other_console = fleet.second_backend().shadows
    other_console.update_desired("pump-1", {"interval_s": 10}, expected_version=1)
    with pytest.raises(ConcurrentModification,
                       match=r"shadow of pump-1 changed meanwhile \(expected version 1, "
                             r"it is now version 2\); reload"):
        shadows.update_desired("pump-1", {"interval_s": 5}, expected_version=1)
    assert shadows.get("pump-1").desired == {"interval_s": 10}


def test_a_shadow_of_an_unknown_thing_is_a_clear_error(fleet: DynamoFleet) -> None:
    with pytest.raises(NotFound, match="'ghost-1' is not a thing in AWS IoT"):
        fleet.backend.shadows.update_desired("ghost-1", {"x": 1})


def test_a_command_is_a_qos1_publish_of_the_protocol_request_on_the_command_topic(
        fleet: DynamoFleet, iot_calls: ApiCalls) -> None:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.iotdata.models import iotdata_backends

    commands = fleet.backend.commands
    future = commands.send("pump-1", "set-interval", {"seconds": 15}, timeout_s=0.3)
    (publish,) = iot_calls.named("Publish")
    assert publish["topic"] == "cmd/acme/pump-1/req" and publish["qos"] == 1
    request = decode_command_request(publish["payload"])
    assert (request.command, request.params) == ("set-interval", {"seconds": 15})
    assert len(request.request_id) == 32 and request.ts_ms is not None
    # moto's server accepted it (IoT Core would deliver it to the device)
    received = iotdata_backends[DEFAULT_ACCOUNT_ID][fleet.settings.region].published_payloads
    assert ("cmd/acme/pump-1/req", publish["payload"]) in [
        (topic, bytes(body)) for topic, body in received]
    # nobody answers: the future resolves as a timeout instead of hanging
    result = future.result(timeout=5)
    assert (result.outcome, result.request_id) == (CommandOutcome.TIMEOUT, request.request_id)

    answered = commands.send("pump-1", "ping", timeout_s=5)
    ping = decode_command_request(iot_calls.named("Publish")[-1]["payload"])
    commands.on_response("cmd/acme/pump-1/res",
                         CommandResponse(ping.request_id, "ping", True, {"uptime_s": 9}).encode())
    done = answered.result(timeout=1)
    assert (done.outcome, done.payload, done.device_id) == (CommandOutcome.OK,
                                                            {"uptime_s": 9}, "pump-1")


def test_unknown_commands_and_devices_are_refused_before_anything_is_sent(
        fleet: DynamoFleet, iot_calls: ApiCalls) -> None:
    with pytest.raises(SmartIotError, match="unknown command 'format-disk'"):
        fleet.backend.commands.send("pump-1", "format-disk")
    with pytest.raises(NotFound, match="'pump-9' is not registered"):
        fleet.backend.commands.send("pump-9", "ping")
    assert iot_calls.named("Publish") == []
