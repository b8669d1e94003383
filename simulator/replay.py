"""Replay recorded readings as live devices: re-timestamped onto a new start time.

Field data reproduces a bug better than any model. A CSV export (for
instance ``smartiot export`` of a real incident) is published again through
real device sessions, with the original spacing kept and timestamps moved to
``--start``, so the console sees "now" data with yesterday's shape.

Two layouts are accepted: long (``device_id,metric,ts,value``) and wide
(``device_id,ts,<metric>,<metric>,...``). ``ts`` is epoch seconds, epoch
milliseconds or ISO 8601. Errors name the file, the line and the column.
"""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.errors import ValidationError
from core.model.ids import is_valid_device_id
from core.model.reading import METRIC_PATTERN
from core.protocol.payloads import Telemetry
from simulator.faults import Outgoing

MS_THRESHOLD = 10_000_000_000  # larger epoch values are milliseconds
MAX_EPOCH_S = 253_402_300_799  # 9999-12-31T23:59:59Z


class ReplayError(ValidationError):
    """A CSV that cannot be replayed; the message starts with ``file:line:``."""


def _parse_ts(text: str) -> float:
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        seconds = parsed.timestamp()
    else:
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite time")
        seconds = value / 1000.0 if value > MS_THRESHOLD else value
    if not 0 <= seconds <= MAX_EPOCH_S:
        raise ValueError(f"{text!r} is before 1970 or after 9999")
    return seconds


class ReplaySource:
    """Quacks like :class:`simulator.fleet.Fleet` for the runtime."""

    def __init__(self, path: str | Path, *, start_s: float, org: str = "replay",
                 device_type: str = "replay", firmware: str = "replay") -> None:
        self.path = Path(path)
        self.start_s = float(start_s)
        self.org = org
        self.device_type = device_type
        self.firmware = firmware
        rows = self._read()
        if not rows:
            raise ReplayError(f"{self.path}: no readings to replay")
        first = min(ts for _, ts, _ in rows)
        grouped: dict[tuple[str, float], dict[str, float]] = defaultdict(dict)
        for device_id, ts, metrics in rows:
            grouped[(device_id, ts)].update(metrics)
        self.device_ids = sorted({device_id for device_id, _, _ in rows})
        index = {d: i for i, d in enumerate(self.device_ids)}
        self._messages = sorted(
            ((self.start_s + ts - first, index[d], m) for (d, ts), m in grouped.items()),
            key=lambda item: (item[0], item[1]),
        )
        self.size = len(self.device_ids)
        self.duration_s = self._messages[-1][0] - self.start_s
        self._cursor = 0
        self._seq = [0] * self.size
        self._boot = [self.start_s] * self.size
        self._intervals = [1.0] * self.size
        self.last_rebooted: NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    def _read(self) -> list[tuple[str, float, dict[str, float]]]:
        try:
            handle = self.path.open(newline="", encoding="utf-8")
        except OSError as exc:
            raise ReplayError(f"{self.path}: cannot open the recording: {exc.strerror}") from None
        with handle:
            try:
                return self._read_rows(handle)
            except UnicodeDecodeError:
                raise ReplayError(f"{self.path}: not UTF-8 text") from None
            except csv.Error as exc:
                raise ReplayError(f"{self.path}: not a CSV file: {exc}") from None

    def _read_rows(self, handle: Any) -> list[tuple[str, float, dict[str, float]]]:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in (reader.fieldnames or [])]
        if "device_id" not in header or "ts" not in header:
            raise ReplayError(f"{self.path}:1: the header needs device_id and ts columns "
                              f"(found: {', '.join(header) or 'nothing'})")
        long = "metric" in header and "value" in header
        metric_columns = [] if long else [h for h in header if h not in ("device_id", "ts")]
        if not long and not metric_columns:
            raise ReplayError(f"{self.path}:1: no metric columns; use device_id,metric,ts,"
                              "value or device_id,ts,<metric>,...")
        for name in metric_columns:
            if METRIC_PATTERN.fullmatch(name) is None:
                raise ReplayError(f"{self.path}:1: column {name!r} is not a valid metric name")
        out: list[tuple[str, float, dict[str, float]]] = []
        for line_no, row in enumerate(reader, start=2):
            out.append(self._row(row, line_no, long, metric_columns))
        return out

    def _row(self, row: Mapping[str, Any], line: int, long: bool,
             metric_columns: Sequence[str]) -> tuple[str, float, dict[str, float]]:
        where = f"{self.path}:{line}"
        device_id = (row.get("device_id") or "").strip()
        if not is_valid_device_id(device_id):
            raise ReplayError(f"{where}: device_id {device_id!r} is not a valid device id")
        try:
            ts = _parse_ts(row.get("ts") or "")
        except (ValueError, OverflowError):
            raise ReplayError(f"{where}: ts {row.get('ts')!r} is not epoch seconds, "
                              "milliseconds or ISO 8601") from None
        pairs = [(row.get("metric") or "", row.get("value") or "")] if long else [
            (name, row.get(name) or "") for name in metric_columns]
        metrics: dict[str, float] = {}
        for name, text in pairs:
            if not text.strip():
                continue  # wide files leave cells empty where a device has no such metric
            if METRIC_PATTERN.fullmatch(name) is None:
                raise ReplayError(f"{where}: metric {name!r} is not a valid metric name")
            try:
                value = float(text)
            except ValueError:
                raise ReplayError(f"{where}: {name} value {text!r} is not a number") from None
            if not math.isfinite(value):
                raise ReplayError(f"{where}: {name} value {text!r} is not finite")
            metrics[name] = value
        return device_id, ts, metrics

    # ------------------------------------------------------------------ the runtime's view
    def tick(self, t_s: float) -> list[tuple[int, Telemetry]]:
        out: list[tuple[int, Telemetry]] = []
        while self._cursor < len(self._messages) and self._messages[self._cursor][0] <= t_s:
            ts, index, metrics = self._messages[self._cursor]
            self._cursor += 1
            if not metrics:
                continue
            out.append((index, Telemetry(self.device_ids[index], self._seq[index],
                                         round(ts * 1000), metrics, self.device_type,
                                         self.firmware, self.uptime_s(index, ts))))
            self._seq[index] += 1
        return out

    min_interval_s = 0.2  # publish timing resolution; payload timestamps stay exact

    @property
    def finished(self) -> bool:
        return self._cursor >= len(self._messages)

    def apply_message_faults(self, t_s: float, messages: Sequence[Outgoing]) -> list[Outgoing]:
        return list(messages)

    def flush(self, t_s: float) -> list[Outgoing]:
        return []

    def offline_mask(self) -> NDArray[np.bool_]:
        return np.zeros(self.size, dtype=bool)

    def device_info(self, index: int) -> tuple[str, str, str, str]:
        return self.device_ids[index], self.org, self.device_type, self.firmware

    def set_interval(self, index: int, seconds: float) -> None:
        # A recording has its own cadence; the setting is only reported back.
        self._intervals[index] = float(seconds)

    def interval(self, index: int) -> float:
        return self._intervals[index]

    def reboot(self, index: int, t_s: float | None = None) -> None:
        self._seq[index] = 0
        self._boot[index] = self.start_s if t_s is None else t_s

    def apply_setpoints(self, index: int, setpoints: Mapping[str, Any]) -> None:
        return None

    def uptime_s(self, index: int, t_s: float) -> int:
        return max(0, math.floor(t_s - self._boot[index]))
