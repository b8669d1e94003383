"""The Devices page on the REST API (the hub's, over real HTTP on a SQLite
store) with a fleet of several pages: the first page's rows show while the
rest are still on their way, the page says how far it got, and in the end
every device is in the table exactly once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from core.model import Alert, Device, DeviceStatus, Severity
from core.model.roles import Role
from core.store import Store
from plugins.api.client import HttpFleetApi, StaticToken
from plugins.devices.widgets import devices_page
from plugins.devices.widgets.devices_page import DevicesPage
from tests.integration.api.conftest import Api, start_api

ORG = "demo"
FLEET = 1_300
PAGE = 250


@pytest.fixture
def hub_api(tmp_path: Path) -> Iterator[Api]:
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.registry.upsert_many([
        Device(f"dev-{i:05d}", name=f"Pump {i}", device_type="pump", organization=ORG,
               status=DeviceStatus.ONLINE) for i in range(FLEET)])
    store.alerts.add(Alert("dev-01200", "r1", Severity.CRITICAL, "too hot"))
    gen = start_api(store, tmp_path)
    try:
        yield next(gen)
    finally:
        gen.close()  # type: ignore[attr-defined]
        store.close()


def test_first_rows_show_then_the_rest_fill_in_with_progress(
        qtbot: QtBot, hub_api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices_page, "FILL_PAGE", PAGE)
    token = hub_api.client.tokens.issue("support-1", Role.SUPPORT, ORG)
    http = HttpFleetApi(hub_api.client.base, StaticToken(token), retries=0)
    seen: list[tuple[int, bool, int, int, str]] = []  # rows, bar shown, value, max, status

    page = DevicesPage(api=http, saved_filters_path=tmp_path / "filters.json")
    qtbot.addWidget(page)

    def note(*_args: object) -> None:
        bar = page.fill_progress
        seen.append((page.model.rowCount(), not bar.isHidden(), bar.value(), bar.maximum(),
                     page.status_label.text()))

    page.model.modelReset.connect(note)
    page.model.rowsInserted.connect(note)
    page.show()
    qtbot.waitUntil(lambda: page.model.rowCount() == FLEET and not page.filling,
                    timeout=60_000)

    # the first page arrived alone, then the others one by one, never a reset
    assert [rows for rows, *_ in seen] == [PAGE * k for k in range(1, 6)] + [FLEET]
    # while the others were on their way the progress showed how many of how many
    inserted = seen[1:]
    assert all(shown and maximum == FLEET for _r, shown, _v, maximum, _t in inserted)
    assert [value for _r, _s, value, _m, _t in inserted] == [r for r, *_ in seen[:-1]]
    assert "Loading devices… 250 of 1,300" in [t for *_, t in seen]
    assert page.fill_progress.isHidden()
    assert page.status_label.text() == "" or not page.status_label.isVisible()

    ids = [page.model.device(r).device_id for r in range(page.model.rowCount())]
    assert sorted(ids) == [f"dev-{i:05d}" for i in range(FLEET)]
    assert len(set(ids)) == FLEET
    row = page.model.row_data(page.model.row_of("dev-01200") or 0)
    assert row.device.device_id == "dev-01200"
    assert row.alerts == 1 and row.worst is Severity.CRITICAL  # from its own page
    assert page.count_label.text() == "1,300 of 1,300"


def test_a_page_that_fails_keeps_the_rows_shown_and_says_so(
        qtbot: QtBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(devices_page, "FILL_PAGE", PAGE)
    store = Store.open(f"sqlite:///{tmp_path / 'store.db'}")
    store.registry.upsert_many([Device(f"dev-{i:05d}", organization=ORG)
                                for i in range(FLEET)])
    gen = start_api(store, tmp_path)
    server = next(gen)
    token = server.client.tokens.issue("support-1", Role.SUPPORT, ORG)
    http = HttpFleetApi(server.client.base, StaticToken(token), retries=0)
    http.actor  # noqa: B018  (signed in before the link goes)
    page = DevicesPage(api=http, saved_filters_path=tmp_path / "filters.json")
    qtbot.addWidget(page)
    # the link goes as the first page is shown, before the second is asked for
    page.model.modelReset.connect(lambda: gen.close())  # type: ignore[attr-defined]
    try:
        page.show()
        qtbot.waitUntil(lambda: page.model.rowCount() == PAGE and not page.filling
                        and "could not load the rest" in page.status_label.text(),
                        timeout=60_000)
        assert page.status_label.text().startswith("Showing the first 250 devices; ")
        assert "F5" in page.status_label.text()
        assert page.fill_progress.isHidden()
        assert page.refresh_button.isEnabled()
    finally:
        gen.close()  # type: ignore[attr-defined]
        store.close()
