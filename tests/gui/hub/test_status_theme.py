"""The status bar's separators follow a theme switch: they were coloured once
at start-up, so after dark → light (or back) they stood out in the other
theme's border colour."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QApplication

from console.theme import DARK, LIGHT, apply_theme
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.widgets.status import HubStatusWidget
from tests.gui.alerts.conftest import BackendPlugin

pytestmark = pytest.mark.gui


def test_separators_take_the_new_themes_border_colour(qtbot, make_context, tmp_path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'status.db'}")
    try:
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=EventBus(), rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)
        context = make_context(("test-backend", BackendPlugin(backend)))
        app = QApplication.instance()
        assert isinstance(app, QApplication)
        apply_theme(app, "light")
        widget = HubStatusWidget(context)
        qtbot.addWidget(widget)
        assert widget.separators
        assert all(LIGHT.border in s.styleSheet() for s in widget.separators)
        apply_theme(app, "dark")
        assert all(DARK.border in s.styleSheet() for s in widget.separators)
        apply_theme(app, "light")
        assert all(LIGHT.border in s.styleSheet() for s in widget.separators)
    finally:
        store.close()
