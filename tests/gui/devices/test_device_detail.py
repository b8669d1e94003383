"""The device detail panel: edits, shadow, commands, alerts, register/decommission."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model import (
    Alert,
    CommandRecord,
    CommandStatus,
    Device,
    DeviceStatus,
    LinkStats,
    Location,
    Reading,
    Severity,
)
from core.model.events import CommandChanged, TelemetryReceived
from core.ports.backend import Backend
from core.ports.commands import CommandOutcome
from core.ports.shadows import ShadowDocument
from plugins.devices.widgets.fleet_model import Col
from plugins.devices.widgets.register_dialog import RegisterDeviceDialog


def _seed(store) -> None:
    now = datetime.now(UTC)
    store.registry.upsert_many([
        Device("pump-1", name="North pump", device_type="pump", status=DeviceStatus.ONLINE,
               organization="acme", tags=frozenset({"yard"}), firmware_version="1.4.2",
               last_seen=now),
        Device("meter-2", name="Main meter", device_type="power_meter"),
    ])
    store.telemetry.write_batch(
        [Reading("pump-1", "temp", now - timedelta(minutes=m), 20.0 + m) for m in range(10)]
        + [Reading("pump-1", "battery_pct", now, 80.0)])
    store.alerts.add(Alert("pump-1", "temp-high", Severity.CRITICAL, "too hot", 91.0))
    store.link_stats.upsert_many([LinkStats("pump-1", last_seq=99, received=99, lost=1)])
    store.commands.add(CommandRecord("req-old", "pump-1", "ping", status=CommandStatus.OK,
                                     created_at=now - timedelta(minutes=5),
                                     completed_at=now - timedelta(minutes=5)
                                     + timedelta(milliseconds=40)))


def _open(qtbot, page, device_id: str):
    assert page.show_device(device_id)
    detail = page.detail
    qtbot.waitUntil(lambda: detail.loaded_device_id == device_id, timeout=10_000)
    return detail


def test_detail_shows_values_sparklines_alerts_link_and_history(qtbot, store, make_page):
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    assert detail.isVisible()
    assert detail.title.text() == "North pump"
    assert detail.overview.value_metrics() == ["battery_pct", "temp"]
    assert detail.overview.sparkline("temp").point_count() == 10
    qtbot.waitUntil(lambda: detail.alerts.alert_list.topLevelItemCount() == 1, timeout=15_000)
    assert detail.alerts.alert_list.topLevelItem(0).text(1) == "critical"
    assert "99 received" in detail.overview.info_labels["link"].text()
    assert ("ping", "ok", "40 ms") in detail.commands.command_rows()

    # live telemetry extends the sparkline and the table row
    now = datetime.now(UTC)
    page.apply_events([TelemetryReceived("pump-1", (
        Reading("pump-1", "temp", now, 42.0), Reading("pump-1", "battery_pct", now, 12.0)))])
    assert detail.overview.sparkline("temp").point_count() == 11
    assert detail.overview._value_rows["temp"].value.text() == "42"
    row = page.model.row_of("pump-1")
    assert page.model.index(row, Col.BATTERY).data() == "12"


def test_identity_edits_persist_to_the_store(qtbot, store, make_page):
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    detail.overview.name_edit.setText("South pump")
    detail.overview.tags_edit.setText("yard, critical , ")
    detail.overview.lat_edit.setText("52.52")
    detail.overview.lon_edit.setText("13.405")
    detail.overview.location_label_edit.setText("Pump house 3")
    detail.overview.save_button.click()
    qtbot.waitUntil(lambda: detail.overview.save_status.text() == "Saved", timeout=10_000)
    saved = store.registry.get("pump-1")
    assert saved.name == "South pump"
    assert saved.tags == frozenset({"yard", "critical"})
    assert saved.location == Location(52.52, 13.405, "Pump house 3")
    assert page.model.index(page.model.row_of("pump-1"), Col.NAME).data() == "South pump"

    detail.overview.lat_edit.setText("95")  # invalid latitude: message, nothing saved
    detail.overview.save_button.click()
    assert "latitude" in detail.overview.save_status.text()
    assert detail.overview.save_status.property("role") == "error"
    assert store.registry.get("pump-1").location.latitude == 52.52



def test_an_edit_from_a_stale_read_is_refused_and_the_other_edit_kept(qtbot, store, make_page):
    """Two consoles edit the same device: the second save, made from the version
    it loaded before the first was saved, is refused with the reason instead of
    silently overwriting the colleague's name."""
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    loaded = detail.device
    colleague = store.registry.save(Device("pump-1", name="Colleague's name",
                                           device_type="pump", organization="acme"),
                                    expected_version=loaded.version)
    assert colleague.version == loaded.version + 1
    detail.overview.name_edit.setText("My name")
    detail.overview.save_button.click()
    qtbot.waitUntil(lambda: "Not saved" in detail.overview.save_status.text(), timeout=10_000)
    assert f"changed since version {loaded.version}" in detail.overview.save_status.text()
    assert detail.overview.save_status.property("role") == "error"
    assert store.registry.get("pump-1").name == "Colleague's name"

def test_shadow_editor_validates_json_and_reports_version_conflicts(
        qtbot, store, make_page, shadows):
    _seed(store)
    shadows.docs["pump-1"] = ShadowDocument("pump-1", {"interval_s": 30, "led": "off"},
                                            {"interval_s": 60, "led": "off"}, version=4)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    detail.tabs.setCurrentIndex(1)
    qtbot.waitUntil(lambda: detail.shadow_tab.shadow is not None, timeout=15_000)
    assert "Version 4" in detail.shadow_tab.shadow_version.text()
    rows = {key: (want, have, differs)
            for key, want, have, differs in detail.shadow_tab.shadow_rows()}
    assert rows["interval_s"] == ("30", "60", True)
    assert rows["led"] == ('"off"', '"off"', False)

    detail.shadow_tab.shadow_editor.setPlainText('{"interval_s": 15,')
    assert detail.shadow_tab.shadow_error.isVisible()
    assert "not valid JSON" in detail.shadow_tab.shadow_error.text()
    assert not detail.shadow_tab.shadow_apply.isEnabled()
    detail.shadow_tab.shadow_editor.setPlainText("[1, 2]")
    assert "must be a JSON object" in detail.shadow_tab.shadow_error.text()

    detail.shadow_tab.shadow_editor.setPlainText('{"interval_s": 15}')  # "led" removed -> deleted
    assert detail.shadow_tab.shadow_apply.isEnabled()
    detail.shadow_tab.shadow_apply.click()
    qtbot.waitUntil(lambda: "version 5" in detail.shadow_tab.shadow_error.text(), timeout=15_000)
    assert shadows.docs["pump-1"].desired == {"interval_s": 15}

    # someone else updates the shadow: our next write conflicts, and says so
    shadows.update_desired("pump-1", {"interval_s": 20})
    detail.shadow_tab.shadow_editor.setPlainText('{"interval_s": 10}')
    detail.shadow_tab.shadow_apply.click()
    qtbot.waitUntil(lambda: "Version conflict" in detail.shadow_tab.shadow_error.text(),
                    timeout=15_000)
    assert detail.shadow_tab.shadow_error.property("role") == "error"
    assert shadows.docs["pump-1"].desired == {"interval_s": 20}


def test_command_buttons_call_the_command_channel(qtbot, store, make_page, channel):
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    detail.tabs.setCurrentIndex(2)
    detail.commands.ping_button.click()
    qtbot.waitUntil(lambda: "ping: ok" in detail.commands.command_status.text(), timeout=15_000)
    assert channel.sent[-1] == ("pump-1", "ping", None)
    assert detail.commands.command_rows()[0] == ("ping", "ok", "12 ms")

    detail.commands.interval_spin.setValue(45)
    detail.commands.interval_button.click()
    qtbot.waitUntil(lambda: len(channel.sent) == 2, timeout=15_000)
    assert channel.sent[-1] == ("pump-1", "set-interval", {"seconds": 45})

    asked: list[str] = []
    detail.confirm = lambda title, text: asked.append(title) or False
    detail.commands.reboot_button.click()
    assert asked == ["Reboot device"] and len(channel.sent) == 2  # cancelled: not sent
    detail.confirm = lambda title, text: True
    detail.commands.reboot_button.click()
    qtbot.waitUntil(lambda: len(channel.sent) == 3, timeout=15_000)
    assert channel.sent[-1][1] == "reboot"

    channel.outcome = CommandOutcome.TIMEOUT
    detail.commands.identify_button.click()
    qtbot.waitUntil(lambda: "identify: timeout" in detail.commands.command_status.text(),
                    timeout=15_000)
    assert detail.commands.command_status.property("role") == "error"

    # a command event from the hub updates the history
    record = CommandRecord("req-x", "pump-1", "ping", status=CommandStatus.SENT)
    detail.apply_events([CommandChanged(record)])
    assert detail.commands.command_rows()[0] == ("ping", "sent", "")


def test_ports_missing_on_the_backend_disable_their_controls(qtbot, store, make_page):
    _seed(store)
    bare = Backend("bare", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry)
    page = make_page(bare)
    assert page.bridge is None  # no live feed, no bridge
    detail = _open(qtbot, page, "pump-1")
    commands = detail.commands
    for button in (commands.ping_button, commands.reboot_button, commands.interval_button,
                   commands.identify_button):
        assert not button.isEnabled()
        assert "Not available on the bare backend" in button.toolTip()
    assert not detail.shadow_tab.shadow_apply.isEnabled()
    assert "no shadow service" in detail.shadow_tab.shadow_apply.toolTip()
    assert detail.overview.name_edit.isEnabled() and detail.overview.save_button.isEnabled()


def test_decommission_and_register_round_trip(qtbot, store, make_page):
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "meter-2")
    qtbot.waitUntil(lambda: detail.device is not None, timeout=15_000)
    detail.confirm = lambda title, text: True
    detail.decommission()
    qtbot.waitUntil(lambda: store.registry.get("meter-2").status
                    is DeviceStatus.DECOMMISSIONED, timeout=15_000)
    qtbot.waitUntil(lambda: page.model.index(page.model.row_of("meter-2"), Col.STATUS).data()
                    == "decommissioned", timeout=15_000)
    assert not detail.decommission_button.isEnabled()

    dialog = RegisterDeviceDialog(["pump"], ["acme"], page)
    qtbot.addWidget(dialog)
    ok = dialog.buttons.buttons()[0]
    dialog.id_edit.setText("bad id!")
    assert not ok.isEnabled() and "contains" in dialog.error.text()
    dialog.id_edit.setText("pump-99")
    dialog.name_edit.setText("New pump")
    dialog.tags_edit.setText("yard")
    assert ok.isEnabled()
    page.register_device(dialog.device())
    qtbot.waitUntil(lambda: page.model.row_of("pump-99") is not None, timeout=15_000)
    registered = store.registry.get("pump-99")
    assert (registered.name, registered.device_type, registered.organization) == (
        "New pump", "pump", "acme")
    assert page.detail.device_id == "pump-99"

    page.register_device(Device("pump-1"))  # already registered: refused with a message
    qtbot.waitUntil(lambda: "already registered" in page.status_label.text(), timeout=15_000)
    page.register_device(Device("meter-2", name="Back again"))  # re-register retired device
    qtbot.waitUntil(lambda: store.registry.get("meter-2").status is DeviceStatus.OFFLINE,
                    timeout=15_000)


def test_link_statistics_follow_the_hub_while_the_detail_is_open(qtbot, store, make_page,
                                                                   monkeypatch):
    """A reboot counted by the hub shows in the open detail without reopening it."""
    from plugins.devices.widgets import overview_tab as detail_module

    monkeypatch.setattr(detail_module, "LINK_REFRESH_MS", 200)
    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    assert "99 received" in detail.overview.info_labels["link"].text()
    assert "0 reboots" in detail.overview.info_labels["link"].text()

    store.link_stats.upsert_many([LinkStats("pump-1", last_seq=3, received=130, lost=1,
                                            reboots=1)])
    qtbot.waitUntil(lambda: "1 reboot" in detail.overview.info_labels["link"].text(),
                    timeout=30_000)
    assert "130 received" in detail.overview.info_labels["link"].text()


def test_a_devices_update_repaints_its_status_pill_only_when_the_status_changes(
        qtbot, store, make_page):
    """Every update of the shown device reaches the detail (beside a large fleet,
    every few seconds); setting the pill's style sheet again each time
    re-polished it and laid out the title row, a 20 ms stall."""
    from dataclasses import replace as replaced

    from PySide6.QtCore import QEvent, QObject

    from core.model.events import AlertChanged, DeviceChanged

    _seed(store)
    page = make_page()
    detail = _open(qtbot, page, "pump-1")
    qtbot.waitUntil(lambda: detail.alerts.alert_list.topLevelItemCount() == 1, timeout=15_000)
    restyled: list[int] = []

    class _Watch(QObject):
        def eventFilter(self, _watched, event) -> bool:
            if event.type() == QEvent.Type.StyleChange:
                restyled.append(1)
            return False

    watch = _Watch()
    detail.status_pill.installEventFilter(watch)
    shown = detail.status_pill.text()
    device = store.registry.get("pump-1")
    for minute in range(5):
        page.apply_events([DeviceChanged(replaced(device, last_seen=device.last_seen
                                                   + timedelta(minutes=minute)))])
    assert restyled == [] and detail.status_pill.text() == shown == "CRITICAL"

    alert = store.alerts.list()[0]
    page.apply_events([AlertChanged(alert.resolve("ops", at=datetime.now(UTC)))])
    assert restyled and detail.status_pill.text() != "CRITICAL"
