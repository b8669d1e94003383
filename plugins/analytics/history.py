"""History queries: which series over which range, at what resolution.

The same request drives the History chart, its CSV export and
``smartiot export``, so a file exported from the GUI and one from the CLI with
the same range and bucket are identical. Aggregation happens in the store (SQL
on the local backend, Timestream's ``bin()`` on AWS): only about one bucket per
pixel column ever leaves the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.model.timeutil import to_epoch_ms
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.hub import AlertRuleStore
from core.ports.telemetry import Series, TelemetryStore
from plugins.analytics.series_math import bucket_for_width

# (label, span) for the range picker; "Custom…" is added by the widget.
RANGE_PRESETS: tuple[tuple[str, timedelta], ...] = (
    ("Last 15 minutes", timedelta(minutes=15)),
    ("Last hour", timedelta(hours=1)),
    ("Last 6 hours", timedelta(hours=6)),
    ("Last day", timedelta(days=1)),
    ("Last week", timedelta(days=7)),
)


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """``bucket_ms`` None means raw readings. :meth:`for_width` picks the bucket
    from the chart's width, so the store returns no more than can be drawn."""

    devices: tuple[str, ...]
    metrics: tuple[str, ...]
    start: datetime
    end: datetime
    bucket_ms: int | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"the range ends ({self.end:%Y-%m-%d %H:%M}) before it starts "
                             f"({self.start:%Y-%m-%d %H:%M})")

    @property
    def span_ms(self) -> int:
        return to_epoch_ms(self.end) - to_epoch_ms(self.start)

    @classmethod
    def for_width(cls, devices: Sequence[str], metrics: Sequence[str], start: datetime,
                  end: datetime, width_px: int) -> HistoryRequest:
        span = to_epoch_ms(end) - to_epoch_ms(start)
        return cls(tuple(devices), tuple(metrics), start, end, bucket_for_width(span, width_px))


QUERY_THREADS = 4


def load_history(telemetry: TelemetryStore, request: HistoryRequest) -> list[Series]:
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


@dataclass(frozen=True, slots=True)
class ThresholdLine:
    """An alert rule's limit, drawn as a horizontal line on charts of its metric."""

    rule_id: str
    name: str
    metric: str
    limit: float
    op: str
    severity: str


@dataclass(frozen=True, slots=True)
class AlertMark:
    """An alert event on a device, marked on the time axis."""

    device_id: str
    ts_ms: int
    severity: str
    message: str


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
