"""Telemetry store port: batched writes and range queries with bucket aggregation."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from core.model import Reading

if TYPE_CHECKING:  # numpy costs ~0.2 s at import; the console's first page has no series
    import numpy as np
    import numpy.typing as npt


@dataclass(frozen=True, slots=True)
class Series:
    """Column arrays rather than objects so charts and maths stay vectorised.

    ``ts_ms`` are epoch milliseconds. Raw series fill only ``value``; aggregated
    ones also carry per-bucket ``minimum``, ``maximum`` and ``count``, and
    ``ts_ms`` is the bucket start.
    """

    device_id: str
    metric: str
    ts_ms: npt.NDArray[np.int64]
    value: npt.NDArray[np.float64]
    minimum: npt.NDArray[np.float64] | None = None
    maximum: npt.NDArray[np.float64] | None = None
    count: npt.NDArray[np.int64] | None = None
    bucket_ms: int | None = None

    def __len__(self) -> int:
        return int(self.ts_ms.shape[0])


class TelemetryStore(ABC):
    @abstractmethod
    def write_batch(self, readings: Sequence[Reading]) -> int:
        """Write readings in one transaction; duplicates (same device, metric, ts)
        are ignored so redelivered MQTT messages are harmless. Returns rows written."""

    @abstractmethod
    def query(
        self,
        device_id: str,
        metric: str,
        start: datetime,
        end: datetime,
        *,
        bucket_ms: int | None = None,
    ) -> Series:
        """Readings in [start, end); with ``bucket_ms`` min/avg/max per bucket."""

    def query_many(
        self,
        device_ids: Sequence[str],
        metric: str,
        start: datetime,
        end: datetime,
        *,
        bucket_ms: int | None = None,
    ) -> list[Series]:
        """:meth:`query` for several devices (one Series per id, in the given
        order; an id given twice gets the same answer twice). Overlaid charts ask
        for ten or more devices at once; backends that can answer in one round
        trip (one grouped SQL query) override this loop."""
        return [
            self.query(device_id, metric, start, end, bucket_ms=bucket_ms)
            for device_id in device_ids
        ]

    @abstractmethod
    def metrics_for(self, device_id: str) -> list[str]: ...

    @abstractmethod
    def latest(self, device_id: str) -> dict[str, Reading]: ...

    @abstractmethod
    def latest_values(self, metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """Newest value of each of ``metrics`` for every device that has one,
        as device_id -> metric -> value, in one query (the device list shows
        e.g. battery_pct and rssi for the whole fleet)."""

    def latest_values_of(self, metrics: Sequence[str],
                         device_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """latest_values for these devices only (one page of the device list).
        Stores override it to read just those rows; this fallback reads the
        whole fleet's and keeps theirs."""
        wanted = set(device_ids)
        return {d: v for d, v in self.latest_values(metrics).items() if d in wanted}

    def reporting_devices(
        self, start: datetime, end: datetime, *, bucket_ms: int, metric: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        """How many distinct devices sent ``metric`` in each bucket of [start, end):
        (bucket starts in epoch ms, device counts), empty buckets absent. The
        dashboard's "online devices over time"; not abstract so that backends
        without it still load (callers treat NotImplementedError as "not available")."""
        raise NotImplementedError(f"{type(self).__name__} cannot count reporting devices")

    @abstractmethod
    def delete_before(self, cutoff: datetime) -> int:
        """Retention: drop raw readings older than ``cutoff``; returns rows removed."""

    @abstractmethod
    def downsample_before(self, cutoff: datetime, bucket_ms: int) -> int:
        """Fold raw readings older than ``cutoff`` into rollup buckets, then drop them.
        Returns the number of rollup rows written."""
