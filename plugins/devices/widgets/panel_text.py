"""Text helpers the detail panel's tabs share: times as people read them,
values in the units the fleet table uses, and status labels that take the
theme's colour for their role."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from PySide6.QtWidgets import QLabel

NOT_AVAILABLE = "Not available on the {backend} backend"

# Metrics read in whole units, as the fleet table shows them.
UNITS = {"rssi": ("dBm", 0), "battery_pct": ("%", 0)}


def local_time(ts: datetime | None) -> str:
    return "—" if ts is None else ts.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def format_value(metric: str, value: float) -> str:
    """"-71 dBm" rather than "-70.53": a radio's signal is read in whole dBm."""
    unit = UNITS.get(metric)
    if unit is None:
        return f"{value:.4g}"
    suffix, digits = unit
    return f"{value:.{digits}f} {suffix}"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested shadow state as dotted keys ("led.colour"), one row each."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key in sorted(value):
            out.update(flatten(value[key], f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value} if prefix else {}


def set_role(label: QLabel, role: str) -> None:
    label.setProperty("role", role)
    label.style().unpolish(label)
    label.style().polish(label)


def show_status(label: QLabel, text: str, role: str) -> None:
    """Say ``text`` in the colour of ``role`` (success, error, secondary); hide when empty."""
    label.setText(text)
    set_role(label, role)
    label.setVisible(bool(text))
