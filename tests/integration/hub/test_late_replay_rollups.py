"""A field device that was offline replays its buffer (the simulator's
store-and-forward burst: readings keep their own timestamps) into minutes the
readers had already folded: through a real mosquitto, the hub and SQLite, the
bucketed history and the week overlay then count every accepted reading. And
the hub folds the rollups itself, so no chart has to."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import text

from core.model.analytics import HistoryRequest
from core.model.timeutil import from_epoch_ms
from core.services.analytics import load_series
from core.store import Store
from core.store.telemetry import MINUTE_MS
from plugins.local.hub import hub as hub_module
from simulator.api import RunningFleet
from simulator.faults import FaultPlan, FaultSpec
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario

T = TypeVar("T")


def wait_until(predicate: Callable[[], T], timeout: float = 15.0,
               message: str = "condition not met in time") -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(message)

SPEED = 10.0
HELD = (5.0, 305.0)  # simulated seconds the first pump is offline, buffering


def _raw(store: Store, device: str, metric: str) -> tuple[np.ndarray, np.ndarray]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT ts, value FROM telemetry WHERE device_id = :d AND"
                                 " metric = :m ORDER BY ts"), {"d": device, "m": metric}).all()
    return (np.array([r[0] for r in rows], dtype=np.int64),
            np.array([r[1] for r in rows], dtype=np.float64))


def test_a_replayed_offline_buffer_shows_in_folded_minutes(
        hub_setup: Any, mosquitto_broker: Any, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hub_module, "FOLD_EVERY_S", 0.5)
    hub, _hub_store, _log = hub_setup
    console = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")  # a console on the same file
    try:
        start_s = float(int(time.time()) - 3 * 3600)  # readings stamped three hours ago
        start_ms = int(start_s * 1000)
        scenario = Scenario("late", (
            DeviceGroup("pumps", "pump", 2, org="qa", interval_s=1.0, id_prefix="pump"),),
            FaultPlan([FaultSpec("burst", {}, start_s=HELD[0], duration_s=HELD[1] - HELD[0],
                                 group="pumps", devices=[0])]))
        fleet = RunningFleet(scenario, broker_url=mosquitto_broker.url, seed=7,
                             start_s=start_s, speed=SPEED, telemetry_qos=1,
                             client_id_prefix="late-")
        fleet.start(HELD[1] + 60)
        try:
            held, live = "pump-00000", "pump-00001"
            metric = wait_until(lambda: next(iter(console.telemetry.metrics_for(live)), ""))
            # the other pump is well into the held span: its minutes get folded
            wait_until(lambda: (_raw(console, live, metric)[0] > start_ms + 50_000).any(),
                       timeout=60)
            # the hub folds by itself, no reader asked
            wait_until(lambda: console.engine.connect().execute(text(
                "SELECT count(*) FROM telemetry_minute_mark WHERE until_ms > :t"),
                {"t": start_ms + 40_000}).scalar() == 2 * len(console.telemetry.metrics_for(
                    live)), timeout=30, message="the hub did not fold the minute rollups")
            ts_held, _ = _raw(console, held, metric)
            assert not ((ts_held >= start_ms + HELD[0] * 1000 + 1000)
                        & (ts_held < start_ms + 40_000)).any(), "the buffer came too early"
            fleet.wait(120)
        finally:
            fleet.stop()
        # every reading of the held pump is stored: the buffer arrived
        last_held = start_ms + int(HELD[1] - 2) * 1000
        wait_until(lambda: (_raw(console, held, metric)[0] >= last_held).any(), timeout=30)
        time.sleep(1.0)  # the writer's last batch
        end_ms = start_ms + int((HELD[1] + 80) * 1000)
        start, end = from_epoch_ms(start_ms - 7_000), from_epoch_ms(end_ms)
        for bucket_ms in (MINUTE_MS, 10 * MINUTE_MS):
            request = HistoryRequest((held, live), (metric,), start, end, bucket_ms)
            for series in load_series(console.telemetry, request):
                ts, vs = _raw(console, series.device_id, metric)
                keep = (ts >= start_ms - 7_000) & (ts < end_ms)
                ts, vs = ts[keep], vs[keep]
                origin = (start_ms - 7_000) // bucket_ms * bucket_ms
                index = (ts - origin) // bucket_ms
                buckets = np.unique(index)
                assert series.ts_ms.tolist() == [origin + int(b) * bucket_ms for b in buckets]
                assert series.count is not None
                assert series.count.tolist() == [int((index == b).sum()) for b in buckets], (
                    series.device_id, bucket_ms)
                np.testing.assert_allclose(series.value,
                                           [vs[index == b].mean() for b in buckets])
        assert hub.counters.stage_failures == 0
    finally:
        console.close()
