"""What the analytics use cases answer with: plain values a Qt page, the CLI and
the REST API (and, later, its HTTP client) all read the same way.

Time series stay :class:`core.ports.telemetry.Series` (numpy columns): a week
of readings is too many points for lists of objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.model.timeutil import to_epoch_ms
from core.ports.telemetry import Series

if TYPE_CHECKING:  # annotations only: numpy stays off the console's path to its first paint
    import numpy as np
    import numpy.typing as npt

SECOND_MS = 1_000
MINUTE_MS = 60 * SECOND_MS
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

# Bucket sizes people can read on an axis ("5 min", not "4 min 17 s"), and that
# divide each other often enough for the store's rollups to be reused.
NICE_BUCKETS_MS: tuple[int, ...] = (
    SECOND_MS, 2 * SECOND_MS, 5 * SECOND_MS, 10 * SECOND_MS, 15 * SECOND_MS, 30 * SECOND_MS,
    MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS,
    HOUR_MS, 2 * HOUR_MS, 3 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, DAY_MS, 7 * DAY_MS,
)

# The dashboard's "devices reporting" chart counts devices per this bucket.
ONLINE_BUCKET_MS = 15 * MINUTE_MS

# Raw points are drawn as they are when there are at most this many per pixel
# column for a 1 Hz device; beyond it the store aggregates.
RAW_LIMIT_MS_PER_PX = SECOND_MS


def bucket_for_width(span_ms: int, width_px: int) -> int | None:
    """The bucket size that gives about one bucket per pixel column, or None
    when a bucket would be finer than one second (raw data is then no bigger
    than what the plot can show, and keeps every spike)."""
    per_px = span_ms / max(int(width_px), 1)
    if per_px <= RAW_LIMIT_MS_PER_PX:
        return None
    for size in NICE_BUCKETS_MS:
        if size >= per_px:
            return size
    return NICE_BUCKETS_MS[-1]


@dataclass(frozen=True, slots=True)
class FleetStatistics:
    """The Smart_IOT backend's dashboard numbers. Keeping its exact keys lets the
    AWS backend pass its dashboard answer through unchanged."""

    total: int = 0
    online: int = 0
    offline: int = 0
    warning: int = 0
    error: int = 0
    decommissioned: int = 0
    by_type: dict[str, int] = field(default_factory=dict)

    def as_dashboard(self) -> dict[str, Any]:
        """The backend's JSON shape; decommissioned devices are not part of the fleet."""
        return {
            "total": self.total,
            "online": self.online,
            "offline": self.offline,
            "warning": self.warning,
            "error": self.error,
            "by_type": dict(sorted(self.by_type.items())),
        }


@dataclass(frozen=True, slots=True)
class FleetDashboard:
    """The dashboard statistics plus the open alerts (active or acknowledged)
    by severity: what ``GET /analytics/dashboard`` answers."""

    stats: FleetStatistics
    open_alerts: int = 0
    alerts_by_severity: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**self.stats.as_dashboard(), "open_alerts": self.open_alerts,
                "alerts_by_severity": dict(self.alerts_by_severity)}


@dataclass(frozen=True, slots=True)
class SensorQuery:
    """One metric of several devices over [start, end), optionally bucketed."""

    device_ids: tuple[str, ...]
    metric: str
    start: datetime
    end: datetime
    bucket_s: float | None = None


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Which series over which range, at what resolution. ``bucket_ms`` None
    means raw readings. The same request drives the History chart, its CSV
    export and ``smartiot export``, so their files agree."""

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
        """The bucket from the chart's width, so the store returns no more than
        can be drawn."""
        span = to_epoch_ms(end) - to_epoch_ms(start)
        return cls(tuple(devices), tuple(metrics), start, end, bucket_for_width(span, width_px))


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


@dataclass(frozen=True, slots=True)
class History:
    """A history request's answer: the series (device-major, like the request's
    pairs), the threshold lines of the charted metrics and the alerts raised
    on the devices in the range."""

    request: HistoryRequest
    series: list[Series]
    thresholds: list[ThresholdLine] = field(default_factory=list)
    marks: list[AlertMark] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DeviceLocations:
    """Columns for the map; ``status`` holds DeviceStatus values."""

    device_id: list[str]
    latitude: npt.NDArray[np.float64]
    longitude: npt.NDArray[np.float64]
    status: list[str]


@dataclass(frozen=True, slots=True)
class FleetOverview:
    """Everything the fleet dashboard page shows, gathered in one call."""

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
