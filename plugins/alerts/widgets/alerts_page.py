"""The alert queue page, most severe and newest first."""

from __future__ import annotations

from console.widgets.record_page import RecordPage
from console.widgets.record_table import Column
from core.context import AppContext
from core.model import Alert

SEVERITY_COLOURS = {"critical": "#dc2626", "warning": "#d97706", "info": "#2563eb"}

COLUMNS = [
    Column("Severity", lambda a: a.severity.value,
           colour=lambda a: SEVERITY_COLOURS.get(a.severity.value)),
    Column("State", lambda a: a.state.value),
    Column("Device", lambda a: a.device_id),
    Column("Rule", lambda a: a.rule_id),
    Column("Message", lambda a: a.message),
    Column("Value", lambda a: a.value, align_right=True),
    Column("Raised", lambda a: a.created_at),
    Column("Acknowledged by", lambda a: a.acknowledged_by or ""),
]


def build_alerts_page(context: AppContext) -> RecordPage:
    def load() -> list[Alert]:
        alerts = context.backend.alerts.list()
        return sorted(alerts, key=lambda a: (-a.severity.rank, -a.created_at.timestamp()))

    return RecordPage("Alerts", COLUMNS, load, empty_text="No alerts. The fleet is quiet.",
                      sort_column=6)
