"""Telemetry from the simulator's sensor models, for analytics tests and benchmarks.

The models are the ones ``smartiot simulate`` runs (diurnal temperature, AR(1)
weather, drift), stepped here without MQTT so a day of 1 Hz data takes a
second rather than a day. ``silent`` spans drop readings (a device that was
off) so gap handling is exercised on realistic data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from core.model import Reading
from core.model.timeutil import to_epoch_ms
from core.ports.telemetry import TelemetryStore
from simulator.models import BUILTIN_MODELS

DAY_START = datetime(2026, 11, 25, tzinfo=UTC)


@dataclass(frozen=True)
class Generated:
    """What was written, as numpy columns per (device, metric), for checking
    the store's answers against."""

    ts_ms: dict[tuple[str, str], np.ndarray]
    values: dict[tuple[str, str], np.ndarray]
    start: datetime
    end: datetime


def model_columns(model: str, devices: int, start: datetime, seconds: int,
                  interval_s: float = 1.0, seed: int = 7) -> tuple[np.ndarray,
                                                                  dict[str, np.ndarray]]:
    """Epoch-ms timestamps (steps,) and one (steps, devices) array per metric."""
    rng = np.random.default_rng(seed)
    sim = BUILTIN_MODELS[model](devices, rng, {})
    steps = int(seconds / interval_s)
    t0 = start.timestamp()
    out: dict[str, np.ndarray] = {m: np.empty((steps, devices)) for m in sim.metrics}
    for i in range(steps):
        values = sim.step(t0 + i * interval_s, interval_s)
        for metric in sim.metrics:
            out[metric][i] = values[metric]
    ts = to_epoch_ms(start) + np.round(np.arange(steps) * interval_s * 1000).astype(np.int64)
    return ts, out


def write_simulated(store: TelemetryStore, device_ids: Sequence[str], *, model: str =
                    "environmental", start: datetime = DAY_START, seconds: int = 3600,
                    interval_s: float = 1.0, silent: Sequence[tuple[int, int]] = (),
                    metrics: Sequence[str] | None = None, seed: int = 7) -> Generated:
    """Write the model's readings for each device through ``store.write_batch``
    and return what was written. ``silent`` holds (from_s, to_s) offsets with no data."""
    ts, columns = model_columns(model, len(device_ids), start, seconds, interval_s, seed)
    keep = np.ones(ts.size, dtype=bool)
    offsets = (ts - ts[0]) / 1000.0
    for lo, hi in silent:
        keep &= ~((offsets >= lo) & (offsets < hi))
    ts = ts[keep]
    wanted = list(metrics or columns)
    written_ts: dict[tuple[str, str], np.ndarray] = {}
    written_values: dict[tuple[str, str], np.ndarray] = {}
    times = [datetime.fromtimestamp(t / 1000, UTC) for t in ts.tolist()]
    for d, device in enumerate(device_ids):
        batch: list[Reading] = []
        for metric in wanted:
            vals = columns[metric][keep, d]
            written_ts[(device, metric)] = ts
            written_values[(device, metric)] = vals
            batch += [Reading(device, metric, at, v) for at, v in zip(times, vals.tolist(),
                                                                     strict=True)]
        for i in range(0, len(batch), 50_000):
            store.write_batch(batch[i:i + 50_000])
    return Generated(written_ts, written_values, start, start + timedelta(seconds=seconds))
