"""One health per device (its link and its open alerts) and one "needs
attention" count, the same in every view: the devices list, the device
detail, the dashboard cards, the status bar, the alerts header and the badge."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from core.context import AppContext
from core.model import Alert, Device, DeviceStatus, Severity
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.services.alerting import AlertService
from core.services.fleet_health import Health, load_fleet_health
from plugins.devices.widgets.fleet_model import Col

pytestmark = pytest.mark.gui


@pytest.fixture
def window(config, make_window, qtbot):
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    backend.registry.upsert_many(
        [Device(f"pump-{i}", device_type="pump", status=DeviceStatus.ONLINE)
         for i in (1, 2, 3, 5)] + [Device("pump-4", device_type="pump",
                                          status=DeviceStatus.OFFLINE)])
    store = backend.alerts
    warning = Alert("pump-1", "vibration", Severity.WARNING, "vibration above 7 mm/s")
    critical = Alert("pump-2", "bearing", Severity.CRITICAL, "bearing temperature 96 °C")
    snoozed = Alert("pump-3", "vibration", Severity.WARNING, "vibration above 7 mm/s")
    for alert in (warning, critical, snoozed):
        store.add(alert)
    store.save(store.get(critical.alert_id).acknowledge("maria", "on my way"))
    store.save(store.get(snoozed.alert_id).snooze(snoozed.created_at + timedelta(hours=2)))
    win = make_window(context, show=True)
    yield win, backend, warning
    win.close()
    context.close()


def status_bar_texts(win) -> dict[str, str]:
    hub = win.status_widgets["local.hub"]
    return {"devices": hub.texts()["devices"], "alerts": win.status_widgets["alerts.active"]
            .text()}


def test_an_alert_makes_the_same_health_in_every_view(window, qtbot):
    win, backend, warning = window
    expected = {"pump-1": "warning", "pump-2": "critical", "pump-3": "warning",
                "pump-4": "offline", "pump-5": "online"}
    assert {d.device_id: h.value for d, h in zip(
        load_fleet_health(backend.registry, backend.alerts).devices,
        load_fleet_health(backend.registry, backend.alerts).health.values(), strict=True)
    } == {**expected, "pump-2": Health.CRITICAL.value, "pump-5": Health.OK.value}

    # the devices list
    devices = win.show_page("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 5, timeout=20_000)

    def listed() -> dict[str, str]:
        m = devices.model
        return {m.device(r).device_id: m.index(r, Col.STATUS).data() for r in range(m.rowCount())}

    qtbot.waitUntil(lambda: listed() == expected, timeout=20_000)

    # the device detail
    for device_id in ("pump-1", "pump-2"):
        assert devices.show_device(device_id)
        qtbot.waitUntil(lambda d=device_id: devices.detail.loaded_device_id == d,
                        timeout=15_000)
        assert devices.detail.status_pill.text() == expected[device_id].upper()

    # the status bar: devices by health and the alerts that need attention
    qtbot.waitUntil(lambda: status_bar_texts(win)["devices"]
                    == "1 online · 2 warning · 1 critical · 1 offline", timeout=20_000)
    # only pump-1's warning needs attention: pump-2's is acknowledged, pump-3's snoozed
    qtbot.waitUntil(lambda: "Needs attention" in status_bar_texts(win)["alerts"]
                    and "1 warning" in status_bar_texts(win)["alerts"], timeout=20_000)
    assert "critical" not in status_bar_texts(win)["alerts"]
    assert win.nav.badge("alerts") == "1"

    # the alerts header says the same
    alerts = win.show_page("alerts")
    qtbot.waitUntil(lambda: alerts.strip.counts() == {Severity.CRITICAL: 0,
                                                      Severity.WARNING: 1,
                                                      Severity.INFO: 0}, timeout=20_000)
    assert alerts.strip.open_label.text() == "· 3 open alerts"
    assert win.nav.badge("alerts") == "1"

    # the dashboard's cards
    analytics = win.show_page("analytics")
    dashboard = analytics.dashboard
    qtbot.waitUntil(lambda: dashboard.data is not None, timeout=20_000)
    assert {k: dashboard.cards[k].value_label.text()
            for k in ("total", "online", "warning", "error", "offline")} == {
        "total": "5", "online": "1", "warning": "2", "error": "1", "offline": "1"}

    # resolved (here by another process's service call): every view follows
    AlertService(backend.alerts, backend.audit).resolve(
        warning.alert_id, Actor("tom", Role.SUPPORT), "bolts tightened")
    win.show_page("devices")
    qtbot.waitUntil(lambda: listed()["pump-1"] == "online", timeout=20_000)
    qtbot.waitUntil(lambda: status_bar_texts(win)["devices"]
                    == "2 online · 1 warning · 1 critical · 1 offline", timeout=20_000)
    qtbot.waitUntil(lambda: win.nav.badge("alerts") == "", timeout=20_000)
    # the badge may come from the alerts page's own recount, a moment before the
    # status bar's poll catches up: both must arrive, neither may go back
    qtbot.waitUntil(lambda: "no alert needs attention" in status_bar_texts(win)["alerts"],
                    timeout=20_000)
    assert win.nav.badge("alerts") == ""
