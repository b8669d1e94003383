"""Status-bar widgets (hub and alerts) and the critical-alert notification."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core.model import Alert, Device, DeviceStatus, Severity
from core.model.events import AlertChanged, DeviceChanged, HubStatus
from core.registrations import StatusWidgetSpec
from plugins.alerts.widgets.notifier import CriticalNotifier
from plugins.alerts.widgets.status import AlertStatusWidget
from plugins.local.widgets.status import HubStatusWidget, build_hub_status
from tests.gui.conftest import StatusPlugin

pytestmark = pytest.mark.gui


def alert_event(alert: Alert) -> AlertChanged:
    return AlertChanged(alert)


def test_hub_status_follows_hub_and_device_events(qtbot, context, store, bus):
    store.registry.upsert_many([
        Device("pump-00001", status=DeviceStatus.ONLINE),
        Device("pump-00002", status=DeviceStatus.OFFLINE),
    ])
    widget = HubStatusWidget(context)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.total == 2, timeout=15_000)
    texts = widget.texts()
    assert "Broker connected" in texts["connection"]  # from live.connection_state()
    assert texts["devices"] == "1 online · 1 offline"
    assert texts["rate"] == "— msg/s"

    bus.publish([HubStatus(connection="connected", messages_per_s=1234.4,
                           readings_per_s=5678.0)])
    qtbot.waitUntil(lambda: widget.messages_per_s is not None, timeout=15_000)
    assert widget.texts()["rate"] == "1,234 msg/s · 5,678 readings/s"
    # Without the broker the hub hears nobody: no rate, however recent.
    bus.publish([HubStatus(connection="connecting", messages_per_s=1234.4,
                           readings_per_s=5678.0)])
    qtbot.waitUntil(lambda: widget.connection == "connecting", timeout=15_000)
    texts = widget.texts()
    assert texts["rate"].endswith("Cannot see the fleet") and "msg/s" not in texts["rate"]
    assert "Connecting to broker" in texts["connection"]

    # while blind the counts are what was last heard, and say so
    assert widget.texts()["devices"] == "1 online · 1 offline (as last seen)"

    bus.publish([HubStatus(connection="connected", messages_per_s=10.0, readings_per_s=60.0)])
    qtbot.waitUntil(lambda: widget.connection == "connected", timeout=15_000)
    online = Device("pump-00002", status=DeviceStatus.ONLINE)
    store.registry.upsert(online)
    bus.publish([DeviceChanged(online)])
    qtbot.waitUntil(lambda: widget.online == 2, timeout=15_000)
    assert widget.texts()["devices"] == "2 online · 0 offline"


def test_alert_status_counts_active_alerts_by_severity(qtbot, context, seed, bus, store):
    seed("pump-00001", Severity.CRITICAL)
    seed("pump-00002", Severity.WARNING)
    warning = seed("pump-00003", Severity.WARNING)
    widget = AlertStatusWidget(context)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.counts.get(Severity.WARNING) == 2, timeout=15_000)
    assert "1 critical" in widget.text() and "2 warning" in widget.text()
    assert "info" not in widget.text()

    acked = warning.acknowledge("maria")
    store.alerts.save(acked)
    with qtbot.waitSignal(widget.counts_changed, timeout=15_000):
        bus.publish([alert_event(acked)])
    assert widget.counts[Severity.WARNING] == 1


def test_status_widgets_sit_in_the_main_window_and_set_the_badge(qtbot, context, seed,
                                                                 make_window):
    from tests.gui.conftest import page as page_spec
    from tests.gui.conftest import pages_plugin

    seed("pump-00001", Severity.CRITICAL)
    context.plugins.register("status", StatusPlugin(
        StatusWidgetSpec("local.hub", build_hub_status, order=10),
        StatusWidgetSpec("alerts.active", AlertStatusWidget, order=30)))
    context.plugins.register("pages", pages_plugin([page_spec("alerts", 20)])[1])
    window = make_window(context, show=True)
    assert set(window.status_widgets) == {"local.hub", "alerts.active"}
    # the status widget keeps the badge current before the Alerts page is ever built
    qtbot.waitUntil(lambda: window.nav.badge("alerts") == "1", timeout=15_000)


@pytest.fixture
def notifier(qtbot):
    from PySide6.QtWidgets import QWidget

    host = QWidget()
    host.resize(800, 600)
    qtbot.addWidget(host)
    clock = [100.0]
    n = CriticalNotifier(host, min_interval_s=5.0, use_tray=False, clock=lambda: clock[0])
    n.clock = clock
    return n


def make_alert(device: str, severity: Severity) -> Alert:
    return Alert(device, "temperature-high", severity, "temperature above 70 °C", 75.0)


def test_notifies_a_new_critical_alert_but_not_a_warning(qtbot, notifier):
    shown = []
    notifier.notified.connect(lambda title, text: shown.append((title, text)))
    notifier.feed([alert_event(make_alert("pump-00001", Severity.WARNING))])
    assert shown == []
    critical = make_alert("pump-00002", Severity.CRITICAL)
    notifier.feed([alert_event(critical)])
    assert shown == [("Critical alert on pump-00002", "temperature above 70 °C")]
    assert notifier.toast is not None and notifier.toast.isVisibleTo(notifier.toast.parent())
    # the same alert again (an update) does not notify twice
    notifier.clock[0] += 60
    notifier.feed([alert_event(replace(critical, value=80.0, version=2))])
    assert len(shown) == 1


def test_snoozed_critical_is_not_notified(notifier, now):
    from datetime import timedelta

    shown = []
    notifier.notified.connect(lambda *args: shown.append(args))
    snoozed = make_alert("pump-00001", Severity.CRITICAL).snooze(now + timedelta(hours=1))
    notifier.feed([alert_event(snoozed)])
    assert shown == []


def test_notifications_are_rate_limited_and_summarised(qtbot, notifier):
    shown = []
    notifier.notified.connect(lambda title, text: shown.append(title))
    notifier.feed([alert_event(make_alert("pump-00001", Severity.CRITICAL))])
    notifier.feed([alert_event(make_alert(f"pump-0001{i}", Severity.CRITICAL))
                   for i in range(3)])
    assert shown == ["Critical alert on pump-00001"]  # the rest wait for the interval
    notifier.clock[0] += 5.0
    notifier.flush()
    assert shown[-1] == "3 new critical alerts"
    assert len(shown) == 2


def test_status_widget_notifies_from_live_events(qtbot, context, bus):
    widget = AlertStatusWidget(context, notifier=None)
    qtbot.addWidget(widget)
    widget.notifier.use_tray = False
    qtbot.waitUntil(lambda: widget.live is not None, timeout=15_000)
    with qtbot.waitSignal(widget.notifier.notified, timeout=15_000) as got:
        bus.publish([alert_event(make_alert("pump-00009", Severity.CRITICAL))])
    assert got.args[0] == "Critical alert on pump-00009"


def test_needs_attention_follows_this_consoles_acknowledgement_at_once(
        qtbot, context, seed, alerts_page):
    """The alerting service publishes nothing when the person acknowledges: the
    status bar learnt of it from its 15 s poll (or the change feed's, where one
    runs). The page's own action makes it recount at once."""
    first = seed("pump-00001", Severity.CRITICAL)
    widget = AlertStatusWidget(context)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: widget.counts.get(Severity.CRITICAL) == 1, timeout=15_000)
    page = alerts_page()
    page.select_alerts([first.alert_id])
    with qtbot.waitSignal(widget.counts_changed, timeout=3_000):  # the poll is 15 s
        page.acknowledge_selected(comment="on it")
    qtbot.waitUntil(lambda: "no alert needs attention" in widget.text(), timeout=3_000)
    assert sum(widget.counts.values()) == 0
