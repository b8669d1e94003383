"""The fleet inventory page."""

from __future__ import annotations

from console.widgets.record_page import RecordPage
from console.widgets.record_table import Column
from core.context import AppContext
from core.model import Device

STATUS_COLOURS = {"online": "#16a34a", "offline": "#6b7280", "warning": "#d97706",
                  "error": "#dc2626", "decommissioned": "#9ca3af"}

COLUMNS = [
    Column("Status", lambda d: d.status.value,
           colour=lambda d: STATUS_COLOURS.get(d.status.value)),
    Column("Device", lambda d: d.device_id),
    Column("Name", lambda d: d.name),
    Column("Type", lambda d: d.device_type),
    Column("Organization", lambda d: d.organization),
    Column("Firmware", lambda d: d.firmware_version or ""),
    Column("Tags", lambda d: ", ".join(sorted(d.tags))),
    Column("Last seen", lambda d: d.last_seen),
]


def build_devices_page(context: AppContext) -> RecordPage:
    def load() -> list[Device]:
        return context.backend.registry.list()

    return RecordPage(
        "Devices",
        COLUMNS,
        load,
        empty_text="No devices registered yet. Devices appear here when they first connect.",
        sort_column=1,
    )
