"""Analytics use cases: the dashboard statistics, the fleet overview the
dashboard page draws, sensor queries and chart histories, for the Analytics
page, ``smartiot export`` and ``/analytics/*`` alike.

Reading the fleet's data needs no permission (every role sees the fleet it
works on) but it is limited to the actor's organization: devices of another
organization are answered as unknown, and fleet-wide counts (statistics,
alerts, firmware versions, top-N, map) only count the actor's own devices.
An actor without an organization (the one-process console) sees all.

Nothing here changes data, so nothing is audited; the actor is still taken
on every call so the scope cannot be forgotten.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from core.errors import NotFound, ValidationError
from core.model import Device, DeviceStatus, Severity
from core.model.analytics import (
    HOUR_MS,
    ONLINE_BUCKET_MS,
    AlertMark,
    DeviceLocations,
    FleetDashboard,
    FleetOverview,
    History,
    HistoryRequest,
    SensorQuery,
    ThresholdLine,
)
from core.model.roles import Actor
from core.model.timeutil import to_epoch_ms, utcnow
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.hub import AlertRuleStore
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.telemetry import Series, TelemetryStore
from core.services.fleet_health import OPEN_STATES, fleet_health
from core.services.fleet_stats import compute_fleet_statistics

if TYPE_CHECKING:
    from core.services.wiring import Services

MAX_QUERY_DEVICES = 50
MAX_QUERY_SPAN = timedelta(days=366)
# A metric every simulated and real device sends (the radio), so a device that
# reported anything in a bucket is counted as online then.
PRESENCE_METRIC = "rssi"
TOP_N = 10
QUERY_THREADS = 4
# Telemetry a moving device reports its position in (the simulator's trackers
# send lat/lon; "latitude"/"longitude" are accepted as well).
POSITION_METRICS = ("lat", "lon", "latitude", "longitude")


class AnalyticsService:
    def __init__(self, registry: DeviceRegistry, alerts: AlertStore, telemetry: TelemetryStore,
                 *, rules: AlertRuleStore | None = None, backend_name: str = "",
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._registry = registry
        self._alerts = alerts
        self._telemetry = telemetry
        self._rules = rules
        self._backend_name = backend_name or "this"
        self._clock = clock

    # ------------------------------------------------------------------ scope
    def _devices(self, actor: Actor) -> list[Device]:
        orgs = frozenset({actor.organization}) if actor.organization else frozenset()
        return self._registry.list(DeviceQuery(organizations=orgs))

    def _check_device(self, actor: Actor, device_id: str) -> None:
        device = self._registry.find(device_id)
        if device is None or (actor.organization and device.organization != actor.organization):
            raise NotFound(f"device {device_id} is not registered")

    # ------------------------------------------------------------------ use cases
    def devices(self, actor: Actor) -> list[Device]:
        """The devices charts can be drawn for, with health as their status
        (the same statuses the devices list shows)."""
        devices = self._devices(actor)
        ids = {d.device_id for d in devices}
        open_alerts = [a for a in self._alerts.list(AlertQuery(states=OPEN_STATES))
                       if a.device_id in ids]
        return fleet_health(devices, open_alerts).devices

    def metrics(self, actor: Actor, device_ids: Sequence[str]) -> list[str]:
        """The metrics any of ``device_ids`` reported, sorted."""
        for device_id in device_ids:
            self._check_device(actor, device_id)
        return sorted({m for d in device_ids for m in self._telemetry.metrics_for(d)})

    def dashboard(self, actor: Actor) -> FleetDashboard:
        """The Smart_IOT dashboard's statistics (the registry's link status) plus
        open alerts by severity."""
        devices = self._devices(actor)
        stats = compute_fleet_statistics(devices)
        ids = {d.device_id for d in devices}
        open_alerts = [a for a in self._alerts.list(AlertQuery(states=OPEN_STATES))
                       if a.device_id in ids]
        by_severity = {s.value: 0 for s in Severity}
        for a in open_alerts:
            by_severity[a.severity.value] += 1
        return FleetDashboard(stats, len(open_alerts), by_severity)

    def sensor_query(self, actor: Actor, query: SensorQuery) -> list[Series]:
        """One metric of up to MAX_QUERY_DEVICES devices, optionally in buckets."""
        if not query.device_ids:
            raise ValidationError("device_ids: name at least one device")
        if len(query.device_ids) > MAX_QUERY_DEVICES:
            raise ValidationError(f"device_ids: at most {MAX_QUERY_DEVICES} devices per query")
        for device_id in query.device_ids:
            self._check_device(actor, device_id)
        check_span(query.start, query.end)
        return self._telemetry.query_many(list(query.device_ids), query.metric, query.start,
                                          query.end, bucket_ms=bucket_ms(query.bucket_s))

    def history(self, actor: Actor, request: HistoryRequest, *, overlays: bool = True
                ) -> History:
        """The series of a chart (and, with ``overlays``, its threshold lines and
        alert marks); bucketed in the store when the request has a bucket."""
        if not request.devices or not request.metrics:
            raise ValidationError("devices: name at least one device and one metric")
        for device_id in request.devices:
            self._check_device(actor, device_id)
        check_span(request.start, request.end)
        series = load_series(self._telemetry, request)
        if not overlays:
            return History(request, series)
        return History(request, series, threshold_lines(self._rules, request.metrics),
                       alert_marks(self._alerts, request.devices, request.start, request.end))

    def thresholds(self, actor: Actor, metrics: Sequence[str]) -> list[ThresholdLine]:
        """The enabled threshold rules' limits on ``metrics`` (rules are fleet-wide)."""
        return threshold_lines(self._rules, metrics)

    def overview(self, actor: Actor, *, top_metric: str = "", hours: int = 24,
                 now: datetime | None = None) -> FleetOverview:
        """The dashboard page's cards (health as status, like the devices list)
        and its charts: devices reporting over time, alerts per hour, firmware
        versions, the top-N devices by a metric and the map."""
        now = now or self._clock()
        devices = self.devices(actor)
        visible: set[str] | None = None
        if actor.organization:
            visible = {d.device_id for d in devices}
            if all(d.device_id in visible for d in self._registry.list()):
                visible = None  # the whole fleet is the actor's: fleet-wide counts are theirs
        return fleet_overview(devices, self._alerts, self._telemetry, visible=visible,
                              backend_name=self._backend_name, top_metric=top_metric,
                              hours=hours, now=now)


# ---------------------------------------------------------------------- helpers
def check_span(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValidationError(f"start: {start.isoformat()} must be before end {end.isoformat()}")
    if end - start > MAX_QUERY_SPAN:
        raise ValidationError("end: a query spans at most 366 days")


def bucket_ms(bucket_s: float | None) -> int | None:
    if bucket_s is None:
        return None
    if not math.isfinite(bucket_s) or not 1 <= bucket_s <= 86400:
        raise ValidationError(f"bucket_s: {bucket_s} must be between 1 and 86400 seconds")
    return int(bucket_s * 1000)


def load_series(telemetry: TelemetryStore, request: HistoryRequest) -> list[Series]:
    """Bucketed: one ``query_many`` per metric, and the store answers the
    overlay its fastest way (one grouped query on PostgreSQL, parallel
    per-device queries on SQLite). Raw: one query per (device, metric), a few
    at a time: there the rows are the cost, and the database (and SQLite's C
    code, which releases the GIL) works on several while Python turns rows into
    arrays. Results keep the request's order (device-major, like the pairs)."""
    if request.bucket_ms is not None:
        by_metric = {m: telemetry.query_many(request.devices, m, request.start, request.end,
                                             bucket_ms=request.bucket_ms)
                     for m in request.metrics}
        return [by_metric[m][i] for i in range(len(request.devices)) for m in request.metrics]
    pairs = [(d, m) for d in request.devices for m in request.metrics]

    def one(pair: tuple[str, str]) -> Series:
        return telemetry.query(pair[0], pair[1], request.start, request.end)

    if len(pairs) <= 1:
        return [one(p) for p in pairs]
    with ThreadPoolExecutor(max_workers=min(QUERY_THREADS, len(pairs)),
                            thread_name_prefix="history") as pool:
        return list(pool.map(one, pairs))


def threshold_lines(rules: AlertRuleStore | None, metrics: Sequence[str]) -> list[ThresholdLine]:
    """Enabled threshold rules on the charted metrics (rule types without a fixed
    limit, such as rate of change, have nothing to draw)."""
    if rules is None:
        return []
    wanted = set(metrics)
    lines: list[ThresholdLine] = []
    for rule in rules.list(enabled_only=True):
        metric = rule.params.get("metric")
        limit = rule.params.get("limit")
        if rule.rule_type != "threshold" or metric not in wanted:
            continue
        if isinstance(limit, bool) or not isinstance(limit, int | float):
            continue
        lines.append(ThresholdLine(rule.rule_id, rule.name, str(metric), float(limit),
                                   str(rule.params.get("op", "above")), rule.severity.value))
    return lines


def alert_marks(alerts: AlertStore, devices: Sequence[str], start: datetime,
                end: datetime) -> list[AlertMark]:
    marks: list[AlertMark] = []
    for device in devices:
        for alert in alerts.list(AlertQuery(device_id=device, since=start)):
            if alert.created_at < end:
                marks.append(AlertMark(device, to_epoch_ms(alert.created_at),
                                       alert.severity.value, alert.message))
    return sorted(marks, key=lambda m: m.ts_ms)


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


def top_devices(values: Mapping[str, Mapping[str, float]], metric: str, n: int = TOP_N
                ) -> list[tuple[str, float]]:
    pairs = [(device, row[metric]) for device, row in values.items() if metric in row]
    if not pairs:
        return []
    vals = np.array([v for _, v in pairs])
    order = np.argsort(-vals, kind="stable")[:n]
    return [pairs[i] for i in order.tolist()]


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


def fleet_overview(devices: Sequence[Device], alerts: AlertStore, telemetry: TelemetryStore, *,
                   visible: set[str] | None = None, backend_name: str = "this",
                   top_metric: str = "", hours: int = 24,
                   now: datetime | None = None) -> FleetOverview:
    """``devices`` with health applied; ``visible`` limits fleet-wide reads to
    those ids (None: the whole fleet is the actor's)."""
    now = now or utcnow()
    since = now - timedelta(hours=hours)
    stats = compute_fleet_statistics(devices)
    working = [d for d in devices if d.status is not DeviceStatus.DECOMMISSIONED]

    if visible is not None:
        # The store counts reporting devices fleet-wide; an organization's own
        # count would need a per-device query per bucket.
        online_ts, online_n = np.empty(0, np.int64), np.empty(0, np.int64)
        note = "Not available per organization yet."
    else:
        try:
            online_ts, online_n = telemetry.reporting_devices(
                since, now, bucket_ms=ONLINE_BUCKET_MS, metric=PRESENCE_METRIC)
            note = "" if online_ts.size else "No telemetry in the last 24 hours."
        except NotImplementedError:
            online_ts, online_n = np.empty(0, np.int64), np.empty(0, np.int64)
            note = f"Not available on the {backend_name} backend."

    raised = [a for a in alerts.list(AlertQuery(since=since))
              if visible is None or a.device_id in visible]
    created = np.array([to_epoch_ms(a.created_at) for a in raised], dtype=np.int64)
    hour_starts, per_hour = alerts_per_hour(created, [a.severity.value for a in raised],
                                            to_epoch_ms(since), hours + 1)

    firmware = Counter(d.firmware_version or "unknown" for d in working)

    metric_names = sorted({m for d in working[:20] for m in telemetry.metrics_for(
        d.device_id)}) if working else []
    metric = top_metric or ("temperature" if "temperature" in metric_names else
                            (metric_names[0] if metric_names else ""))

    def latest(metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        values = telemetry.latest_values(metrics)
        return values if visible is None else {k: v for k, v in values.items() if k in visible}

    top = top_devices(latest([metric]), metric) if metric else []
    locations = device_locations(working, latest(POSITION_METRICS))

    return FleetOverview(stats, since, online_ts, online_n, note, hour_starts, per_hour,
                         sorted(firmware.items(), key=lambda kv: (-kv[1], kv[0])), metric, top,
                         metric_names, locations)


class AnalyticsSession:
    """The analytics use cases for one person (core.ports.fleet_api.AnalyticsApi)."""

    def __init__(self, services: Services, actor: Actor) -> None:
        self._service = services.analytics
        self._actor = actor

    def devices(self) -> list[Device]:
        return self._service.devices(self._actor)

    def metrics(self, device_ids: Sequence[str]) -> list[str]:
        return self._service.metrics(self._actor, device_ids)

    def dashboard(self) -> FleetDashboard:
        return self._service.dashboard(self._actor)

    def overview(self, top_metric: str = "", hours: int = 24) -> FleetOverview:
        return self._service.overview(self._actor, top_metric=top_metric, hours=hours)

    def sensor_query(self, query: SensorQuery) -> list[Series]:
        return self._service.sensor_query(self._actor, query)

    def history(self, request: HistoryRequest, overlays: bool = True) -> History:
        return self._service.history(self._actor, request, overlays=overlays)

    def thresholds(self, metrics: Sequence[str]) -> list[ThresholdLine]:
        return self._service.thresholds(self._actor, metrics)
