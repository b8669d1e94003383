"""Analytics benchmarks: history query + draw, and event-loop stalls under live load.

    QT_QPA_PLATFORM=offscreen .venv/bin/python bench/analytics_bench.py [--quick]

1. History, 24 h of 1 Hz data (86,400 points) per device, written through the real
   SQLite telemetry store from the simulator's environmental model:
   * the History view's path: SQL buckets sized to a 1,200 px chart, then the
     curves (mean + min/max band, gaps) set and painted; 1 device and 10 overlaid;
   * the raw path: all 86,400 readings queried and drawn with peak downsampling;
   * baselines in the same run: a bare ``sqlite3`` fetch of the same raw rows
     (no SQLAlchemy, no numpy) and a bare pyqtgraph ``setData`` + paint of
     86,400 points.
2. Week overlay (issue 12, target 2: < 200 ms from request to painted): 10
   devices x 7 days at 1 Hz (6,048,000 raw rows), the History view's path for a
   1,200 px chart (10 minute buckets, read from the minute rollups), warm (the
   rollups folded) and cold (the first request after the data arrived, which
   folds them); query and draw timed apart, wall and CPU. Baselines in the same
   run: the same request answered from the raw rows (the path before the
   rollups) and a bare pyqtgraph ``setData`` + paint of the same arrays.
   ``week_overlay()`` is what bench/run_suite.py calls.
3. Live, 50 devices at 10 Hz (3 metrics per message, 500 msg/s) published from
   a thread into the live feed for ``--live-seconds``, with the Live view showing
   all 50 devices' temperature in a 5 minute window; a 5 ms heartbeat timer
   measures how late the Qt event loop runs it (the stall). Baseline: the same
   heartbeat with the view open but no messages.

Prints a table and writes bench/results/analytics-<UTC time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QElapsedTimer, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.ingest.batch import COLUMNS, set_id  # noqa: E402
from core.model import Reading  # noqa: E402
from core.model.events import TelemetryReceived  # noqa: E402
from core.ports.backend import Backend  # noqa: E402
from core.services.event_bus import EventBus  # noqa: E402
from core.store import Store  # noqa: E402
from core.store.telemetry import (  # noqa: E402
    _SQLITE_INSERT,
    minute_span,
    raw_query_sql,
    slots_of,
)

TEMPERATURE = set_id(("temperature",))  # the seeded messages' metric set
PAD = (None,) * (COLUMNS - 1)
from plugins.analytics.history import HistoryRequest, load_history  # noqa: E402
from plugins.analytics.widgets.history_view import chart_series  # noqa: E402
from plugins.analytics.widgets.live_view import LiveView  # noqa: E402
from plugins.analytics.widgets.time_chart import ChartSeries, TimeChart  # noqa: E402
from tests.integration.analytics.fleet_data import model_columns  # noqa: E402

WIDTH, HEIGHT = 1400, 700
CHART_PX = 1200
DAY_S = 86_400


def settle(app: QApplication, seconds: float = 0.2) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.005)


def seed(store: Store, devices: list[str], start: datetime, seconds: int) -> None:
    ts, columns = model_columns("environmental", len(devices), start, seconds, 1.0, seed=11)
    times = [datetime.fromtimestamp(t / 1000, UTC) for t in ts.tolist()]
    temps = columns["temperature"]
    for d, device in enumerate(devices):
        batch = [Reading(device, "temperature", at, v)
                 for at, v in zip(times, temps[:, d].tolist(), strict=True)]
        for i in range(0, len(batch), 50_000):
            store.telemetry.write_batch(batch[i:i + 50_000])


def median_ms(fn: Any, repeat: int) -> tuple[float, list[float]]:
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t0) * 1000)
    return statistics.median(runs), runs


def paint(chart: TimeChart) -> None:
    chart.graphics.viewport().repaint()  # synchronous paint of everything in view


def history_phase(app: QApplication, store: Store, db_path: Path, devices: list[str],
                  start: datetime, repeat: int) -> dict[str, Any]:
    end = start + timedelta(seconds=DAY_S)
    chart = TimeChart()
    chart.resize(WIDTH, HEIGHT)
    chart.show()
    settle(app)
    out: dict[str, Any] = {}

    def history_path(which: list[str], bucket: bool) -> None:
        request = (HistoryRequest.for_width(which, ["temperature"], start, end, CHART_PX)
                   if bucket else HistoryRequest(tuple(which), ("temperature",), start, end))
        series = load_history(store.telemetry, request)
        chart.set_series([chart_series(s) for s in series])
        chart.main_plot.setXRange(start.timestamp(), end.timestamp(), padding=0)
        paint(chart)

    for label, which, bucket in (("bucketed_1", devices[:1], True),
                                 ("bucketed_10", devices, True),
                                 ("raw_1", devices[:1], False),
                                 ("raw_10", devices, False)):
        chart.set_series([])
        history_path(which, bucket)  # warm caches, as a second look at a chart would
        out[label], out[label + "_runs"] = median_ms(lambda w=which, b=bucket: (
            chart.set_series([]), history_path(w, b)), repeat)

    # baselines: bare sqlite3 fetch of the raw rows, bare setData + paint
    start_ms, end_ms = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    mlo, mhi = minute_span(start_ms, end_ms)

    with store.engine.connect() as c:  # the store's own statement, run bare
        sql = raw_query_sql(slots_of(c, "temperature"))

    def sqlite_fetch() -> None:
        with sqlite3.connect(db_path) as conn:
            rows = conn.execute(sql, {"mlo": mlo, "mhi": mhi, "d": devices[0],
                                      "lo": start_ms, "hi": end_ms}).fetchall()
        assert len(rows) == DAY_S

    out["baseline_sqlite3_fetch_1"], _ = median_ms(sqlite_fetch, repeat)
    raw = store.telemetry.query(devices[0], "temperature", start, end)
    x, y = raw.ts_ms / 1000.0, raw.value
    bare = pg.PlotWidget()
    bare.resize(WIDTH, HEIGHT)
    bare.show()
    curve = bare.plot()
    settle(app)

    def bare_draw() -> None:
        curve.setData(x, y)
        bare.viewport().repaint()

    bare_draw()
    out["baseline_bare_setdata_paint_1"], _ = median_ms(bare_draw, repeat)

    def our_draw() -> None:
        chart.set_series([ChartSeries(devices[0], "temperature", x, y)])
        paint(chart)

    out["draw_only_raw_1"], _ = median_ms(our_draw, repeat)
    chart.close()
    bare.close()
    return out


def seed_week(store: Store, devices: list[str], start: datetime, seconds: int) -> None:
    """1 Hz readings for every device, written through the driver in one
    transaction per device (6 million rows in ~30 s; ``write_batch`` would take
    minutes and is not what this measures). A daily cycle, noise and a few
    hours of silence per device, so the chart has gaps to draw."""
    t0 = int(start.timestamp() * 1000)
    rng = np.random.default_rng(12)
    seconds_ix = np.arange(seconds)
    for d, device in enumerate(devices):
        keep = ~((seconds_ix >= (d + 1) * 36_000) & (seconds_ix < (d + 1) * 36_000 + 7_200))
        ts = (t0 + seconds_ix[keep] * 1000).tolist()
        values = (20 + d + 4 * np.sin(2 * np.pi * seconds_ix[keep] / 86_400)
                  + rng.normal(0, 0.4, int(keep.sum()))).tolist()
        with store.engine.begin() as conn:
            cur = conn.connection.cursor()
            cur.execute("INSERT OR IGNORE INTO telemetry_metric_slot (metric, metric_set, slot)"
                        " VALUES ('temperature', ?, 0)", (TEMPERATURE,))
            cur.executemany(_SQLITE_INSERT, [(t // 60_000, device, t, TEMPERATURE, v, *PAD)
                                             for t, v in zip(ts, values, strict=True)])
            # The newest value too, as write_batch keeps it (metric lists read it).
            cur.execute("INSERT INTO telemetry_latest (device_id, metric, ts, value)"
                        " VALUES (?, 'temperature', ?, ?)", (device, ts[-1], values[-1]))
            cur.close()


def week_overlay(app: Any = None, *, devices: int = 10, days: int = 7,
                 repeat: int = 5, width_px: int = CHART_PX) -> dict[str, Any]:
    """Target 2, the overlay: ``devices`` x ``days`` at 1 Hz in a fresh SQLite
    store, then the History view's own path (``HistoryRequest.for_width`` ->
    ``load_history`` -> ``chart_series`` -> ``TimeChart.set_series`` -> a
    synchronous repaint). Keys: ``total_ms`` (warm median, request to painted;
    target < 200), ``query_ms``/``draw_ms`` and their ``_cpu_ms`` (the
    process's CPU time, the query's worker threads included), ``cold_ms`` (the
    first request, folding the rollups), ``baseline_raw_ms`` (the same request
    from the raw rows: the path before), ``baseline_bare_draw_ms`` (bare
    pyqtgraph setData + paint of the same arrays), ``ratio`` =
    baseline_raw_ms / total_ms, ``met``, ``series``, ``points``, ``load``."""
    app = cast(QApplication, app or QApplication.instance() or QApplication([sys.argv[0]]))
    out: dict[str, Any] = {"devices": devices, "days": days, "repeats": repeat,
                           "load_before": os.getloadavg()}
    ids = [f"week-{i:03d}" for i in range(devices)]
    start = datetime(2026, 11, 1, tzinfo=UTC)
    end = start + timedelta(days=days)
    with tempfile.TemporaryDirectory(prefix="analytics-week-") as tmp, \
            Store.open(f"sqlite:///{Path(tmp) / 'week.db'}") as store:
        t0 = time.perf_counter()
        seed_week(store, ids, start, days * DAY_S)
        out["seed_s"] = time.perf_counter() - t0
        out["raw_rows"] = devices * days * DAY_S
        chart = TimeChart()
        chart.resize(WIDTH, HEIGHT)
        chart.show()
        settle(app)
        request = HistoryRequest.for_width(ids, ["temperature"], start, end, width_px)
        out["bucket_ms"] = request.bucket_ms

        def query() -> list[Any]:
            return load_history(store.telemetry, request)

        def draw(series: list[Any]) -> None:
            chart.set_series([chart_series(s) for s in series])
            chart.main_plot.setXRange(start.timestamp(), end.timestamp(), padding=0)
            paint(chart)

        def timed(fn: Any, *args: Any) -> tuple[Any, float, float]:
            # Process CPU: the query's work is on the store's worker threads.
            w, c = time.perf_counter(), time.process_time()
            value = fn(*args)
            return value, (time.perf_counter() - w) * 1000, (time.process_time() - c) * 1000

        # Baseline first: the same request answered from the raw rows (the
        # clock set before the data, so no minute is old enough to fold).
        clock = store.telemetry.clock
        store.telemetry.clock = lambda: start.timestamp()
        raw_runs = []
        for _ in range(max(1, repeat // 2)):
            chart.set_series([])
            series, q_ms, _ = timed(query)
            _, d_ms, _ = timed(draw, series)
            raw_runs.append(q_ms + d_ms)
        out["baseline_raw_ms"] = statistics.median(raw_runs)
        store.telemetry.clock = clock
        chart.set_series([])
        series, q_ms, _ = timed(query)  # cold: folds the minutes
        _, d_ms, _ = timed(draw, series)
        out["cold_ms"], out["cold_query_ms"] = q_ms + d_ms, q_ms
        runs: dict[str, list[float]] = {k: [] for k in
                                        ("total", "query", "draw", "query_cpu", "draw_cpu")}
        for _ in range(repeat):
            chart.set_series([])
            series, q_ms, q_cpu = timed(query)
            _, d_ms, d_cpu = timed(draw, series)
            for key, value in (("total", q_ms + d_ms), ("query", q_ms), ("draw", d_ms),
                               ("query_cpu", q_cpu), ("draw_cpu", d_cpu)):
                runs[key].append(value)
        for key, values in runs.items():
            out[f"{key}_ms"] = statistics.median(values)
        out["total_runs_ms"] = runs["total"]
        out["total_cpu_ms"] = out["query_cpu_ms"] + out["draw_cpu_ms"]
        out["met_cpu"] = out["total_cpu_ms"] < 200.0
        out["series"] = [s.device_id for s in series]
        out["points"] = int(sum(len(s) for s in series))
        drawn = [chart_series(s) for s in series]
        bare = pg.PlotWidget()
        bare.resize(WIDTH, HEIGHT)
        bare.show()
        curves = [bare.plot(pen=pg.mkPen(width=1)) for _ in drawn]
        settle(app)
        bare_runs = []
        for _ in range(repeat):
            w = time.perf_counter()
            for curve, s in zip(curves, drawn, strict=True):
                curve.setData(s.x, s.y)
            bare.viewport().repaint()
            bare_runs.append((time.perf_counter() - w) * 1000)
        out["baseline_bare_draw_ms"] = statistics.median(bare_runs)
        bare.close()
        chart.close()
    out["ratio"] = out["baseline_raw_ms"] / out["total_ms"]
    out["target_ms"] = 200.0
    out["met"] = out["total_ms"] < 200.0
    out["load_after"] = os.getloadavg()
    return out


def live_phase(app: QApplication, store: Store, seconds: float) -> dict[str, Any]:
    devices = [f"live-{i:05d}" for i in range(50)]
    bus = EventBus()
    bus.set_connection_state("connected")
    backend = Backend(name="bench", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, live=bus, rules=store.rules)
    view = LiveView(lambda: backend)
    view.resize(WIDTH, HEIGHT)
    view.show()
    view.attach(backend)
    view.buffer.track([(d, "temperature") for d in devices])
    view.chart.set_series([ChartSeries(d, "temperature", np.empty(0), np.empty(0))
                           for d in devices])
    settle(app, 0.5)

    def heartbeat(duration: float) -> list[float]:
        interval = 5
        lateness: list[float] = []
        clock = QElapsedTimer()
        clock.start()
        last = [clock.nsecsElapsed()]

        def beat() -> None:
            now = clock.nsecsElapsed()
            lateness.append(max((now - last[0]) / 1e6 - interval, 0.0))
            last[0] = now

        timer = QTimer()
        timer.setInterval(interval)
        timer.timeout.connect(beat)
        timer.start()
        end = time.monotonic() + duration
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.001)
        timer.stop()
        return lateness

    idle = heartbeat(min(seconds, 5.0))
    rng = np.random.default_rng(5)
    stop = threading.Event()
    sent = [0]

    def publish() -> None:
        t0 = time.time()
        tick = 0
        while not stop.is_set():
            at = datetime.fromtimestamp(t0 + tick * 0.1, UTC)
            temps = 20 + rng.normal(0, 0.5, len(devices))
            bus.publish([TelemetryReceived(d, (
                Reading(d, "temperature", at, float(temps[i])),
                Reading(d, "humidity", at, 50.0), Reading(d, "pressure", at, 1013.0)))
                for i, d in enumerate(devices)])
            sent[0] += len(devices)
            tick += 1
            delay = t0 + tick * 0.1 - time.time()
            if delay > 0:
                time.sleep(delay)

    frames0, updates0, images0 = view.frames_drawn, view.curve_updates, view.chart.live_renders
    worker = threading.Thread(target=publish, daemon=True)
    worker.start()
    began = time.monotonic()
    loaded = heartbeat(seconds)
    elapsed = time.monotonic() - began
    stop.set()
    worker.join()
    frames = view.frames_drawn - frames0
    updates = view.curve_updates - updates0
    images = view.chart.live_renders - images0
    view.close_feed()
    view.close()

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q)) if values else 0.0

    return {
        "messages_per_s": sent[0] / elapsed,
        "frames_per_s": frames / elapsed,
        # frames are capped; each frame refreshes as many curves as its time budget allows
        "curve_refreshes_per_s_each": updates / elapsed / len(devices),
        # complete images of the 50 curves put on screen (stroked over several events)
        "curve_images_per_s": images / elapsed,
        "stall_p50_ms": pct(loaded, 50), "stall_p99_ms": pct(loaded, 99),
        "stall_max_ms": max(loaded, default=0.0),
        "baseline_idle_stall_p99_ms": pct(idle, 99),
        "baseline_idle_stall_max_ms": max(idle, default=0.0),
        "points_in_view": int(sum(view.buffer.count((d, "temperature")) for d in devices)),
    }


def print_history(h: dict[str, Any], n_devices: int, repeat: int) -> None:
    rows = [
        ("1 device, 24 h @ 1 Hz, buckets for 1,200 px, query + draw", h["bucketed_1"], 150),
        (f"{n_devices} devices overlaid, buckets, query + draw", h["bucketed_10"], 600),
        ("1 device, raw 86,400 points, query + draw", h["raw_1"], None),
        (f"{n_devices} devices overlaid, raw, query + draw", h["raw_10"], None),
        ("draw only: 86,400 raw points in the chart", h["draw_only_raw_1"], None),
        ("baseline: bare sqlite3 fetch of 86,400 rows", h["baseline_sqlite3_fetch_1"], None),
        ("baseline: bare pyqtgraph setData + paint, 86,400", h["baseline_bare_setdata_paint_1"],
         None),
    ]
    print(f"\nHistory (median of {repeat}; ms)")
    for label, value, target in rows:
        verdict = "" if target is None else (" ✅" if value < target else " ❌") + f" < {target}"
        print(f"  {label:<58} {value:8.1f}{verdict}")
    baseline = h["baseline_sqlite3_fetch_1"] + h["baseline_bare_setdata_paint_1"]
    print(f"  ratio raw query+draw / (sqlite3 fetch + bare draw): {h['raw_1'] / baseline:.2f}x")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 devices, 2 repeats, 10 s live")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--live-seconds", type=float, default=30.0)
    parser.add_argument("--phases", default="history,week,live",
                        help="comma-separated: history, week, live")
    args = parser.parse_args(argv)
    phases = set(args.phases.split(","))
    n_devices = 3 if args.quick else 10
    repeat = 2 if args.quick else args.repeat
    live_s = 10.0 if args.quick else args.live_seconds
    app = QApplication.instance() or QApplication([sys.argv[0]])
    pg.setConfigOptions(antialias=True)
    results: dict[str, Any] = {"started": datetime.now(UTC).isoformat(),
                               "load_average": os.getloadavg(), "cpus": os.cpu_count()}
    if phases & {"history", "live"}:
        with tempfile.TemporaryDirectory(prefix="analytics-bench-") as tmp:
            db = Path(tmp) / "bench.db"
            with Store.open(f"sqlite:///{db}") as store:
                devices = [f"env-{i:05d}" for i in range(n_devices)]
                start = datetime(2026, 11, 25, tzinfo=UTC)
                if "history" in phases:
                    t0 = time.perf_counter()
                    seed(store, devices, start, DAY_S)
                    results["seed_s"] = time.perf_counter() - t0
                    results["history"] = history_phase(app, store, db, devices, start, repeat)
                if "live" in phases:
                    results["live"] = live_phase(app, store, live_s)
    if "week" in phases:
        results["week"] = week_overlay(app, devices=n_devices, days=1 if args.quick else 7,
                                       repeat=repeat)
    results["load_average_after"] = os.getloadavg()
    if "history" in results:
        print_history(results["history"], n_devices, repeat)
    if "week" in results:
        w = results["week"]
        print(f"\nWeek overlay: {w['devices']} devices x {w['days']} days at 1 Hz "
              f"({w['raw_rows']:,} raw rows), {w['bucket_ms'] // 1000} s buckets, "
              f"{w['points']:,} points drawn (median of {w['repeats']}; ms; load "
              f"{w['load_before'][0]:.2f} -> {w['load_after'][0]:.2f})")
        for key in ("total_ms", "query_ms", "draw_ms", "query_cpu_ms", "draw_cpu_ms",
                    "total_cpu_ms",
                    "cold_ms", "cold_query_ms", "baseline_raw_ms", "baseline_bare_draw_ms"):
            print(f"  {key:<30} {w[key]:10.1f}")
        print(f"  ratio (raw path / rollups) {w['ratio']:.1f}x; target total < 200 ms: "
              f"{'met' if w['met'] else 'not met'}")
    if "live" in results:
        live = results["live"]
        print(f"\nLive, 50 devices at 10 Hz for {live_s:.0f} s")
        for key in ("messages_per_s", "frames_per_s", "curve_refreshes_per_s_each",
                    "curve_images_per_s", "stall_p50_ms",
                    "stall_p99_ms", "stall_max_ms", "baseline_idle_stall_p99_ms",
                    "baseline_idle_stall_max_ms", "points_in_view"):
            print(f"  {key:<30} {live[key]:10.1f}")
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"analytics-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
