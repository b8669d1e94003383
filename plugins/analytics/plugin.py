"""Hook implementations of the Analytics plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import PageSpec


def _page(context: AppContext) -> Any:
    from plugins.analytics.widgets.dashboard_page import DashboardPage

    return DashboardPage(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("analytics", "Analytics", _page, icon="analytics", order=40,
                      tooltip="Fleet dashboard and telemetry charts"))
