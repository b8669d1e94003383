"""The deployment list's Progress column grows with its text, and the Note
column's full text is in its tooltip: right after a rollout started the
Progress column, sized when the row first appeared ("0 of 2 updated · 2 to
go"), cut "0 of 2 updated · 1 failed · 1 to go" to "0 of 2 updated · 1 …".
Real tab on a SQLite store, in both themes (screenshots in tmp for a person
to look at)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from console.theme import apply_theme
from core.context import AppContext
from core.model import Deployment, ExecutionStatus
from core.store import Store
from plugins.firmware.widgets.deployments_tab import DeploymentsTab
from tests.gui.firmware.conftest import WAIT

pytestmark = pytest.mark.gui


def _text(t: DeploymentsTab, deployment_id: str, col: int, role: int = 0) -> str:
    row = t.model.row_of(deployment_id)
    assert row is not None
    return str(t.model.index(row, col).data(role) or "")


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_progress_fits_and_the_note_is_in_full_in_its_tooltip(
        qtbot: Any, owned: Any, store: Store, context: AppContext, tmp_path: Path,
        make_deployment: Callable[..., Deployment], theme: str) -> None:
    app = QApplication.instance()
    apply_theme(app, theme)
    try:
        d = make_deployment(device_ids=["pump-00001", "pump-00002"])
        t = owned(DeploymentsTab(context))
        t.resize(1300, 800)
        t.show()
        qtbot.waitExposed(t)
        qtbot.waitUntil(lambda: t.model.row_of(d.deployment_id) is not None, timeout=WAIT)
        narrow = t.table.columnWidth(3)

        store.deployments.release(d.deployment_id, ["pump-00001"])
        store.deployments.update_execution(d.deployment_id, "pump-00001",
                                           ExecutionStatus.FAILED,
                                           status_details={"reason": "download-failed"})
        wanted = "0 of 2 updated · 1 failed · 1 to go"
        qtbot.waitUntil(lambda: _text(t, d.deployment_id, 3) == wanted, timeout=WAIT)
        qtbot.wait(100)
        metrics = t.table.fontMetrics()
        assert t.table.columnWidth(3) > narrow
        assert t.table.columnWidth(3) >= metrics.horizontalAdvance(wanted), \
            "the Progress column holds its text"
        header = t.table.horizontalHeader()
        assert all(t.table.columnWidth(c) >= header.sectionSizeHint(c) for c in range(7)), \
            "no header is cut either"
        note = _text(t, d.deployment_id, 7)
        assert note and _text(t, d.deployment_id, 7, Qt.ItemDataRole.ToolTipRole) == note
        assert header.stretchLastSection()
        t.grab().save(str(tmp_path / f"deployments-{theme}.png"))
    finally:
        apply_theme(app, "light")
