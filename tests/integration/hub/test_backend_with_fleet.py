"""The local backend end to end: hub + console client + a simulated fleet on a
real broker: shadow edits reach devices and their reports come back, commands
round-trip or time out (and are logged), injected faults raise alerts that are
acknowledged and auto-resolved."""

from __future__ import annotations

import dataclasses
import time

import pytest

from core.config import load_config
from core.context import AppContext
from core.errors import ConcurrentModification
from core.model import AlertRule, AlertState, CommandStatus, RuleScope, Severity
from core.model.events import AlertChanged, CommandChanged
from core.plugins import PluginManager
from core.ports.commands import CommandOutcome
from plugins.local.backend import build_local_backend
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import EventLog, wait_until


@pytest.fixture
def backend(mosquitto_broker, tmp_path):
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    profile = dataclasses.replace(config.profile, broker=mosquitto_broker.url, demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = build_local_backend(context)
    assert backend.hub is not None and backend.hub.wait_connected(10)
    assert backend.client.link.wait_connected(10)
    time.sleep(0.3)
    yield backend
    backend.close()


def fleet(broker, *groups, faults=(), prefix=None):
    prefix = prefix or f"f{time.monotonic_ns()}-"
    return RunningFleet(Scenario("t", tuple(groups), FaultPlan(faults)), broker_url=broker.url,
                        client_id_prefix=prefix).start()


def test_shadow_edit_reaches_the_device_and_its_report_comes_back(backend, mosquitto_broker):
    running = fleet(mosquitto_broker, DeviceGroup("env", "environmental", 2, org="acme",
                                                  interval_s=5.0, id_prefix="env"))
    try:
        first = wait_until(lambda: backend.store.shadows.get("env-00001"))
        assert first.reported["interval"] == 5.0
        updated = backend.shadows.update_desired("env-00001", {"interval": 2},
                                                 expected_version=first.version)
        assert updated.desired == {"interval": 2}
        reported = wait_until(lambda: backend.shadows.get("env-00001").reported.get(
            "interval") == 2.0 and backend.shadows.get("env-00001"))
        assert reported.delta == {}
        assert running.fleet.interval(1) == 2.0
        with pytest.raises(ConcurrentModification, match="changed meanwhile"):
            backend.shadows.update_desired("env-00001", {"interval": 9},
                                           expected_version=first.version)
    finally:
        running.stop()


def test_commands_round_trip_and_time_out_and_are_logged(backend, mosquitto_broker):
    running = fleet(mosquitto_broker, DeviceGroup("pumps", "pump", 1, org="acme",
                                                  interval_s=5.0, id_prefix="pump"))
    log = EventLog(backend.bus)
    try:
        wait_until(lambda: backend.registry.find("pump-00000"))
        result = backend.commands.send("pump-00000", "ping").result(10)
        assert result.outcome is CommandOutcome.OK and result.payload["pong"] is True
        assert result.latency_ms is not None and result.latency_ms < 5000
        interval = backend.commands.send("pump-00000", "set-interval", {"seconds": 1})
        assert interval.result(10).payload == {"interval": 1.0}
    finally:
        running.stop()
    # the device is gone now: a command times out, and the log says so
    lost = backend.commands.send("pump-00000", "identify", timeout_s=1.0).result(5)
    assert lost.outcome is CommandOutcome.TIMEOUT
    records = backend.command_log.list_for("pump-00000")
    assert [r.status for r in records][:3] == [CommandStatus.TIMEOUT, CommandStatus.OK,
                                               CommandStatus.OK]
    assert any(isinstance(e, CommandChanged) for e in log.events)


def test_injected_fault_raises_alert_ack_then_auto_resolve(backend, mosquitto_broker):
    # No working sensor reads below absolute zero; the out_of_range fault makes one do so.
    backend.rules.add(AlertRule(
        "Impossible temperature", "threshold",
        {"metric": "temperature", "op": "below", "limit": -273.15, "hysteresis": 0.0,
         "min_duration_s": 0.0},
        Severity.CRITICAL, RuleScope(device_types=frozenset({"environmental"})),
        rule_id="impossible-temperature"))
    backend.hub.alerting.reload_rules_if_changed()
    fault = FaultSpec("out_of_range", {"p": 1.0, "metrics": ["temperature"]}, start_s=4,
                      duration_s=6, group="env", devices=[0])
    log = EventLog(backend.bus)
    running = fleet(mosquitto_broker, DeviceGroup("env", "environmental", 2, org="acme",
                                                  interval_s=1.0, id_prefix="env"),
                    faults=[fault])
    try:
        alert = wait_until(lambda: next(iter(backend.alerts.list()), None), timeout=20)
        assert alert.device_id == "env-00000" and alert.severity is Severity.CRITICAL
        assert alert.value < -273.15
        from core.model.roles import Actor, Role
        from core.services.alerting.service import AlertService

        service = AlertService(backend.alerts, backend.store.audit)
        acked = service.acknowledge(alert.alert_id, Actor("maria", Role.SUPPORT),
                                    "checking the sensor")
        assert acked.state is AlertState.ACKNOWLEDGED
        resolved = wait_until(lambda: backend.alerts.get(alert.alert_id).state
                              is AlertState.RESOLVED and backend.alerts.get(alert.alert_id),
                              timeout=20)
        assert resolved.resolved_by == "system"
        assert resolved.acknowledged_by == "maria"
        assert any(isinstance(e, AlertChanged) for e in log.events)
        actions = [e.action for e in backend.store.audit.entries()]
        assert any("ack" in a for a in actions)
        assert backend.store.audit.verify() is None
    finally:
        running.stop()
