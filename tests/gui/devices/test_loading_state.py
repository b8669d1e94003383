"""While the fleet's first answer is on its way the Devices page says
"Loading devices…" once, and never "No devices registered yet" beside it; a
failed load is not shown as an empty fleet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QLabel
from sqlalchemy import text

from core.identity import local_owner
from core.ports.backend import Backend
from core.services.session import LocalFleetApi
from core.services.wiring import build_services
from core.store import Store


def _said(page: Any) -> list[str]:
    return [label.text() for label in page.findChildren(QLabel)
            if label.isVisible() and label.text()]


def _page(qtbot: Any, backend: Backend, tmp_path: Path) -> Any:
    from plugins.devices.widgets.devices_page import DevicesPage

    page = DevicesPage(api=LocalFleetApi(build_services(backend), local_owner()),
                       live=backend.live, saved_filters_path=tmp_path / "filters.json")
    qtbot.addWidget(page)
    page.resize(1300, 800)
    page.show()
    return page


def test_loading_is_said_once_and_no_devices_only_after_the_answer(
        qtbot: Any, backend: Backend, tmp_path: Path) -> None:
    page = _page(qtbot, backend, tmp_path)
    # The load runs on a worker; its answer can only arrive through the event loop.
    assert page._loading
    texts = _said(page)
    assert sum("Loading" in t for t in texts) == 1, texts
    assert not any("No devices" in t for t in texts), texts
    qtbot.waitUntil(lambda: not page._loading, timeout=60_000)
    texts = _said(page)
    assert any(t.startswith("No devices registered yet") for t in texts), texts
    assert not any("Loading" in t for t in texts), texts

    page.refresh()  # a reload of an empty fleet: again one "Loading", no "No devices"
    texts = _said(page)
    assert sum("Loading" in t for t in texts) == 1 and not any("No devices" in t
                                                               for t in texts), texts
    qtbot.waitUntil(lambda: not page._loading, timeout=60_000)


def test_a_failed_load_is_not_shown_as_an_empty_fleet(
        qtbot: Any, backend: Backend, store: Store, tmp_path: Path) -> None:
    with store.engine.begin() as conn:  # the database lost its devices table
        conn.execute(text("DROP TABLE device_tags"))
        conn.execute(text("DROP TABLE devices"))
    page = _page(qtbot, backend, tmp_path)
    qtbot.waitUntil(lambda: not page._loading, timeout=60_000)
    texts = _said(page)
    assert any(t.startswith("Could not load devices") for t in texts), texts
    assert not any("No devices" in t or "Loading" in t for t in texts), texts
    assert any("could not be loaded" in t for t in texts), texts
