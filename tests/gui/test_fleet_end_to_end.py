"""The real window, the real local backend (hub on a real mosquitto, SQLite store)
and a simulated fleet with injected faults, driven the way a person would."""

from __future__ import annotations

import dataclasses

import pytest

from core.context import AppContext
from core.model import AlertRule, AlertState, RuleScope, Severity
from core.plugins import PluginManager
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario

pytestmark = pytest.mark.gui


@pytest.fixture
def live_window(config, make_window, qtbot):
    # A private embedded broker: the session broker keeps other tests' retained
    # statuses, and the hub would list those devices too.
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    backend.rules.add(AlertRule(
        "Impossible temperature", "threshold",
        {"metric": "temperature", "op": "below", "limit": -273.15},
        Severity.CRITICAL, RuleScope(device_types=frozenset({"environmental"})),
        rule_id="impossible-temperature"))
    backend.hub.alerting.reload_rules_if_changed()
    faults = [
        FaultSpec("out_of_range", {"p": 1.0, "metrics": ["temperature"]}, start_s=4,
                  duration_s=12, group="env", devices=[0]),
        FaultSpec("malformed", {"p": 0.5}, group="env", devices=[1]),
    ]
    fleet = RunningFleet(Scenario("e2e", (DeviceGroup(
        "env", "environmental", 4, org="site", interval_s=1.0, id_prefix="e2e"),),
        FaultPlan(faults)), on_broker=backend.broker,
        client_id_prefix=f"e2e-{id(context)}-").start()
    window = make_window(context, show=True)
    yield window, backend, fleet
    fleet.stop()
    window.close()
    context.close()


def test_technician_and_support_workflow(live_window, qtbot):
    window, backend, fleet = live_window

    # Devices: the fleet appears live; search narrows it
    window.show_page("devices")
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 4, timeout=20_000)
    qtbot.keyClicks(devices.search, "e2e-00003")
    qtbot.waitUntil(lambda: devices.proxy.rowCount() == 1, timeout=15_000)
    devices.search.clear()

    # Detail: change desired state; the simulated device obeys and reports back
    assert devices.show_device("e2e-00002")
    detail = devices.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == "e2e-00002", timeout=10_000)
    detail.tabs.setCurrentIndex(1)
    shadow_tab = detail.shadow_tab
    qtbot.waitUntil(lambda: shadow_tab.shadow is not None and shadow_tab.shadow.version > 0,
                    timeout=15_000)
    detail.shadow_tab.shadow_editor.setPlainText('{"interval": 2}')
    assert detail.shadow_tab.shadow_apply.isEnabled()
    detail.shadow_tab.shadow_apply.click()

    def reported_interval():
        rows = {key: (want, have, differs)
                for key, want, have, differs in detail.shadow_tab.shadow_rows()}
        return rows.get("interval")

    qtbot.waitUntil(lambda: reported_interval() is not None
                    and reported_interval()[1] in ("2", "2.0")
                    and not reported_interval()[2], timeout=20_000)
    assert fleet.fleet.interval(2) == 2.0

    # Commands: a ping round trip through the broker, with the answer shown
    detail.tabs.setCurrentIndex(2)
    detail.commands.ping_button.click()
    qtbot.waitUntil(lambda: "ping: ok" in detail.commands.command_status.text(), timeout=15_000)

    # Alerts: the injected fault raises a critical alert; support acknowledges it
    alert = None

    def raised():
        nonlocal alert
        alert = next(iter(backend.alerts.list()), None)
        return alert is not None

    qtbot.waitUntil(raised, timeout=30_000)
    window.show_page("alerts")
    alerts = window.page_widget("alerts")
    qtbot.waitUntil(lambda: alerts.model.row_of(alert.alert_id) is not None, timeout=15_000)
    alerts.select_alerts([alert.alert_id])
    alerts.ack_button.click()
    dialog = alerts.comment_dialog
    dialog.comment.setPlainText("sensor wiring checked")
    with qtbot.waitSignal(alerts.actions_done, timeout=10_000) as done:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert [r.ok for r in done.args[0]] == [True]
    acked = backend.alerts.get(alert.alert_id)
    assert acked.ack_comment == "sensor wiring checked"

    # ... and the hub resolves it by itself once the fault is over
    qtbot.waitUntil(lambda: backend.alerts.get(alert.alert_id).state is AlertState.RESOLVED,
                    timeout=40_000)
    assert backend.alerts.get(alert.alert_id).resolved_by == "system"

    # Rejected: the garbled payloads are listed with their reason
    window.show_page("rejected")
    rejected = window.page_widget("rejected")
    qtbot.waitUntil(lambda: rejected.counts.get("malformed_json", 0) > 0, timeout=20_000)
