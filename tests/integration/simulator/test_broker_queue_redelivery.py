"""Everything a broker queued for a persistent session comes when it returns.

mosquitto 2.0.11 lost a few queued messages as it moved a long queue into
flight after a reconnect (more than ``max_inflight_messages`` waiting): the
hub, away for seconds beside a busy fleet, never got them. The embedded
broker and `smartiot broker config` now write no inflight limit
(simulator/broker_queue.py); here a persistent QoS 1 subscriber leaves while
60 devices publish (half at QoS 0, queued too: ``queue_qos0_messages``), each on
its own connection, and it must get every message."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulator.broker import EmbeddedBroker

DEVICES = 60
ROUNDS = 12  # 720 messages queued, seven times the old inflight limit of 100


def _subscriber(host: str, port: int, got: set[bytes], lock: threading.Lock) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="queue-hub-rx",
                         protocol=mqtt.MQTTv5)
    subscribed = threading.Event()

    def on_message(c, userdata, message):
        with lock:
            got.add(message.payload)

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_connect = lambda c, *a: c.subscribe("dt/+/+/telemetry", qos=1)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 600
    client.connect(host, port, clean_start=False, properties=props)
    client.loop_start()
    assert subscribed.wait(10)
    return client


def test_a_queue_longer_than_the_old_inflight_limit_all_arrives_after_a_reconnect():
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:  # queues QoS 0
        host, port = broker.host, broker.port
        got: set[bytes] = set()
        lock = threading.Lock()
        hub = _subscriber(host, port, got, lock)
        hub.disconnect()
        hub.loop_stop()
        devices = []
        for i in range(DEVICES):
            device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{i}")
            device.connect(host, port)
            device.loop_start()
            devices.append(device)
        sent = set()
        for rnd in range(ROUNDS):
            infos = []
            for i, device in enumerate(devices):
                payload = f"dev-{i}:{rnd}".encode()
                # half the fleet at QoS 0, which the hub's broker queues too
                infos.append(device.publish(f"dt/site/dev-{i}/telemetry", payload,
                                            qos=1 if i % 2 else 0))
                sent.add(payload)
            for info in infos:
                info.wait_for_publish(10)
        hub = _subscriber(host, port, got, lock)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if got >= sent:
                    break
            time.sleep(0.1)
        hub.disconnect()
        hub.loop_stop()
        for device in devices:
            device.disconnect()
            device.loop_stop()
    with lock:
        missing = sorted(sent - got)
    assert not missing, f"{len(missing)} of {len(sent)} queued messages never came: {missing[:10]}"
