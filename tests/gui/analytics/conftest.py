"""Fixtures for the Analytics GUI tests: a real SQLite store seeded with
simulated telemetry, the in-process EventBus as the live feed, and the real
Analytics widgets."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from core.context import AppContext
from core.ports.backend import Backend
from core.services.event_bus import EventBus
from core.store import Store
from tests.gui.alerts.conftest import BackendPlugin, bus, db_url, store
from tests.gui.analytics.fleet_seed import seed_fleet


@pytest.fixture
def seeded(store: Store) -> datetime:
    return seed_fleet(store)


@pytest.fixture
def backend(store: Store, bus: EventBus) -> Backend:
    return Backend(name="local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, live=bus, rules=store.rules)


@pytest.fixture
def context(make_context: Callable[..., AppContext], backend: Backend) -> AppContext:
    # The alerts plugin brings the rule types (threshold, ...) an anomaly's rule needs,
    # as in the console.
    import plugins.alerts.plugin as alerts_plugin

    return make_context(("test-backend", BackendPlugin(backend)), ("alerts", alerts_plugin))


@pytest.fixture
def analytics_page(qtbot: Any, context: AppContext, seeded: datetime) -> Any:
    from plugins.analytics.widgets.analytics_page import AnalyticsPage

    page = AnalyticsPage(context)
    qtbot.addWidget(page)
    page.resize(1300, 850)
    page.show()
    qtbot.waitUntil(lambda: page.history.picker.devices.count() == 10, timeout=20_000)
    return page


__all__ = ["analytics_page", "backend", "bus", "context", "db_url", "seeded", "store"]
