"""The sandbox's IoT Core stand-in (one broker, MQTT for devices and
WebSocket for consoles) and its IoT rule into moto's Kinesis over HTTP."""

from __future__ import annotations

import base64
import json
import queue
import time
from collections.abc import Callable, Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from plugins.aws.sandbox.mqtt import IotCoreStandIn
from plugins.aws.sandbox.rule import TelemetryRule
from tests.integration.aws.conftest import AwsSandbox


def wait_until(condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def broker() -> Iterator[IotCoreStandIn]:
    stand_in = IotCoreStandIn().start()
    yield stand_in
    stand_in.stop()


def device(broker: IotCoreStandIn, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
    client.connect(broker.host, broker.mqtt_port)
    client.loop_start()
    return client


def test_a_websocket_console_receives_what_a_device_publishes(broker: IotCoreStandIn) -> None:
    assert broker.ws_url.startswith("ws://127.0.0.1:") and broker.ws_url.endswith("/mqtt")
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    console = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="console-1",
                          transport="websockets")
    # the path a SigV4-presigned IoT Core URL has (the stand-in does not check it)
    console.ws_set_options(path="/mqtt?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    subscribed: queue.Queue[bool] = queue.Queue()
    console.on_connect = lambda c, u, f, reason, p: c.subscribe("dt/demo/+/telemetry", qos=1)
    console.on_subscribe = lambda *a: subscribed.put(True)
    console.on_message = lambda c, u, m: received.put((m.topic, bytes(m.payload)))
    console.connect(broker.host, broker.ws_port)
    console.loop_start()
    pump = device(broker, "pump-1")
    try:
        subscribed.get(timeout=10)
        pump.publish("dt/demo/pump-1/telemetry", b'{"seq": 1}', qos=1).wait_for_publish(5)
        assert received.get(timeout=10) == ("dt/demo/pump-1/telemetry", b'{"seq": 1}')
    finally:
        for client in (console, pump):
            client.disconnect()
            client.loop_stop()


def test_shadow_topics_reach_subscribers(broker: IotCoreStandIn) -> None:
    """Devices' shadow traffic ($aws/things/...) is delivered, as on IoT Core."""
    received: queue.Queue[str] = queue.Queue()
    watcher = device(broker, "watcher")
    watcher.on_message = lambda c, u, m: received.put(m.topic)
    watcher.subscribe("$aws/things/+/shadow/update", qos=1)
    time.sleep(0.3)  # let the SUBSCRIBE land before publishing (no SUBACK hook here)
    pump = device(broker, "pump-2")
    try:
        pump.publish("$aws/things/pump-2/shadow/update", b"{}", qos=1).wait_for_publish(5)
        assert received.get(timeout=10) == "$aws/things/pump-2/shadow/update"
    finally:
        for client in (watcher, pump):
            client.disconnect()
            client.loop_stop()


def read_stream(kinesis: Any, name: str, count: int) -> list[dict[str, Any]]:
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=name, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while len(records) < count and time.monotonic() < deadline:
        answer = kinesis.get_records(ShardIterator=iterator)
        records += answer["Records"]
        iterator = answer["NextShardIterator"]
        time.sleep(0.05)
    return records


def test_the_rules_put_what_devices_publish_into_kinesis_in_batches(
        aws: AwsSandbox, broker: IotCoreStandIn) -> None:
    """Telemetry and status, byte for byte (a payload that is not JSON too: the
    consumer quarantines it with the hub's reason), keyed by device; command
    requests are no rule's, and answers go to their own rule's table."""
    kinesis = aws.client("kinesis")
    name = f"telemetry-{aws.stage}"
    kinesis.create_stream(StreamName=name, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                             WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    calls: list[int] = []
    kinesis.meta.events.register("before-parameter-build.kinesis.PutRecords",
                                 lambda params, **_: calls.append(len(params["Records"])))
    rule = TelemetryRule(kinesis, name, (broker.host, broker.mqtt_port), flush_s=0.3).start()
    pump = device(broker, "pump-3")
    sent = [json.dumps({"seq": seq, "metrics": {"load": 0.5}}).encode() for seq in range(20)]
    try:
        for payload in sent:
            pump.publish("dt/demo/pump-3/telemetry", payload, qos=1)
        pump.publish("dt/demo/pump-3/telemetry", b"not json", qos=1).wait_for_publish(5)
        pump.publish("dt/demo/pump-3/status", b'{"online": true}', qos=1).wait_for_publish(5)
        pump.publish("cmd/demo/pump-3/req", b"{}", qos=1).wait_for_publish(5)  # no rule's
        pump.publish("cmd/demo/pump-3/res", b'{"ok": true}', qos=1).wait_for_publish(5)
        wait_until(lambda: rule.stats.forwarded == 22)
    finally:
        pump.disconnect()
        pump.loop_stop()
        rule.stop()
    records = read_stream(kinesis, name, 22)
    bodies = [json.loads(r["Data"]) for r in records]
    assert [base64.b64decode(b["payload"]) for b in bodies] == [
        *sent, b"not json", b'{"online": true}']
    assert [b["topic"] for b in bodies] == ["dt/demo/pump-3/telemetry"] * 21 + [
        "dt/demo/pump-3/status"]
    assert {r["PartitionKey"] for r in records} == {"pump-3"}
    assert all(isinstance(b["received_at"], int) for b in bodies)
    assert sum(calls) == 22 and len(calls) < 22  # batched, not one request a message
    assert rule.stats.received == 22


def test_the_answers_rule_puts_each_answer_into_its_table_at_once(
        aws: AwsSandbox, broker: IotCoreStandIn) -> None:
    """Keyed by request and answering device, the payload byte for byte; an answer
    with no request id is refused and counted (IoT Core's error action); telemetry
    is not this rule's."""
    from plugins.aws.dynamodb.tables import TABLES, create_tables
    from plugins.aws.sandbox.answers_rule import CommandAnswersRule
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    dynamodb = aws.client("dynamodb")
    create_tables(dynamodb, settings, tuple(t for t in TABLES if t.role == "command-answers"))
    table = settings.table("command-answers")
    rule = CommandAnswersRule(dynamodb, table, (broker.host, broker.mqtt_port)).start()
    pump = device(broker, "pump-5")
    answer = b'{"request_id":"r-1","command":"ping","ok":true,"result":{"pong":true}}'
    try:
        started = time.monotonic()
        pump.publish("cmd/demo/pump-5/res", answer, qos=1).wait_for_publish(5)
        wait_until(lambda: rule.stats.kept == 1)
        took = time.monotonic() - started
        pump.publish("cmd/demo/pump-5/res", b"not json", qos=1).wait_for_publish(5)
        pump.publish("dt/demo/pump-5/telemetry", b"{}", qos=1).wait_for_publish(5)
        wait_until(lambda: rule.stats.refused == 1)
    finally:
        pump.disconnect()
        pump.loop_stop()
        rule.stop()
    item = dynamodb.get_item(TableName=table, ConsistentRead=True,
                             Key={"request_id": {"S": "r-1"}, "device_id": {"S": "pump-5"}})
    assert base64.b64decode(item["Item"]["answer"]["S"]) == answer
    assert (rule.stats.received, rule.stats.kept, rule.stats.failed) == (2, 1, 0)
    assert "cmd/demo/pump-5/res: the payload is not JSON" in rule.stats.last_error
    # no batch window: well inside a command's 10 s timeout even on a loaded machine
    print(f"answer published to item stored: {took * 1000:.0f} ms")


def test_an_iot_data_publish_reaches_the_brokers_subscribers(
        aws: AwsSandbox, broker: IotCoreStandIn) -> None:
    """A command the API publishes through IoT Data reaches the device."""
    from plugins.aws.sandbox.publish_bridge import PublishBridge

    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    pump = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="pump-4")
    pump.on_connect = lambda c, u, f, reason, p: c.subscribe("cmd/demo/pump-4/req", qos=1)
    pump.on_subscribe = lambda *a: subscribed.put(True)
    pump.on_message = lambda c, u, m: received.put((m.topic, bytes(m.payload)))
    pump.connect(broker.host, broker.mqtt_port)
    pump.loop_start()
    bridge = PublishBridge((broker.host, broker.mqtt_port)).start()
    try:
        subscribed.get(timeout=10)
        aws.client("iot-data").publish(topic="cmd/demo/pump-4/req", qos=1,
                                       payload=b'{"command": "reboot"}')
        assert received.get(timeout=10) == ("cmd/demo/pump-4/req", b'{"command": "reboot"}')
    finally:
        bridge.stop()
        pump.disconnect()
        pump.loop_stop()
    from moto.iotdata.models import IoTDataPlaneBackend

    assert IoTDataPlaneBackend.publish.__qualname__ == "IoTDataPlaneBackend.publish"


def test_a_device_gets_the_command_published_while_it_rebooted(broker: IotCoreStandIn) -> None:
    """IoT Core keeps a device's persistent session: a command sent in the seconds a
    device reboots reaches it when it is back (the sandbox's broker let every client
    in as anonymous, and amqtt keeps no session for those)."""
    from tests.integration.simulator.test_broker import command_published_while_away_is_delivered

    assert command_published_while_away_is_delivered(broker.host, broker.mqtt_port) \
        == [(b"reboot", True)]
