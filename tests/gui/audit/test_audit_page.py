"""The Audit page with real widgets over a real SQLite store whose audit trail
is anchored: the filterable table, Export, and "Verify chain" before and after
someone deletes the newest rows behind the console's back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.context import AppContext
from core.errors import PermissionDenied
from core.hookspecs import hookimpl
from core.model import Device
from core.model.roles import Actor, Role
from core.ports.backend import Backend
from core.registrations import BackendSpec
from core.services.devices import DeviceService
from core.store import Store
from core.store.audit_anchor import AuditAnchor

ADMIN = Actor("ada", Role.ADMIN)


class BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "test store", lambda _ctx: self.backend))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    s.audit.anchor = AuditAnchor(b"k" * 32, tmp_path / "audit-anchor.json")
    devices = DeviceService(s.registry, s.audit)
    for i in range(3):
        devices.register(Device(f"pump-{i}", device_type="pump"), ADMIN)
    with pytest.raises(PermissionDenied):  # the refusal is what we want recorded
        devices.delete("pump-0", Actor("tess", Role.TECHNICIAN))
    yield s
    s.close()


@pytest.fixture
def make_page(qtbot: Any, make_context: Callable[..., AppContext], store: Store
              ) -> Callable[[Actor], Any]:
    from plugins.audit.widgets.audit_page import AuditPage

    backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, audit=store.audit)

    def make(actor: Actor = ADMIN) -> AuditPage:
        context = make_context(("test-backend", BackendPlugin(backend)), actor=actor)
        page = AuditPage(context)
        qtbot.addWidget(page)
        return page

    return make


def _rows(page: Any) -> list[tuple[str, ...]]:
    model = page.model
    return [tuple(model.index(r, c).data() for c in range(model.columnCount()))
            for r in range(model.rowCount())]


def test_table_shows_newest_first_and_filters(qtbot: Any, make_page: Any) -> None:
    page = make_page()
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=15_000)
    rows = _rows(page)
    assert [r[0] for r in rows] == ["4", "3", "2", "1"]
    assert rows[0][2:7] == ("tess", "technician", "device.delete", "pump-0", "denied")
    assert rows[1][2:7] == ("ada", "admin", "device.register", "pump-2", "done")

    page.denied_only.setChecked(True)
    qtbot.waitUntil(lambda: page.model.rowCount() == 1, timeout=15_000)
    page.target_filter.setText("pump-1")
    page.denied_only.setChecked(False)  # reloads with both filters
    qtbot.waitUntil(lambda: [r[5] for r in _rows(page)] == ["pump-1"], timeout=15_000)
    page.since_filter.setText("last tuesday")
    page.reload()
    assert "Since:" in page.status.text() and page.status.property("role") == "error"


def test_verify_chain_says_intact_then_names_the_first_bad_entry(qtbot: Any, make_page: Any,
                                                                store: Store) -> None:
    page = make_page()
    with qtbot.waitSignal(page.verified, timeout=15_000) as ok:
        page.verify_button.click()
    assert ok.args[0].ok
    assert page.result_label.text().startswith("✓ audit trail intact: 4 entries")
    assert page.result_label.property("role") == "success"

    with store.engine.begin() as conn:  # someone deletes the newest rows
        conn.execute(text("DELETE FROM audit WHERE seq >= 4"))
    with qtbot.waitSignal(page.verified, timeout=15_000) as bad:
        page.verify_button.click()
    report = bad.args[0]
    assert not report.ok and report.first_bad_seq == 4
    assert "NOT intact — first bad entry #4" in page.result_label.text()
    assert "the newest entries were deleted" in page.result_label.text()
    assert page.result_label.property("role") == "error"


def test_export_writes_json_with_the_head_hash(qtbot: Any, make_page: Any, store: Store,
                                               tmp_path: Path) -> None:
    page = make_page()
    qtbot.waitUntil(lambda: page.model.rowCount() == 4, timeout=15_000)
    out = tmp_path / "audit.json"
    with qtbot.waitSignal(page.exported, timeout=15_000):
        page.export_to(out, "json")
    data = json.loads(out.read_text())
    assert data["head"]["seq"] == 4 and len(data["entries"]) == 4
    assert "Exported 4 entries" in page.result_label.text()
    assert store.audit.entries()[-1].action == "audit.export"


def test_a_role_without_audit_read_sees_why(qtbot: Any, make_page: Any) -> None:
    page = make_page(Actor("sam", Role.SUPPORT))
    assert not page.verify_button.isEnabled() and not page.export_button.isEnabled()
    assert "may not read or export the audit trail" in page.status.text()
    assert page.model.rowCount() == 0


def test_an_alert_id_target_is_shown_whole(qtbot: Any, make_page: Any) -> None:
    """Alert ids (32 hex digits) were cut to "949e0ba89dd84a2c…" while Who had
    190 pixels for "root"."""
    page = make_page()
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=15_000)
    from plugins.audit.widgets.audit_page import COLUMNS

    target = COLUMNS.index("Target")
    alert_id = "949e0ba89dd84a2c" * 2
    assert page.table.columnWidth(target) >= \
        page.table.fontMetrics().horizontalAdvance(alert_id) + 16
