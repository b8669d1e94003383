"""In process mode a device's statuses come with its telemetry, so its last
readings never bring it back online after its "offline".

MQTT keeps order within one connection only. With statuses on the hub's link and
telemetry on its receiver process, a receiver starved of CPU handed a device's
last readings over after the link had taken its "offline" (clean, or its Last
Will) and the device showed online until the silence sweep (QA's walk saw a
stopped fleet online). Here the starvation is made certain: the receiver child
is stopped (SIGSTOP) while the devices publish a burst and then say offline or
lose their connection, and is let go only once the hub's link has taken
everything the broker sent it (a shadow get answered after the statuses).

Real parts: a private mosquitto, the hub on SQLite with its receiver process,
the project's simulator (QoS 1 telemetry, its retained Last Wills).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.model import DeviceStatus
from core.protocol.payloads import Status
from core.protocol.topics import STATUS_FILTER, status_topic
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.hub.receiver_process import BACKPRESSURE_WAIT_S, Batch, ReceiverProcess
from simulator.api import RunningFleet
from simulator.broker import EmbeddedBroker
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.chaos.rig import stored_keys
from tests.integration.hub.conftest import wait_until

ORG = "order"
DEVICES = 4
ROUNDS = 3
BURST = 5  # readings each device publishes while the receiver is stopped


class Observer:
    """A client of its own on the broker: what it dispatched of the round's
    devices (telemetry keys, statuses), and a shadow get to learn when the
    hub's link has taken everything sent to it before."""

    def __init__(self, host: str, port: int) -> None:
        self.lock = threading.Lock()
        self.keys: set[tuple[str, str, int]] = set()
        self.readings: Counter[str] = Counter()
        self.offline: set[str] = set()
        self.replies: set[str] = set()
        self.thing = f"probe-{uuid.uuid4().hex[:8]}"
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=f"observer-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.client.subscribe([(f"dt/{ORG}/+/telemetry", 1), (f"dt/{ORG}/+/status", 1),
                               (f"$aws/things/{self.thing}/shadow/get/+", 1)])
        assert subscribed.wait(10), "the observer could not subscribe"

    def _message(self, client, userdata, message) -> None:
        body = json.loads(message.payload)
        with self.lock:
            if message.topic.endswith("/telemetry"):
                self.readings[body["device_id"]] += 1
                for metric in body["metrics"]:
                    self.keys.add((body["device_id"], metric, int(body["ts"])))
            elif message.topic.endswith("/status"):
                device = message.topic.split("/")[2]
                if body.get("state") == "offline":
                    self.offline.add(device)
                else:
                    self.offline.discard(device)
            else:
                self.replies.add(str(body.get("clientToken")))

    def link_caught_up(self) -> None:
        """A shadow get is answered by the hub's writer after its link took it,
        so everything the broker sent the link before is in the hub's inboxes."""
        token = uuid.uuid4().hex
        self.client.publish(f"$aws/things/{self.thing}/shadow/get",
                            json.dumps({"clientToken": token}).encode(), qos=1)
        wait_until(lambda: token in self.replies, 20, "the hub did not answer the shadow get")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def process_hub(mosquitto_broker, tmp_path: Path) -> Iterator[tuple[Hub, Path]]:
    db = tmp_path / "hub.db"
    store = Store.open(f"sqlite:///{db}")
    hub = Hub(store, EventBus(), mosquitto_broker.host, mosquitto_broker.port,
              receiver="process", stale_after_s=3600)
    hub.start()
    try:
        assert hub.wait_subscribed(20), "the hub did not subscribe"
        yield hub, db
    finally:
        hub.stop()
        store.close()


def _status(hub: Hub, device_id: str) -> DeviceStatus | None:
    device = hub.device(device_id)
    return None if device is None else device.status


def _round(broker, hub: Hub, db: Path, end: str, round_: int) -> None:
    """Devices online; the receiver stopped; a burst; their offline (said, or
    their Will); the link caught up; the receiver let go: they end offline."""
    assert hub.receiver is not None
    prefix = f"so{end[0]}{round_}{uuid.uuid4().hex[:4]}"
    group = DeviceGroup(prefix, "environmental", DEVICES, org=ORG, interval_s=0.1,
                        id_prefix=prefix)
    observer = Observer(broker.host, broker.port)
    running = RunningFleet(Scenario("order", (group,), FaultPlan(())), broker_url=broker.url,
                           telemetry_qos=1, client_id_prefix=f"{prefix}-").start()
    ids = running.device_ids
    pid = hub.receiver.pid
    assert pid is not None
    stopped = False
    try:
        wait_until(lambda: all(_status(hub, d) is DeviceStatus.ONLINE for d in ids), 30,
                   f"round {round_}: the fleet did not come online")
        os.kill(pid, signal.SIGSTOP)  # the receiver starved, for certain
        stopped = True
        with observer.lock:
            before = {d: observer.readings[d] for d in ids}
        wait_until(lambda: all(observer.readings[d] >= before[d] + BURST for d in ids), 30,
                   f"round {round_}: the devices did not publish their burst")
        if end == "offline":
            running.stop()  # the last readings, then "offline", then DISCONNECT
        else:
            for session in running.runtime.sessions:  # the broker sends their Wills
                running.runtime.disconnect_abruptly(session, down_for_s=3600)
        wait_until(lambda: observer.offline >= set(ids), 30,
                   f"round {round_}: the broker did not send every device's offline")
        observer.link_caught_up()
    finally:
        if stopped:
            os.kill(pid, signal.SIGCONT)
    try:
        with observer.lock:
            sent = {k for k in observer.keys if k[0] in set(ids)}
        wait_until(lambda: sent <= set(stored_keys(db)), 30,
                   f"round {round_}: the burst was not stored")
        wait_until(lambda: all(_status(hub, d) is DeviceStatus.OFFLINE for d in ids), 15,
                   f"round {round_} ({end}): devices online again after their offline")
        assert hub.receiver.pid == pid and hub.receiver.counters.restarts == 0
    finally:
        running.stop()
        observer.close()


@pytest.mark.parametrize("end", ["offline", "last_will"])
def test_a_devices_last_readings_never_bring_it_back_after_its_offline(
        mosquitto_broker, process_hub, end: str) -> None:
    hub, db = process_hub
    for round_ in range(ROUNDS):
        _round(mosquitto_broker, hub, db, end, round_)


def test_the_link_no_longer_takes_statuses_even_from_a_thread_mode_session(
        tmp_path: Path) -> None:
    """A hub that ran in thread mode left its link's persistent session holding
    the status filter: in process mode the link drops it, and a device's status
    reaches the hub once, through the receiver. (A broker of its own: no other
    test's retained statuses reach the receiver meanwhile.)"""
    client_id = f"order-hub-{uuid.uuid4().hex[:8]}"
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        threaded = Hub(store, EventBus(), broker.host, broker.port,
                       receiver="thread", client_id=client_id)
        threaded.start()
        assert threaded.wait_subscribed(20) and STATUS_FILTER in threaded.link.filters
        threaded.stop()

        hub = Hub(store, EventBus(), broker.host, broker.port,
                  receiver="process", client_id=client_id)
        assert hub.receiver is not None
        assert STATUS_FILTER not in hub.link.filters and STATUS_FILTER in hub.receiver.filters
        observer = Observer(broker.host, broker.port)
        hub.start()
        try:
            assert hub.wait_subscribed(20)
            observer.link_caught_up()

            def taken_by_link() -> int:
                return hub.counters.received - hub.receiver.counters.received

            link_before, rx_before = taken_by_link(), hub.receiver.counters.received
            device = f"st{uuid.uuid4().hex[:6]}"
            observer.client.publish(
                status_topic(ORG, device),
                Status("online", int(time.time() * 1000), "environmental", "1.0.0").encode(),
                qos=1).wait_for_publish(5)
            wait_until(lambda: _status(hub, device) is DeviceStatus.ONLINE, 20,
                       "the status did not reach the hub")
            observer.link_caught_up()
            assert hub.receiver.counters.received == rx_before + 1
            assert taken_by_link() == link_before + 1, "the link still takes statuses"
        finally:
            observer.close()
            hub.stop()
            store.close()


def test_the_receiver_never_drops_a_qos0_status_beyond_its_buffer(mosquitto_broker) -> None:
    """A parent that does not read: QoS 0 telemetry beyond the child's buffer is
    dropped and counted, a status on the ``keep`` filters waits for room."""
    gate = threading.Event()
    got: list[Batch] = []

    def slow(batch: Batch) -> None:
        gate.wait(60)
        got.append(batch)

    rx = ReceiverProcess(mosquitto_broker.host, mosquitto_broker.port,
                         client_id=f"rx-keep-{uuid.uuid4().hex[:6]}",
                         filters=["rxkeep/+/+/telemetry", "rxkeep/+/+/status"],
                         keep=["rxkeep/+/+/status"], on_batch=slow, buffer_limit=200,
                         batch_max=50, manual_ack=True)
    rx.start()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    # A second subscriber says when the broker has handed every message out: the
    # publisher finishing says only that the broker has them (on a loaded box it
    # delivered the last of them after this parent had started reading again, so
    # the child's buffer never filled).
    dispatched: list[str] = []
    witness = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    witness.on_message = lambda _c, _u, m: dispatched.append(m.topic)
    try:
        assert rx.wait_subscribed(20)
        witness.connect(mosquitto_broker.host, mosquitto_broker.port)
        witness.subscribe("rxkeep/#", qos=0)
        witness.loop_start()
        client.connect(mosquitto_broker.host, mosquitto_broker.port)
        client.loop_start()
        payload = b"x" * 60_000  # fills the pipe quickly, so the child's buffer fills
        statuses = set()
        for i in range(600):
            kind = "status" if i % 10 == 9 else "telemetry"
            topic = f"rxkeep/o/d{i}/{kind}"
            if kind == "status":
                statuses.add(topic)
            client.publish(topic, payload, qos=0).wait_for_publish(5)
        wait_until(lambda: len(dispatched) == 600, 60, "the broker did not hand out every message")
        # A status that finds the buffer full holds the child's network thread for
        # up to BACKPRESSURE_WAIT_S; the telemetry behind it is dropped after that.
        time.sleep(BACKPRESSURE_WAIT_S + 1.0)
        gate.set()
        wait_until(lambda: rx.counters.received + rx.counters.dropped == 600, 60,
                   f"messages unaccounted for: {rx.counters}")
        assert rx.counters.dropped > 0
        handed = {topic for batch in got for topic, *_ in batch.items}
        assert statuses <= handed, f"{len(statuses - handed)} statuses dropped"
    finally:
        gate.set()
        for c in (client, witness):
            c.loop_stop()
            c.disconnect()
        rx.stop()
