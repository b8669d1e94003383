"""What the Devices page and ``smartiot devices`` do with the ports, without Qt.

Every function here blocks (it talks to the store or the hub); the page calls
them on a worker thread, the CLI calls them directly. Changes go through
core.services.devices.DeviceService with the person's Actor (role check and
audit entry there, not here).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from core.errors import NotFound, ValidationError
from core.model import (
    Alert,
    AlertState,
    CommandRecord,
    Device,
    LinkStats,
    Location,
    Reading,
    Severity,
)
from core.model.roles import Actor
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery
from core.ports.backend import Backend
from core.ports.commands import CommandResult
from core.ports.shadows import ShadowDocument
from core.ports.telemetry import Series
from core.services.devices import DeviceService
from core.services.fleet_health import worst_open_severity
from core.services.wiring import build_services

TABLE_METRICS = ("battery_pct", "rssi")
OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
SPARKLINE_WINDOW = timedelta(minutes=15)


# -- the fleet list ------------------------------------------------------------------------
@dataclass
class FleetSnapshot:
    """``worst``: each device's most severe open alert, which with its link
    makes its health (core.services.fleet_health)."""

    devices: list[Device]
    latest_values: dict[str, dict[str, float]]
    alert_counts: dict[str, int]
    worst: dict[str, Severity] = field(default_factory=dict)


def load_fleet(backend: Backend) -> FleetSnapshot:
    """Three whole-fleet queries: registry, latest battery/RSSI, open alerts."""
    open_alerts = backend.alerts.list(AlertQuery(states=OPEN_STATES))
    return FleetSnapshot(backend.registry.list(),
                         backend.telemetry.latest_values(list(TABLE_METRICS)),
                         dict(Counter(a.device_id for a in open_alerts)),
                         worst_open_severity(open_alerts))


def open_alert_summary(backend: Backend, device_ids: Iterable[str]
                       ) -> tuple[dict[str, int], dict[str, Severity | None]]:
    """Open-alert count and worst open severity (the device's health) of some
    devices, in one query for any number of them."""
    ids = set(device_ids)
    mine = [a for a in backend.alerts.list(AlertQuery(states=OPEN_STATES)) if a.device_id in ids]
    counts = Counter(a.device_id for a in mine)
    worst = worst_open_severity(mine)
    return ({d: counts.get(d, 0) for d in ids}, {d: worst.get(d) for d in ids})


def open_alert_counts(backend: Backend, device_ids: Iterable[str]) -> dict[str, int]:
    """Exact open-alert counts for a few devices (after live alert events)."""
    return {
        device_id: len(backend.alerts.list(AlertQuery(device_id=device_id, states=OPEN_STATES)))
        for device_id in device_ids
    }


# -- one device ----------------------------------------------------------------------------
@dataclass
class DeviceDetails:
    device: Device
    latest: dict[str, Reading] = field(default_factory=dict)
    series: dict[str, Series] = field(default_factory=dict)
    alerts: list[Alert] = field(default_factory=list)
    link: LinkStats | None = None
    commands: list[CommandRecord] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # part -> message


def load_details(backend: Backend, device_id: str) -> DeviceDetails:
    """Everything the detail panel shows; a failing part is reported, not fatal."""
    details = DeviceDetails(backend.registry.get(device_id))
    now = utcnow()
    try:
        details.latest = backend.telemetry.latest(device_id)
        for metric in sorted(details.latest):
            details.series[metric] = backend.telemetry.query(
                device_id, metric, now - SPARKLINE_WINDOW, now + timedelta(seconds=1))
    except Exception as exc:  # noqa: BLE001 - shown next to the values
        details.errors["telemetry"] = str(exc)
    try:
        details.alerts = backend.alerts.list(AlertQuery(device_id=device_id, limit=200))
    except Exception as exc:  # noqa: BLE001
        details.errors["alerts"] = str(exc)
    if backend.link_stats is not None:
        try:
            details.link = backend.link_stats.get(device_id)
        except Exception as exc:  # noqa: BLE001
            details.errors["link"] = str(exc)
    if backend.command_log is not None:
        try:
            details.commands = backend.command_log.list_for(device_id, limit=50)
        except Exception as exc:  # noqa: BLE001
            details.errors["commands"] = str(exc)
    return details


def load_shadow(backend: Backend, device_id: str) -> ShadowDocument:
    if backend.shadows is None:
        raise NotFound("this backend offers no device shadows")
    return backend.shadows.get(device_id)


def parse_desired(text: str) -> dict[str, Any]:
    """The shadow editor's JSON: an object, or a ValidationError saying what is wrong."""
    if not text.strip():
        raise ValidationError("desired state is empty; enter a JSON object such as {}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ValidationError(
            f"desired state must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


def edit_device(
    device: Device,
    *,
    name: str,
    tags: Iterable[str],
    location: tuple[float, float, str] | None,
) -> Device:
    """The edited device, validated (raises ValidationError)."""
    clean_tags = frozenset(t.strip() for t in tags if t.strip())
    loc = None if location is None else Location(location[0], location[1], location[2].strip())
    return replace(device, name=name.strip(), tags=clean_tags, location=loc, updated_at=utcnow())


def device_service(backend: Backend) -> DeviceService:
    return build_services(backend).devices


def register_device(backend: Backend, device: Device, actor: Actor) -> Device:
    """Register a new device, or re-register a decommissioned one on purpose."""
    return device_service(backend).register(device, actor)


def decommission(backend: Backend, device_id: str, actor: Actor) -> Device:
    return device_service(backend).decommission(device_id, actor)


def save_device(backend: Backend, device: Device, actor: Actor) -> Device:
    return device_service(backend).update(device, actor)


def send_command(backend: Backend, device_id: str, command: str, actor: Actor,
                 params: dict[str, Any] | None = None, *,
                 timeout_s: float = 10.0) -> Future[CommandResult]:
    return device_service(backend).send_command(device_id, command, actor, params,
                                                timeout_s=timeout_s)


def update_desired(backend: Backend, device_id: str, desired: dict[str, Any], actor: Actor, *,
                   expected_version: int | None) -> ShadowDocument:
    return device_service(backend).update_desired(device_id, desired, actor,
                                                  expected_version=expected_version)


# -- saved filters ---------------------------------------------------------------------
class SavedFilters:
    """Named filter sets in a small JSON file next to the config file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): v for k, v in raw.items() if isinstance(v, dict)}

    def names(self) -> list[str]:
        return sorted(self.load(), key=str.lower)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.load().get(name)

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        name = name.strip()
        if not name:
            raise ValidationError("a saved filter needs a name")
        data = self.load()
        data[name] = dict(state)
        self._write(data)

    def delete(self, name: str) -> None:
        data = self.load()
        if data.pop(name, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


# -- CSV -----------------------------------------------------------------------------------
def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a CSV file (UTF-8 with BOM so spreadsheets guess right); returns data rows."""
    count = 0
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
            count += 1
    return count
