"""Everything the fleet dashboard shows, gathered in one background call.

Counts use the Smart_IOT dashboard's shape (core.services.fleet_stats) so the
AWS backend can hand its answer through; the time series come from the
telemetry and alert ports and are binned with numpy, not Python loops.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from core.model import Device, DeviceStatus, Severity
from core.model.timeutil import to_epoch_ms, utcnow
from core.ports.alerts import AlertQuery
from core.ports.backend import Backend
from core.services.fleet_health import load_fleet_health
from core.services.fleet_stats import FleetStatistics, compute_fleet_statistics
from plugins.analytics.series_math import HOUR_MS

# A metric every simulated and real device sends (the radio), so a device that
# reported anything in a bucket is counted as online then.
PRESENCE_METRIC = "rssi"
ONLINE_BUCKET_MS = 15 * 60_000
TOP_N = 10


@dataclass(frozen=True, slots=True)
class DeviceLocations:
    """Columns for the map; ``status`` holds DeviceStatus values."""

    device_id: list[str]
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    status: list[str]


@dataclass(frozen=True, slots=True)
class DashboardData:
    stats: FleetStatistics
    since: datetime
    online_ts_ms: npt.NDArray[np.int64]
    online_count: npt.NDArray[np.int64]
    online_note: str  # why the online chart is empty, if it is
    hour_start_ms: npt.NDArray[np.int64]
    alerts_per_hour: dict[str, npt.NDArray[np.int64]]  # severity -> count per hour
    firmware: list[tuple[str, int]]
    top_metric: str
    top: list[tuple[str, float]]  # (device_id, value), largest first
    metrics: list[str] = field(default_factory=list)  # choices for the top-N picker
    locations: DeviceLocations | None = None


def alerts_per_hour(created_ms: npt.NDArray[np.int64], severities: list[str], start_ms: int,
                    hours: int) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.int64]]]:
    """Counts per hour and severity with one ``np.bincount`` per severity."""
    origin = start_ms // HOUR_MS * HOUR_MS
    starts = origin + np.arange(hours, dtype=np.int64) * HOUR_MS
    index = (created_ms - origin) // HOUR_MS
    sev = np.array(severities, dtype=object)
    out: dict[str, npt.NDArray[np.int64]] = {}
    for severity in Severity:
        pick = (sev == severity.value) & (index >= 0) & (index < hours) if len(sev) else \
            np.zeros(0, dtype=bool)
        out[severity.value] = np.bincount(index[pick], minlength=hours).astype(np.int64)
    return starts, out


def top_devices(values: dict[str, dict[str, float]], metric: str, n: int = TOP_N
                ) -> list[tuple[str, float]]:
    pairs = [(device, row[metric]) for device, row in values.items() if metric in row]
    if not pairs:
        return []
    vals = np.array([v for _, v in pairs])
    order = np.argsort(-vals, kind="stable")[:n]
    return [pairs[i] for i in order.tolist()]


# Telemetry a moving device reports its position in (the simulator's trackers
# send lat/lon; "latitude"/"longitude" are accepted as well).
POSITION_METRICS = ("lat", "lon", "latitude", "longitude")


def _position(values: Mapping[str, float]) -> tuple[float, float] | None:
    for lat_key, lon_key in (("lat", "lon"), ("latitude", "longitude")):
        lat, lon = values.get(lat_key), values.get(lon_key)
        if lat is None or lon is None:
            continue
        # A reading out of range (a broken GPS fix) is not a place on the map.
        if math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 \
                and -180 <= lon <= 180 and (lat, lon) != (0.0, 0.0):
            return lat, lon
    return None


def device_locations(devices: Sequence[Device],
                     reported: Mapping[str, Mapping[str, float]]) -> DeviceLocations | None:
    """Where each device is: its newest reported position (trackers move), else
    the location it was registered with. None when no device has either."""
    ids: list[str] = []
    lats: list[float] = []
    lons: list[float] = []
    statuses: list[str] = []
    for d in devices:
        where = _position(reported.get(d.device_id, {}))
        if where is None and d.location is not None:
            where = (d.location.latitude, d.location.longitude)
        if where is None:
            continue
        ids.append(d.device_id)
        lats.append(where[0])
        lons.append(where[1])
        statuses.append(d.status.value)
    if not ids:
        return None
    return DeviceLocations(ids, np.array(lats, dtype=np.float64),
                           np.array(lons, dtype=np.float64), statuses)


def load_dashboard(backend: Backend, *, top_metric: str = "", hours: int = 24,
                   now: datetime | None = None) -> DashboardData:
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    # Health (open alerts and link) as status: the cards agree with the devices list.
    devices = load_fleet_health(backend.registry, backend.alerts).devices
    stats = compute_fleet_statistics(devices)
    working = [d for d in devices if d.status is not DeviceStatus.DECOMMISSIONED]

    try:
        online_ts, online_n = backend.telemetry.reporting_devices(
            since, now, bucket_ms=ONLINE_BUCKET_MS, metric=PRESENCE_METRIC)
        note = "" if online_ts.size else "No telemetry in the last 24 hours."
    except NotImplementedError:
        online_ts, online_n = np.empty(0, np.int64), np.empty(0, np.int64)
        note = f"Not available on the {backend.name} backend."

    alerts = backend.alerts.list(AlertQuery(since=since))
    created = np.array([to_epoch_ms(a.created_at) for a in alerts], dtype=np.int64)
    hour_starts, per_hour = alerts_per_hour(created, [a.severity.value for a in alerts],
                                            to_epoch_ms(since), hours + 1)

    firmware = Counter(d.firmware_version or "unknown" for d in working)

    metric_names = sorted({m for d in working[:20] for m in backend.telemetry.metrics_for(
        d.device_id)}) if working else []
    metric = top_metric or ("temperature" if "temperature" in metric_names else
                            (metric_names[0] if metric_names else ""))
    top = top_devices(backend.telemetry.latest_values([metric]), metric) if metric else []

    locations = device_locations(working, backend.telemetry.latest_values(POSITION_METRICS))

    return DashboardData(stats, since, online_ts, online_n, note, hour_starts, per_hour,
                         sorted(firmware.items(), key=lambda kv: (-kv[1], kv[0])), metric, top,
                         metric_names, locations)
