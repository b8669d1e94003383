"""Rule editor, alert detail panel and the rejected-messages page."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core.model import AlertRule, Reading, Severity
from core.model.events import MessageRejected
from core.model.link import QuarantinedMessage
from core.model.roles import Actor, Role
from core.services.session import LocalFleetApi
from core.services.wiring import build_services

pytestmark = pytest.mark.gui


@pytest.fixture
def editor(qtbot, backend):
    from plugins.alerts.widgets.rule_editor import RuleEditorDialog

    def make():
        dialog = RuleEditorDialog(LocalFleetApi(build_services(backend),
                                                Actor("maria", Role.ENGINEER)))
        qtbot.addWidget(dialog)
        with qtbot.waitSignal(dialog.rules_loaded, timeout=15_000):
            pass
        return dialog

    return make


def test_rule_editor_creates_a_threshold_rule_with_typed_params(qtbot, editor, store):
    dialog = editor()
    dialog.name.setText("Hot pumps")
    dialog.rule_type.setCurrentIndex(dialog.rule_type.findData("threshold"))
    form = dialog.param_forms["threshold"]
    form.fields["metric"].setText("temperature")
    form.fields["op"].setCurrentText("above")
    form.fields["limit"].setText("70")
    form.fields["hysteresis"].setText("2.5")
    form.fields["min_duration_s"].setText("300")
    dialog.severity.setCurrentIndex(dialog.severity.findData(Severity.CRITICAL))
    dialog.scope["device_types"].setText("pump, compressor")
    dialog.scope["tags"].setText("hall-a")
    dialog.auto_resolve.setChecked(False)
    dialog.escalate.setValue(15)
    with qtbot.waitSignal(dialog.saved, timeout=15_000):
        dialog.save_button.click()

    [rule] = store.rules.list()
    assert rule.name == "Hot pumps" and rule.rule_type == "threshold"
    assert rule.params == {"metric": "temperature", "op": "above", "limit": 70,
                           "hysteresis": 2.5, "min_duration_s": 300}
    assert rule.severity is Severity.CRITICAL
    assert rule.scope.device_types == {"pump", "compressor"}
    assert rule.scope.tags == {"hall-a"}
    assert rule.auto_resolve is False and rule.escalate_after_s == 900
    qtbot.waitUntil(lambda: [r.rule_id for r in dialog.rules()] == [rule.rule_id], timeout=15_000)


def test_rule_editor_rejects_bad_input_inline(qtbot, editor, store):
    dialog = editor()
    dialog.save_button.click()
    assert dialog.error.isVisible() or not dialog.error.isHidden()
    assert "name" in dialog.error.text()

    dialog.name.setText("Hot pumps")
    form = dialog.param_forms["threshold"]
    form.fields["metric"].setText("temperature")
    form.fields["limit"].setText("hot")
    dialog.save_button.click()
    assert "'limit'" in dialog.error.text() and "hot" in dialog.error.text()
    assert form.fields["limit"].property("invalid") is True

    dialog.rule_type.setCurrentIndex(dialog.rule_type.findData("composite"))
    dialog.param_forms["composite"].fields["rules"].setPlainText("[{not json")
    dialog.save_button.click()
    assert "not valid JSON" in dialog.error.text()
    qtbot.wait(100)
    assert store.rules.list() == []


def test_rule_editor_edits_and_reports_a_concurrent_save(qtbot, editor, store):
    from dataclasses import replace

    rule = AlertRule("Quiet devices", "no_data", {"minutes": 10}, rule_id="rule-quiet")
    store.rules.add(rule)
    dialog = editor()
    dialog.rule_list.setCurrentRow(0)
    assert dialog.param_forms["no_data"].fields["minutes"].text() == "10"

    store.rules.save(replace(rule, name="Quiet (edited elsewhere)", version=2))
    dialog.param_forms["no_data"].fields["minutes"].setText("20")
    dialog.save_button.click()
    qtbot.waitUntil(lambda: "changed in the meantime" in dialog.error.text(), timeout=15_000)
    assert store.rules.get("rule-quiet").params == {"minutes": 10}

    # wait for the list to reload the other console's version before editing again
    qtbot.waitUntil(lambda: dialog.rule_list.count() == 1
                    and "edited elsewhere" in dialog.rule_list.item(0).text(), timeout=10_000)
    dialog.rule_list.setCurrentRow(-1)
    dialog.rule_list.setCurrentRow(0)
    dialog.param_forms["no_data"].fields["minutes"].setText("20")
    with qtbot.waitSignal(dialog.saved, timeout=15_000):
        dialog.save_button.click()
    assert store.rules.get("rule-quiet").params == {"minutes": 20, "offline": True}

    dialog.delete_button.click()
    assert dialog.delete_button.text() == "Really delete?"
    with qtbot.waitSignal(dialog.deleted, timeout=15_000):
        dialog.delete_button.click()
    assert store.rules.list() == []


def test_detail_panel_shows_fields_history_and_metric_chart(qtbot, alerts_page, seed, store,
                                                            now):
    store.rules.add(AlertRule("Hot pumps", "threshold",
                              {"metric": "temperature", "op": "above", "limit": 70},
                              rule_id="temperature-high"))
    alert = seed("pump-00001", Severity.CRITICAL, minutes_ago=10)
    start = alert.created_at - timedelta(minutes=40)
    store.telemetry.write_batch([
        Reading("pump-00001", "temperature", start + timedelta(minutes=i), 60.0 + i / 3)
        for i in range(80)])
    store.alerts.save(alert.acknowledge("maria", "on my way"))
    store.audit.append("maria", "alert.acknowledge", alert.alert_id,
                       {"comment": "on my way"})

    page = alerts_page()
    page.select_alerts([alert.alert_id])
    detail = page.detail
    qtbot.waitUntil(lambda: detail.data is not None, timeout=15_000)
    assert detail.fields["Rule"].text() == "Hot pumps"
    assert "temperature-high" in detail.fields["Rule"].toolTip()
    assert detail.fields["Acknowledged"].text().startswith("maria at ")
    assert detail.fields["Comment"].text() == "on my way"
    history = [detail.history.item(i).text() for i in range(detail.history.count())]
    assert history[0].endswith("raised")
    assert any("acknowledged by maria: “on my way”" in h for h in history)
    x, _y = detail.curve.getData()
    assert len(x) == 60  # ±30 min of one-a-minute readings
    assert detail.threshold == 70
    assert detail.moment_line.value() == pytest.approx(alert.created_at.timestamp())
    assert "temperature" in detail.chart_title.text()


def test_detail_falls_back_to_the_device_first_metric_without_a_rule(qtbot, alerts_page,
                                                                    seed, store):
    alert = seed("pump-00001", Severity.WARNING, rule_id="gone-rule", minutes_ago=5)
    store.telemetry.write_batch([Reading("pump-00001", "pressure",
                                         alert.created_at - timedelta(minutes=1), 4.2)])
    page = alerts_page()
    page.select_alerts([alert.alert_id])
    qtbot.waitUntil(lambda: page.detail.data is not None, timeout=15_000)
    assert page.detail.data.metric == "pressure"
    assert page.detail.threshold is None
    assert len(page.detail.curve.getData()[0]) == 1


@pytest.fixture
def quarantine_page(qtbot, context):
    from plugins.alerts.widgets.quarantine_page import QuarantinePage

    def make():
        page = QuarantinePage(context)
        qtbot.addWidget(page)
        qtbot.waitUntil(lambda: page.alerts is not None and page.refresh_button.isEnabled(),
                        timeout=15_000)
        return page

    return make


def test_quarantine_lists_newest_first_with_counts_filter_and_payload(qtbot, store, now,
                                                                      quarantine_page, bus):
    messages = [
        QuarantinedMessage("dt/acme/pump-00001/telemetry", "bad_json", "Expecting value",
                           b"{temp: 7", "pump-00001", now - timedelta(minutes=3)),
        QuarantinedMessage("dt/acme/pump-00002/telemetry", "schema", "'seq' is required",
                           b'{"temperature": 71}', "pump-00002", now - timedelta(minutes=2)),
        QuarantinedMessage("dt/acme/x/telemetry", "bad_json", "binary", b"\x00\xff\x10ab",
                           None, now - timedelta(minutes=1)),
    ]
    store.quarantine.add_many(messages)
    page = quarantine_page()
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=15_000)
    assert [m.detail for m in page.model.messages()] == ["binary", "'seq' is required",
                                                         "Expecting value"]
    assert page.counts == {"bad_json": 2, "schema": 1}
    assert "3 rejected" in page.counts_label.text()
    assert page.model.index(0, 2).data() == "—"

    page.table.selectRow(0)
    assert page.payload.toPlainText() == "\x00\ufffd\x10ab"
    page.hex_mode.setChecked(True)
    assert page.payload.toPlainText().startswith("00000000  00 ff 10 61 62")

    page.reason_filter.setCurrentIndex(page.reason_filter.findData("schema"))
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=15_000)
    assert page.model.message(0).reason == "schema"

    live = QuarantinedMessage("dt/acme/pump-00003/telemetry", "schema", "too big", b"{}",
                              "pump-00003", now)
    bus.publish([MessageRejected(live)])
    qtbot.waitUntil(lambda: page.model.rowCount() == 2, timeout=15_000)
    assert page.model.message(0).detail == "too big"
    assert page.counts["schema"] == 2


def test_detail_of_a_reopened_alert_shows_the_earlier_resolution(qtbot, alerts_page, seed,
                                                                 store, now):
    alert = seed("pump-00001", Severity.CRITICAL, minutes_ago=30)
    acked = alert.acknowledge("maria", "on my way", at=now - timedelta(minutes=25))
    store.alerts.save(acked)
    resolved = acked.resolve("maria", "replaced the bearing", at=now - timedelta(minutes=20))
    store.alerts.save(resolved)
    store.alerts.save(resolved.reopen(81.5, "temperature above 70 °C",
                                      at=now - timedelta(minutes=2)))

    page = alerts_page()
    page.select_alerts([alert.alert_id])
    detail = page.detail
    qtbot.waitUntil(lambda: detail.data is not None, timeout=15_000)
    history = [detail.history.item(i).text() for i in range(detail.history.count())]
    assert [h.split("  ", 1)[1] for h in history] == [
        "raised",
        "acknowledged by maria: “on my way”",
        "resolved by maria: “replaced the bearing”",
        "reopened at value 81.5; it had been resolved by maria: “replaced the bearing”",
    ]
    assert detail.fields["State"].text() == "active"
    reopened_at = (now - timedelta(minutes=2)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert detail.fields["Reopened"].text() == reopened_at
    assert detail.fields["Resolved"].text() == "—"  # the current occurrence is open


def test_detail_shows_a_long_rule_name_whole(qtbot, alerts_page, seed, store):
    """The rule's name fits its line in the detail form: the id, which made it wrap
    onto a line the form has no room for, is in the tooltip."""
    store.rules.add(AlertRule("Pump vibration critical", "threshold",
                              {"metric": "vibration_rms", "op": "above", "limit": 7},
                              rule_id="demo-pump-vibration"))
    alert = seed("pump-00002", Severity.CRITICAL, rule_id="demo-pump-vibration")
    page = alerts_page()
    page.show()
    page.select_alerts([alert.alert_id])
    detail = page.detail
    qtbot.waitUntil(lambda: detail.data is not None, timeout=15_000)
    label = detail.fields["Rule"]
    qtbot.waitUntil(lambda: label.width() > 0, timeout=5_000)
    assert label.fontMetrics().horizontalAdvance(label.text()) <= label.width()
    assert label.text() == "Pump vibration critical"
    assert "demo-pump-vibration" in label.toolTip()
