"""Actions a role may not take look disabled and say why on the page (finding 8
of the team set-up: on a support console Import… and New deployment… were
disabled but drawn like enabled accent buttons; only a tooltip said why)."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QPushButton

from console.theme import style_sheet
from core.context import AppContext
from plugins.firmware.widgets.firmware_page import FirmwarePage
from tests.gui.firmware.conftest import WAIT

DISABLED_BACKGROUND = {"light": "#f5f6f8", "dark": "#1b1e23"}
ACCENT = {"light": "#2563eb", "dark": "#3b82f6"}


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_a_disabled_accent_button_is_drawn_disabled(qtbot: Any, theme: str) -> None:
    button = QPushButton("Import…")
    qtbot.addWidget(button)
    button.setStyleSheet(style_sheet(theme))
    button.setProperty("accent", True)
    button.resize(140, 32)
    enabled = button.grab().toImage()
    button.setEnabled(False)
    disabled = button.grab().toImage()
    inside = (8, 16)  # within the border, left of the centred text
    assert QColor(enabled.pixel(*inside)).name() == ACCENT[theme]
    assert QColor(disabled.pixel(*inside)).name() == DISABLED_BACKGROUND[theme]


def _page(qtbot: Any, owned: Any, context: AppContext) -> FirmwarePage:
    page = owned(FirmwarePage(context))
    page.resize(1200, 700)
    page.show()
    qtbot.waitUntil(lambda: page.library.refresh_button.isEnabled(), timeout=WAIT)
    return page


def test_support_sees_import_and_new_deployment_disabled_with_the_reason(
        qtbot: Any, owned: Any, role_context: Any) -> None:
    page = _page(qtbot, owned, role_context("support", "sam"))
    library, deployments = page.library, page.deployments
    assert not library.import_button.isEnabled()
    assert library.role_note.isVisible()
    assert library.role_note.text() == (
        "Signed in as sam (support), so these are greyed out; they need another role: "
        "Import… (engineer or admin).")
    page.tabs.setCurrentWidget(deployments)
    assert not deployments.new_button.isEnabled()
    assert deployments.role_note.isVisible()
    assert "New deployment…, Pause, Resume, Retry failed, Cancel… (engineer or admin)" \
        in deployments.role_note.text()


def test_an_engineer_sees_no_note(qtbot: Any, owned: Any, context: AppContext) -> None:
    page = _page(qtbot, owned, context)
    assert page.library.import_button.isEnabled()
    assert not page.library.role_note.isVisible()
    assert not page.deployments.role_note.isVisible() and page.deployments.role_note.text() == ""
