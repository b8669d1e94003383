"""Support's walk through the alert queue, by keyboard, in the real window.

The morning's queue: select every open alert (Ctrl+A), acknowledge them in one go
(A, one comment for all), snooze them (S, "1 hour"), then resolve them (R). After
each step the person sees it (the page's summary line, the navigation badge and
the status bar), and the store and the audit trail (read with `smartiot audit
list` in a real subprocess, as another person would) say the same.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu

from core.model import AlertState, Severity
from tests.e2e.test_first_hour import click, click_index, open_alerts
from tests.e2e.walk import Console, console_fixture  # noqa: F401 - the console fixture

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

WAIT = 30_000


def _audit(console: Console) -> list[dict[str, Any]]:
    result = subprocess.run([sys.executable, "-m", "console.cli", "audit", "list",
                             "--action", "alert.", "--json"], capture_output=True, text=True,
                            env=console.env, timeout=120)
    assert result.returncode == 0, result.stderr
    entries: list[dict[str, Any]] = json.loads(result.stdout)
    return entries


def _keys(qtbot: Any, widget: Any, key: Qt.Key,
          modifier: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    widget.setFocus()
    qtbot.keyClick(widget, key, modifier)


def _comment(qtbot: Any, page: Any, text: str) -> list[Any]:
    qtbot.waitUntil(lambda: page.comment_dialog is not None
                    and page.comment_dialog.isVisible(), timeout=WAIT)
    dialog = page.comment_dialog
    qtbot.keyClicks(dialog.comment, text)
    with qtbot.waitSignal(page.actions_done, timeout=WAIT) as done:
        click(qtbot, dialog.buttons.button(dialog.buttons.StandardButton.Ok))
    return list(done.args[0])


def _status_texts(console: Console) -> dict[str, str]:
    from plugins.local.widgets.status import HubStatusWidget

    status = console.window.statusBar().findChild(HubStatusWidget)
    assert status is not None
    texts: dict[str, str] = status.texts()
    return texts


def test_support_works_the_whole_queue_by_keyboard(
        console: Console, qtbot: Any) -> None:
    window, backend = console.window, console.backend
    # The demo's two problems: the hot server room (warning), the worn pump (critical).
    qtbot.waitUntil(lambda: {a.severity for a in open_alerts(backend)}
                    >= {Severity.WARNING, Severity.CRITICAL}, timeout=60_000)
    page = window.show_page("alerts")
    qtbot.waitUntil(lambda: len(page.model.alerts()) >= 2, timeout=WAIT)
    qtbot.waitUntil(lambda: bool(window.nav.badge("alerts")), timeout=WAIT)
    console.shot("support-1-queue")

    click_index(qtbot, page.table, page.model.index(0, 1))
    _keys(qtbot, page.table, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    chosen = {a.alert_id for a in page.selected_alerts()}
    assert chosen == {a.alert_id for a in page.model.alerts() if a.is_open}, \
        "Ctrl+A did not select the whole list"
    assert len(chosen) >= 2

    # A: one comment acknowledges them all.
    _keys(qtbot, page.table, Qt.Key.Key_A)
    results = _comment(qtbot, page, "on it")
    assert {r.alert_id for r in results if r.ok} == chosen
    assert page.message.text().startswith(f"Acknowledged {len(chosen)} alerts")
    console.shot("support-2-acknowledged")
    assert all(backend.alerts.get(i).state is AlertState.ACKNOWLEDGED for i in chosen)
    # Acknowledged is not fixed: nothing needs attention, the devices stay red.
    qtbot.waitUntil(lambda: not window.nav.badge("alerts"), timeout=WAIT)
    qtbot.waitUntil(lambda: "no alert needs attention" in _status_texts(console)["health"]
                    or _status_texts(console)["health"] == "", timeout=WAIT)
    assert "critical" in _status_texts(console)["devices"]

    # S: the snooze menu opens at the button; "1 hour" snoozes every selected alert.
    page.select_alerts(chosen)

    def pick_one_hour() -> None:
        menu = QApplication.activePopupWidget()
        if isinstance(menu, QMenu):
            next(a for a in menu.actions() if a.text() == "1 hour").trigger()
            menu.close()
        else:
            QTimer.singleShot(50, pick_one_hour)

    QTimer.singleShot(50, pick_one_hour)
    with qtbot.waitSignal(page.actions_done, timeout=WAIT) as snoozed:
        _keys(qtbot, page.table, Qt.Key.Key_S)
    assert {r.alert_id for r in snoozed.args[0] if r.ok} == chosen
    assert page.message.text().startswith(f"Snoozed {len(chosen)} alerts")
    assert all(a.is_snoozed() for a in open_alerts(backend) if a.alert_id in chosen)
    console.shot("support-3-snoozed")

    # R: resolve them all with what was done.
    page.select_alerts(chosen)
    _keys(qtbot, page.table, Qt.Key.Key_R)
    results = _comment(qtbot, page, "fixed on site")
    assert {r.alert_id for r in results if r.ok} == chosen
    assert page.message.text().startswith(f"Resolved {len(chosen)} alerts")
    assert all(backend.alerts.get(i).state is AlertState.RESOLVED for i in chosen)
    console.shot("support-4-resolved")

    # The trail has one entry per alert and action, with the comments.
    trail = _audit(console)
    for action, comment in (("acknowledge", "on it"), ("snooze", None),
                            ("resolve", "fixed on site")):
        mine = [e for e in trail if action in e["action"]
                and any(i.startswith(str(e.get("target", ""))[:8]) or
                        str(e.get("target", "")).endswith(i) for i in chosen)]
        assert len(mine) >= len(chosen), (action, [e["action"] for e in trail])
        if comment is not None:
            assert all(comment in json.dumps(e) for e in mine), mine
