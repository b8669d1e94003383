"""Hook implementations of the Alerts plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import AlertRuleTypeSpec, CliCommand, PageSpec, StatusWidgetSpec


def _page(context: AppContext) -> Any:
    from plugins.alerts.widgets.alerts_page import build_alerts_page

    return build_alerts_page(context)


def _rejected_page(context: AppContext) -> Any:
    from plugins.alerts.widgets.quarantine_page import build_quarantine_page

    return build_quarantine_page(context)


def _alert_status(context: AppContext) -> Any:
    from plugins.alerts.widgets.status import build_alert_status

    return build_alert_status(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("alerts", "Alerts", _page, icon="alerts", order=20,
                      tooltip="Alert queue: acknowledge, resolve, snooze; alert rules"))
    register(PageSpec("rejected", "Rejected", _rejected_page, icon="page", order=25,
                      tooltip="Messages the hub quarantined, with the reason and payload"))


@hookimpl
def smartiot_register_status_widgets(register: Callable[[StatusWidgetSpec], None]) -> None:
    register(StatusWidgetSpec("alerts.active", _alert_status, order=30))


@hookimpl
def smartiot_register_alert_rule_types(register: Callable[[AlertRuleTypeSpec], None]) -> None:
    from plugins.alerts.rule_types import register_rule_types

    register_rule_types(register)


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.alerts.commands import configure_alerts, run_alerts

    register(CliCommand("alerts", "list, acknowledge, snooze and resolve alerts", configure_alerts,
                        run_alerts))
    from plugins.alerts.rules_cli import configure_rules, run_rules

    register(CliCommand("rules", "list, add, import and export alert rules", configure_rules,
                        run_rules))
