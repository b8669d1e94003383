"""The team set-up: one headless `smartiot hub` and two consoles sharing one broker
and one PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid

import pytest
from sqlalchemy import text

from core.config import load_config
from core.context import AppContext
from core.errors import ConcurrentModification, IllegalTransition
from core.model import AlertRule, AlertState, RuleScope, Severity
from core.model.events import AlertChanged, TelemetryReceived
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.ports.commands import CommandOutcome
from core.services.alerting.service import AlertService
from core.store import Store
from core.store.engine import create_store_engine
from plugins.local.backend import build_local_backend
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.integration.hub.conftest import EventLog, wait_until

PG = os.environ.get("SMARTIOT_TEST_PG_URL")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG, reason="SMARTIOT_TEST_PG_URL not set: team set-up on PostgreSQL"),
]


@pytest.fixture
def team_database():
    name = f"smartiot_team_{uuid.uuid4().hex[:10]}"
    admin = create_store_engine(PG, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


def test_headless_hub_with_two_consoles(team_database, mosquitto_broker, tmp_path):
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        'profile = "team"\n[profiles.team]\n'
        f'broker = "{mosquitto_broker.url}"\ndatabase = "{team_database}"\n'
        'hub = false\ndemo_fleet = false\n')
    with Store.open(team_database) as store:
        store.rules.add(AlertRule(
            "Impossible temperature", "threshold",
            {"metric": "temperature", "op": "below", "limit": -273.15},
            Severity.CRITICAL, RuleScope(device_types=frozenset({"environmental"})),
            rule_id="impossible"))
    env = {**os.environ, "SMARTIOT_CONFIG": str(config_path),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data"), "SMARTIOT_ENTRY_POINTS": "0"}
    hub = subprocess.Popen([sys.executable, "-m", "console.cli", "hub", "--status-every", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(hub.stdout.readline, "")),
                              daemon=True)
    reader.start()
    consoles = []
    running = None
    try:
        for user in ("maria", "li"):
            config = load_config(config_path, tmp_path / "data", env={"SMARTIOT_USER": user})
            context = AppContext(config, PluginManager(entry_points=False, blocked=()))
            backend = build_local_backend(context)
            assert backend.hub is None and backend.observer is not None
            consoles.append((context, backend, EventLog(backend.bus)))
        (_ctx_a, console_a, log_a), (_ctx_b, console_b, log_b) = consoles
        wait_until(lambda: any(line.startswith("hub running") for line in list(lines)),
                   timeout=30, message="the headless hub did not come up")
        assert console_a.client.link.wait_connected(10)
        assert console_b.observer.link.wait_connected(10)
        time.sleep(1.0)
        fault = FaultSpec("out_of_range", {"p": 1.0, "metrics": ["temperature"]}, start_s=3,
                          duration_s=600, group="env", devices=[0])
        running = RunningFleet(Scenario("team", (DeviceGroup(
            "env", "environmental", 4, org="plant", interval_s=1.0, id_prefix="team"),),
            FaultPlan([fault])), broker_url=mosquitto_broker.url,
            client_id_prefix="team-").start()

        # the hub (another process) ingests into PostgreSQL; both consoles see it
        # (the shared test broker also replays other tests' retained status messages)
        wait_until(lambda: len([d for d in console_b.registry.list()
                                if d.organization == "plant"]) == 4, timeout=20)
        wait_until(lambda: log_a.of(TelemetryReceived), timeout=10)
        alert = wait_until(lambda: next(iter(console_a.alerts.list()), None), timeout=30)
        wait_until(lambda: any(e.alert.alert_id == alert.alert_id
                               for e in log_b.of(AlertChanged)), timeout=10)

        # concurrent acknowledgement: exactly one wins, the other is told who
        service_a = AlertService(console_a.alerts, console_a.store.audit)
        service_b = AlertService(console_b.alerts, console_b.store.audit)
        stale = console_b.alerts.get(alert.alert_id)
        service_a.acknowledge(alert.alert_id, Actor("maria", Role.SUPPORT), "on it")
        with pytest.raises((ConcurrentModification, IllegalTransition), match="maria"):
            console_b.alerts.save(stale.acknowledge("li", "me too"))
        with pytest.raises((ConcurrentModification, IllegalTransition), match="maria"):
            service_b.acknowledge(alert.alert_id, Actor("li", Role.SUPPORT), "me too")
        assert console_b.alerts.get(alert.alert_id).state is AlertState.ACKNOWLEDGED

        # console B changes a device's desired state; the hub applies it, the device obeys
        first = wait_until(lambda: console_b.shadows.get("team-00002").version > 0, timeout=10)
        assert first
        console_b.shadows.update_desired("team-00002", {"interval": 3})
        wait_until(lambda: console_a.shadows.get("team-00002").reported.get("interval") == 3.0,
                   timeout=15)
        # console A runs a command round trip through the shared broker
        assert console_a.commands.send("team-00001", "ping").result(10).outcome is (
            CommandOutcome.OK)
        assert console_a.store.audit.verify() is None
    finally:
        if running is not None:
            running.stop()
        for _context, backend, _log in consoles:
            backend.close()
        hub.terminate()
        hub.wait(timeout=30)
        reader.join(timeout=10)
    output = "".join(lines)
    assert "hub running" in output and "hub stopped" in output, output
