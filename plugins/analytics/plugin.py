"""Hook implementations of the Analytics plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import CliCommand, PageSpec

# Used when present, never needed (docs/plugins.md, "What a plugin needs"): an
# anomaly becomes an alert rule of the alerts plugin's types, and a dashboard
# device opens on the Devices page.
OPTIONAL = ("alerts", "devices")


def _page(context: AppContext) -> Any:
    from plugins.analytics.widgets.analytics_page import AnalyticsPage

    return AnalyticsPage(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    # "live": a device's live chart (navigation.open("live", device_id)), e.g. from
    # the device detail panel
    register(PageSpec("analytics", "Analytics", _page, icon="analytics", order=40,
                      tooltip="Fleet dashboard, live and history charts, anomalies",
                      targets=("live",)))


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.analytics.commands import configure_export, run_export

    register(CliCommand("export", "export telemetry of devices and metrics as CSV or JSON",
                        configure_export, run_export))
