"""A device that reboots (its ``reboot`` command, or the end of an OTA update)
restarts ``seq`` and ``uptime``: the hub must see a new boot, keep storing its
data, count the reboot, and not raise a false "no data" alert. And a hub that
restarts carries on from the boot it persisted."""

from __future__ import annotations

import dataclasses
import time

import pytest

from core.config import load_config
from core.context import AppContext
from core.model import AlertRule, Severity
from core.plugins import PluginManager
from core.ports.alerts import AlertQuery
from core.ports.commands import CommandOutcome
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.backend import build_local_backend
from plugins.local.hub.hub import Hub
from simulator.api import RunningFleet
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import wait_until

DEVICE = "rb-00000"


@pytest.fixture
def backend(mosquitto_broker, tmp_path):
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    profile = dataclasses.replace(config.profile, broker=mosquitto_broker.url, demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = build_local_backend(context)
    assert backend.hub is not None and backend.hub.wait_subscribed(10)
    assert backend.client.link.wait_subscribed(10)
    yield backend
    backend.close()


def one_pump(broker, prefix):
    group = DeviceGroup("rb", "pump", 1, org="acme", interval_s=1.0, id_prefix="rb")
    return RunningFleet(Scenario("t", (group,), FaultPlan(())), broker_url=broker.url,
                        client_id_prefix=prefix).start()


def stored(store, device_id=DEVICE):
    return store.link_stats.get(device_id)


def test_reboot_command_keeps_data_flowing_and_counts_one_reboot(backend, mosquitto_broker):
    backend.rules.add(AlertRule(
        "Quiet pump", "no_data", {"minutes": 0.2, "metric": "temperature", "offline": False},
        Severity.WARNING, rule_id="quiet-pump"))
    backend.hub.alerting.reload_rules_if_changed()
    running = one_pump(mosquitto_broker, f"rb{time.monotonic_ns()}-")
    store = backend.store
    try:
        before = wait_until(lambda: (s := stored(store)) is not None and s.received >= 5 and s,
                            timeout=30)
        result = backend.commands.send(DEVICE, "reboot").result(10)
        assert result.outcome is CommandOutcome.OK
        # the device comes back with seq 0 and keeps sending; 20 readings after the reboot
        after = wait_until(lambda: (s := stored(store)).reboots >= 1
                           and s.received >= before.received + 20 and s, timeout=60)
        # online after the reboot: checked while the pump runs (stopping it says offline)
        assert backend.hub.device(DEVICE).status.value == "online"
    finally:
        running.stop()
    assert after.reboots == 1
    assert store.quarantine.list(device_id=DEVICE) == []
    assert after.duplicates == 0 and after.out_of_order == 0
    alerts = backend.alerts.list(AlertQuery(device_id=DEVICE))
    assert [a for a in alerts if a.rule_id == "quiet-pump"] == []


def test_a_restarted_hub_carries_on_from_the_persisted_boot(mosquitto_broker, tmp_path):
    url = f"sqlite:///{tmp_path / 'hub.db'}"

    def start_hub():
        store = Store.open(url)
        hub = Hub(store, EventBus(), mosquitto_broker.host, mosquitto_broker.port)
        hub.start()
        assert hub.wait_connected(10)
        return store, hub

    store, hub = start_hub()
    running = one_pump(mosquitto_broker, f"rs{time.monotonic_ns()}-")
    try:
        first = wait_until(lambda: (s := stored(store)) is not None and s.received >= 4 and s,
                           timeout=30)
        hub.stop()
        store.close()
        assert first.last_uptime is not None and first.boot_at_ms is not None
        # while no hub runs, the device reboots: seq and uptime restart
        running.runtime.call_later(0.0, lambda: running.runtime.sessions[0].agent
                                   .on_connection_event("reboot-command", 0.0))
        time.sleep(6)
        store, hub = start_hub()
        after = wait_until(lambda: (s := stored(store)).received >= first.received + 5 and s,
                           timeout=60)
    finally:
        running.stop()
        hub.stop()
    try:
        assert after.reboots == first.reboots + 1
        assert after.out_of_order == 0 and after.duplicates == 0
        assert store.quarantine.list(device_id=DEVICE) == []
    finally:
        store.close()
