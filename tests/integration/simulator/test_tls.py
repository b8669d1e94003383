"""Devices connect over mutual TLS (mqtts with a CA and a client certificate, as AWS
IoT Core requires); a certificate from another CA is refused."""

from __future__ import annotations

import ssl
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.errors import ValidationError
from simulator.api import RunningFleet
from simulator.broker import BrokerTls, EmbeddedBroker
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from simulator.target import BrokerTarget
from tests.tls_certs import make_pki


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("pki"))
    with EmbeddedBroker(prefer="mosquitto", anonymous=True,
                        tls=BrokerTls(pki.ca, pki.server_cert, pki.server_key)) as broker:
        yield broker, pki


def _tls_subscriber(broker, pki, got):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="tls-watch")
    client.tls_set(ca_certs=str(pki.ca), certfile=str(pki.client_cert),
                   keyfile=str(pki.client_key), tls_version=ssl.PROTOCOL_TLS_CLIENT)
    client.on_message = lambda c, u, m: got.append(m.topic)
    client.connect(broker.host, broker.port)
    client.subscribe("dt/#", qos=1)
    client.loop_start()
    return client


def test_fleet_publishes_over_mutual_tls(tls_broker):
    broker, pki = tls_broker
    assert broker.url.startswith("mqtts://")
    got: list[str] = []
    watcher = _tls_subscriber(broker, pki, got)
    target = BrokerTarget.parse(broker.url, ca_file=str(pki.ca), cert_file=str(pki.client_cert),
                                key_file=str(pki.client_key))
    scenario = Scenario("tls", (DeviceGroup("env", "environmental", 3, org="secure",
                                            interval_s=1.0, id_prefix="env"),))
    running = RunningFleet(scenario, target=target, client_id_prefix="tls-").start(3)
    stats = running.wait(60)
    time.sleep(0.3)
    watcher.loop_stop()
    watcher.disconnect()
    assert stats.ever_connected == 3 and stats.connect_errors == 0
    assert {t for t in got if t.endswith("/telemetry")} == {
        f"dt/secure/env-{i:05d}/telemetry" for i in range(3)}


def test_certificate_from_another_ca_is_refused(tls_broker):
    broker, pki = tls_broker
    target = BrokerTarget.parse(broker.url, ca_file=str(pki.ca), cert_file=str(pki.rogue_cert),
                                key_file=str(pki.rogue_key))
    scenario = Scenario("rogue", (DeviceGroup("env", "environmental", 1, org="secure",
                                              interval_s=1.0, id_prefix="rogue"),))
    running = RunningFleet(scenario, target=target, client_id_prefix="rogue-").start()
    time.sleep(2.5)
    stats = running.stop()
    assert stats.ever_connected == 0
    assert stats.connect_errors >= 1
    assert "check certificates" in stats.last_error or "cannot reach" in stats.last_error


def test_tls_options_are_validated(tmp_path):
    with pytest.raises(ValidationError, match="does not exist"):
        BrokerTarget.parse("mqtts://broker:8883", ca_file=str(tmp_path / "missing.pem"))
    cert = tmp_path / "c.pem"
    cert.write_text("x")
    with pytest.raises(ValidationError, match="needs its key"):
        BrokerTarget.parse("mqtts://broker:8883", cert_file=str(cert))
    with pytest.raises(ValidationError, match="must not carry a password"):
        BrokerTarget.parse("mqtt://user:secret@broker:1883")
    assert BrokerTarget.parse("mqtts://broker").port == 8883
