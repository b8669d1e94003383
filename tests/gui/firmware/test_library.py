"""The Library tab against the real store and signing key: importing with a
progress bar, signature status checked in the background, the version
distribution, duplicates refused in the dialog, and roles."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from core.context import AppContext
from core.model import Device
from core.store import Store
from plugins.firmware.widgets.library_tab import LibraryTab
from tests.gui.firmware.conftest import WAIT

pytestmark = pytest.mark.gui


@pytest.fixture
def make_tab(qtbot: Any, owned: Any) -> Any:
    def make(context: AppContext) -> LibraryTab:
        tab = owned(LibraryTab(context))
        tab.resize(1100, 700)
        tab.show()
        qtbot.waitUntil(lambda: tab.refresh_button.isEnabled(), timeout=WAIT)
        return tab

    return make


def _cell(tab: LibraryTab, firmware_id: str, column: int) -> str:
    row = tab.model.row_of(firmware_id)
    assert row is not None, f"{firmware_id} is not listed"
    return tab.model.index(row, column).data()


def test_import_with_progress_then_verified_and_duplicate_refused(
        qtbot: Any, make_tab: Any, context: AppContext, fleet: list[Device], tmp_path: Path,
        store: Store) -> None:
    tab = make_tab(context)
    assert tab.model.rowCount() == 0
    # The fleet's versions are charted per device type, newest first.
    assert tab.chart.rows == [("environmental", "3.2.0", 8), ("pump", "2.1.0", 5),
                              ("pump", "1.0.0", 25)]

    image = tmp_path / "pump-2.2.0.bin"
    image.write_bytes(os.urandom(3 * (1 << 20) + 123))  # several 1 MiB chunks: several steps
    tab.open_import()
    dialog = tab.import_dialog
    assert dialog is not None and dialog.isVisible()
    seen: list[int] = []
    dialog.progress.valueChanged.connect(seen.append)
    dialog.path.setText(str(image))
    # The file name fills in version and (known) device type.
    assert dialog.version.text() == "2.2.0"
    assert dialog.device_type.currentText() == "pump"
    dialog.notes.setPlainText("Faster boot\nFixes the pressure drift")
    with qtbot.waitSignal(dialog.imported, timeout=WAIT) as imported:
        dialog.import_button.click()
    firmware = imported.args[0]
    assert firmware.firmware_id == "pump@2.2.0"
    assert seen[-1] == 100 and len(seen) >= 3, seen  # fed by the callback, chunk by chunk
    assert dialog.progress.value() == 100
    assert not dialog.isVisible()

    # The row appears, selected, and the background check marks it verified.
    qtbot.waitUntil(lambda: tab.model.row_of("pump@2.2.0") is not None, timeout=WAIT)
    qtbot.waitUntil(lambda: _cell(tab, "pump@2.2.0", 3) == "verified", timeout=WAIT)
    assert tab.selected_id() == "pump@2.2.0"
    assert "Fixes the pressure drift" in tab.details.text()
    assert "signature verified" in tab.details.text()
    assert store.firmware.get_by_id("pump@2.2.0").size == image.stat().st_size

    # The same version again: refused, the error stays in the dialog.
    tab.open_import()
    again = tab.import_dialog
    again.path.setText(str(image))
    with qtbot.waitSignal(again.import_button.clicked, timeout=WAIT):
        again.import_button.click()
    qtbot.waitUntil(lambda: "already in the library" in again.message.text(), timeout=WAIT)
    assert again.isVisible() and again.message.isVisible()
    assert again.message.property("role") == "error"
    assert again.progress.value() == 0
    assert again.import_button.isEnabled()
    assert len(store.firmware.list("pump")) == 1
    again.reject()


def test_a_damaged_image_shows_a_failed_signature(
        qtbot: Any, make_tab: Any, context: AppContext, images: dict[str, Any],
        store: Store) -> None:
    # Swap the stored bytes behind the library's back: verify must catch it.
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("UPDATE firmware_images SET data = :img "
                          "WHERE firmware_id = 'pump@1.0.0'"), {"img": os.urandom(4096)})
    tab = make_tab(context)
    qtbot.waitUntil(lambda: _cell(tab, "pump@2.0.0", 3) == "verified", timeout=WAIT)
    assert _cell(tab, "pump@1.0.0", 3).startswith("FAILED")
    assert _cell(tab, "environmental@3.3.0", 3) == "verified"


def test_technician_cannot_import(qtbot: Any, make_tab: Any, technician: AppContext,
                                  images: dict[str, Any]) -> None:
    tab = make_tab(technician)
    qtbot.waitUntil(lambda: tab.model.rowCount() == 3, timeout=WAIT)
    assert not tab.import_button.isEnabled()
    assert "may not import firmware" in tab.import_button.toolTip()
    tab.open_import()
    assert tab.import_dialog is None
    assert "Not allowed" in tab.status.text()
