"""Hook implementations of the Alerts plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import PageSpec


def _page(context: AppContext) -> Any:
    from plugins.alerts.widgets.alerts_page import build_alerts_page

    return build_alerts_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("alerts", "Alerts", _page, icon="alerts", order=20,
                      tooltip="Alert queue: acknowledge and resolve"))
