"""The alert queue against a real SQLite store and the in-process EventBus."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from PySide6.QtCore import Qt

from core.model import AlertState, Severity
from core.model.events import AlertChanged, TelemetryReceived
from core.store import Store
from plugins.alerts.widgets.alert_model import C_ACK, C_SEVERITY, C_SNOOZED, C_STATE

pytestmark = pytest.mark.gui


def shown_ids(page) -> list[str]:
    return [a.alert_id for a in page.model.alerts()]


def wait_loaded(qtbot, page, action) -> None:
    with qtbot.waitSignal(page.loaded, timeout=15_000):
        action()


def test_default_shows_open_alerts_most_severe_and_newest_first(alerts_page, seed):
    old_warning = seed("pump-00001", Severity.WARNING, minutes_ago=50)
    new_warning = seed("pump-00002", Severity.WARNING, minutes_ago=2)
    critical = seed("pump-00003", Severity.CRITICAL, minutes_ago=90)
    info = seed("env-00004", Severity.INFO, minutes_ago=1, state=AlertState.ACKNOWLEDGED,
                acknowledged_by="maria", ack_comment="on it")
    seed("env-00005", Severity.CRITICAL, state=AlertState.RESOLVED, resolved_by="system")

    page = alerts_page()

    assert shown_ids(page) == [critical.alert_id, new_warning.alert_id,
                               old_warning.alert_id, info.alert_id]
    model = page.model
    assert model.index(0, C_SEVERITY).data() == "critical"
    assert model.index(0, C_SEVERITY).data(Qt.ItemDataRole.DecorationRole) is not None
    assert model.index(0, C_SEVERITY).data(Qt.ItemDataRole.ForegroundRole).name() == "#dc2626"
    assert model.index(3, C_ACK).data() == "maria: on it"
    assert model.index(0, 6).data() == "1h 30m"
    assert "Raised" in model.index(0, 6).data(Qt.ItemDataRole.ToolTipRole)
    # the header counts what needs attention (the acknowledged info alert does not)
    assert page.strip.counts() == {Severity.CRITICAL: 1, Severity.WARNING: 2, Severity.INFO: 0}
    assert page.strip.open_label.text() == "· 4 open alerts"
    assert page.active_count == 3
    assert page.count_label.text() == "4 alerts"


def test_filters_by_state_severity_text_and_time(qtbot, alerts_page, seed):
    seed("pump-00001", Severity.WARNING, minutes_ago=3)
    hot = seed("pump-00002", Severity.CRITICAL, minutes_ago=4, rule_id="pressure-high",
               message="pressure above 8 bar")
    stale = seed("env-00003", Severity.CRITICAL, minutes_ago=60 * 30)
    resolved = seed("env-00004", Severity.INFO, state=AlertState.RESOLVED,
                    resolved_by="system")
    page = alerts_page()
    assert len(shown_ids(page)) == 3

    wait_loaded(qtbot, page, lambda: page.severity_filter.setCurrentIndex(
        page.severity_filter.findText("Critical")))
    assert set(shown_ids(page)) == {hot.alert_id, stale.alert_id}

    wait_loaded(qtbot, page, lambda: page.time_filter.setCurrentIndex(
        page.time_filter.findText("Last 24 hours")))
    assert shown_ids(page) == [hot.alert_id]

    wait_loaded(qtbot, page, lambda: page.time_filter.setCurrentIndex(0))
    wait_loaded(qtbot, page, lambda: page.text_filter.setText("PRESSURE"))
    assert shown_ids(page) == [hot.alert_id]
    wait_loaded(qtbot, page, lambda: page.text_filter.setText("env-000"))
    assert shown_ids(page) == [stale.alert_id]

    wait_loaded(qtbot, page, lambda: page.text_filter.clear())
    wait_loaded(qtbot, page, lambda: page.severity_filter.setCurrentIndex(0))
    wait_loaded(qtbot, page, lambda: page.state_filter.setCurrentIndex(
        page.state_filter.findText("Resolved")))
    assert shown_ids(page) == [resolved.alert_id]


def test_live_alert_events_update_rows_in_place_without_reset(qtbot, alerts_page, seed, bus):
    first = seed("pump-00001", Severity.WARNING, minutes_ago=10)
    second = seed("pump-00002", Severity.WARNING, minutes_ago=20)
    page = alerts_page()
    resets, changed, inserted, removed = [], [], [], []
    page.model.modelAboutToBeReset.connect(lambda: resets.append(1))
    page.model.dataChanged.connect(lambda tl, br, *_: changed.append((tl.row(), br.row())))
    page.model.rowsInserted.connect(lambda _p, a, b: inserted.append((a, b)))
    page.model.rowsRemoved.connect(lambda _p, a, b: removed.append((a, b)))

    acked = first.acknowledge("maria", "checking the pump")
    bus.publish([AlertChanged(acked)])
    qtbot.waitUntil(lambda: bool(changed), timeout=15_000)
    assert changed == [(0, 0)]
    assert page.model.index(0, C_STATE).data() == "acknowledged"
    assert page.model.index(0, C_ACK).data() == "maria: checking the pump"

    raised = replace(second, alert_id="new-critical", severity=Severity.CRITICAL,
                     device_id="pump-00003")
    bus.publish([AlertChanged(raised),
                 TelemetryReceived("pump-00003", ())])
    qtbot.waitUntil(lambda: bool(inserted), timeout=15_000)
    assert inserted == [(0, 0)]  # critical goes on top
    assert shown_ids(page)[0] == "new-critical"

    gone = second.resolve("system")
    bus.publish([AlertChanged(gone)])
    qtbot.waitUntil(lambda: bool(removed), timeout=15_000)
    assert second.alert_id not in shown_ids(page)  # resolved leaves the "Open" view

    stale = replace(first, message="old news")  # version 1 < the shown version 2
    bus.publish([AlertChanged(stale)])
    qtbot.wait(250)
    assert page.model.alert_at(page.model.row_of(first.alert_id)).state is \
        AlertState.ACKNOWLEDGED
    assert resets == []


def test_acknowledge_with_comment_through_the_dialog_persists(qtbot, alerts_page, seed,
                                                              store, context):
    alert = seed("pump-00001", Severity.CRITICAL)
    other = seed("pump-00002", Severity.WARNING)
    page = alerts_page()
    page.select_alerts([alert.alert_id])
    assert page.ack_button.isEnabled()

    page.table.setFocus()
    page.ack_button.click()
    dialog = page.comment_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.comment.setPlainText("valve replaced")
    with qtbot.waitSignal(page.actions_done, timeout=15_000) as done:
        dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    assert [r.ok for r in done.args[0]] == [True]

    stored = store.alerts.get(alert.alert_id)
    assert stored.state is AlertState.ACKNOWLEDGED
    assert stored.acknowledged_by == context.actor.user
    assert stored.ack_comment == "valve replaced"
    assert store.alerts.get(other.alert_id).state is AlertState.ACTIVE
    row = page.model.row_of(alert.alert_id)
    assert page.model.index(row, C_STATE).data() == "acknowledged"
    assert "Acknowledged 1 alert" in page.message.text()
    audit = [e for e in store.audit.entries() if e.subject.endswith(alert.alert_id)]
    assert audit and audit[-1].details.get("comment") == "valve replaced"


def test_concurrent_acknowledgement_from_another_console_names_the_winner(
        qtbot, alerts_page, seed, store, db_url):
    alert = seed("pump-00001", Severity.CRITICAL)
    mine = seed("pump-00002", Severity.CRITICAL, minutes_ago=7)
    page = alerts_page()
    page.select_alerts([alert.alert_id, mine.alert_id])

    with Store.open(db_url) as other_console:
        current = other_console.alerts.get(alert.alert_id)
        other_console.alerts.save(current.acknowledge("maria", "mine"))

    with qtbot.waitSignal(page.actions_done, timeout=15_000) as done:
        page.acknowledge_selected(comment="me too")
    results = {r.alert_id: r for r in done.args[0]}
    assert results[mine.alert_id].ok
    assert not results[alert.alert_id].ok

    winner = store.alerts.get(alert.alert_id)
    assert winner.acknowledged_by == "maria" and winner.ack_comment == "mine"
    when = winner.acknowledged_at.astimezone().strftime("%H:%M")
    assert f"pump-00001: already acknowledged by maria at {when}" in page.message.text()
    assert page.message.property("role") == "error"
    row = page.model.row_of(alert.alert_id)  # the row now shows the winner
    assert page.model.index(row, C_ACK).data() == "maria: mine"


def test_snooze_persists_and_shows_until_when(qtbot, alerts_page, seed, store, now):
    alert = seed("pump-00001", Severity.WARNING)
    page = alerts_page()
    page.select_alerts([alert.alert_id])
    until = now + timedelta(hours=1)
    with qtbot.waitSignal(page.actions_done, timeout=15_000):
        page.snooze_selected(until)
    stored = store.alerts.get(alert.alert_id)
    assert stored.snoozed_until is not None
    assert abs((stored.snoozed_until - until).total_seconds()) < 1
    row = page.model.row_of(alert.alert_id)
    assert page.model.index(row, C_SNOOZED).data() == until.astimezone().strftime(
        "%Y-%m-%d %H:%M")
    assert "Snoozed 1 alert" in page.message.text()


def test_snooze_menu_offers_the_standard_durations(alerts_page, seed, now):
    from plugins.alerts.widgets.alerts_page import snooze_until, tomorrow_morning

    seed()
    page = alerts_page()
    assert [a.text() for a in page.snooze_menu.actions()] == [
        "15 minutes", "1 hour", "4 hours", "Until tomorrow 08:00"]
    assert snooze_until(timedelta(minutes=15), now) == now + timedelta(minutes=15)
    morning = tomorrow_morning(now).astimezone()
    assert morning.hour == 8 and morning.date() == (now.astimezone().date() + timedelta(days=1))


def test_keyboard_shortcuts_select_all_and_acknowledge(qtbot, alerts_page, seed, store):
    a = seed("pump-00001")
    b = seed("pump-00002")
    page = alerts_page()
    page.show()
    qtbot.waitExposed(page)
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert len(page.selected_alerts()) == 2
    qtbot.keyClick(page.table, Qt.Key.Key_A)
    dialog = page.comment_dialog
    assert dialog is not None and "2 alerts" in dialog.prompt.text()
    with qtbot.waitSignal(page.actions_done, timeout=15_000):
        dialog.accept()
    assert {store.alerts.get(x.alert_id).state for x in (a, b)} == {AlertState.ACKNOWLEDGED}


def test_resolve_with_comment_leaves_the_open_view(qtbot, alerts_page, seed, store):
    alert = seed("pump-00001", Severity.CRITICAL)
    page = alerts_page()
    page.select_alerts([alert.alert_id])
    with qtbot.waitSignal(page.actions_done, timeout=15_000):
        page.resolve_selected(comment="false alarm")
    assert store.alerts.get(alert.alert_id).state is AlertState.RESOLVED
    assert alert.alert_id not in shown_ids(page)


def test_badge_shows_active_alerts_in_the_navigation(qtbot, seed, context, make_window):
    from plugins.alerts.widgets.alerts_page import AlertsPage
    from tests.gui.conftest import page as page_spec
    from tests.gui.conftest import pages_plugin

    first = seed("pump-00001", Severity.CRITICAL)
    seed("pump-00002", Severity.WARNING)
    seed("pump-00003", Severity.INFO, state=AlertState.ACKNOWLEDGED, acknowledged_by="x")
    context.plugins.register("alerts-page", pages_plugin(
        [page_spec("alerts", 20, factory=AlertsPage)])[1])
    window = make_window(context, show=True)
    page = window.show_page("alerts")
    qtbot.waitUntil(lambda: window.nav.badge("alerts") == "2", timeout=15_000)

    page.select_alerts([first.alert_id])
    page.acknowledge_selected(comment="")
    qtbot.waitUntil(lambda: window.nav.badge("alerts") == "1", timeout=15_000)


def test_value_rule_and_snoozed_columns_are_not_cut(qtbot, alerts_page, seed, now):
    from plugins.alerts.widgets.alert_model import C_RULE, C_VALUE, COLUMNS

    seed(value=-1234.56, snoozed_until=now + timedelta(hours=4), rule_id="demo-pump-vibration")
    page = alerts_page()
    header_fm = page.table.horizontalHeader().fontMetrics()
    cell_fm = page.table.fontMetrics()
    for col, title in enumerate(COLUMNS):
        if col != 4:  # Message stretches into what is left
            assert page.table.columnWidth(col) >= header_fm.horizontalAdvance(title) + 16, title
    row = page.model.index(0, C_VALUE)
    assert page.model.data(row) == "-1234.56"
    for col in (C_VALUE, C_SNOOZED):
        text = page.model.data(page.model.index(0, col))
        assert page.table.columnWidth(col) >= cell_fm.horizontalAdvance(text) + 16, COLUMNS[col]
    for name in ("Pump vibration critical", "Pump bearing worn out"):
        assert page.table.columnWidth(C_RULE) >= cell_fm.horizontalAdvance(name) + 16


def test_a_narrow_window_keeps_the_message_readable(qtbot, alerts_page, seed):
    """The empty Snoozed and Acknowledged columns give way before the
    message does (in the default window it read "Pu…")."""
    from plugins.alerts.widgets.alert_model import C_ACK, C_MESSAGE, C_SNOOZED
    from plugins.alerts.widgets.alerts_page import MESSAGE_MIN_PX

    page = alerts_page()
    page.resize(1800, 700)
    page.show()
    header = page.table.horizontalHeader()
    qtbot.waitUntil(lambda: header.sectionSize(C_MESSAGE) > MESSAGE_MIN_PX, timeout=5_000)
    wide = (header.sectionSize(C_ACK), header.sectionSize(C_SNOOZED))
    others = sum(header.sectionSize(c) for c in range(header.count()) if c != C_MESSAGE)
    chrome = page.width() - page.table.viewport().width()
    page.resize(others + chrome + MESSAGE_MIN_PX - 40, 700)  # 40 px short of the message's room
    qtbot.waitUntil(lambda: header.sectionSize(C_MESSAGE) >= MESSAGE_MIN_PX, timeout=5_000)
    assert header.sectionSize(C_SNOOZED) < wide[1]
    page.resize(1800, 700)
    qtbot.waitUntil(lambda: (header.sectionSize(C_ACK), header.sectionSize(C_SNOOZED)) == wide,
                    timeout=5_000)
