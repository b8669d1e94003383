"""The console at fleet scale (issue #12, target 4): is the window still smooth?

    .venv/bin/python bench/console_bench.py                      # 1k, 5k, 10k devices, 40 s each
    .venv/bin/python bench/console_bench.py --devices 10000 --seconds 60
    .venv/bin/python bench/console_bench.py --quick              # smoke sizes, seconds

Phases, each in a fresh process (``spawn``) so one does not warm the next:

* **start-up**: a new interpreter builds the real ``MainWindow`` on the local
  profile and shows it; the figure is the wall time from starting the process to
  the window's first ``Paint`` event, and which heavy modules (boto3, moto,
  pycognito, botocore) had been imported by then.
* **table**: the devices page's own model and proxy (``FleetTableModel``,
  ``DeviceFilterProxy``) in a shown ``QTableView`` at 100,000 rows: one sort by
  each of three columns, one text filter and one status filter, each timed to
  the end of the model's signals (the view has reacted by then).
* **live**: the real window, the in-process hub (local profile, private
  mosquitto, SQLite) and the simulator in a process of its own publishing N
  devices x 1 Hz. A 10 ms ``PreciseTimer`` measures how late the event loop
  serves it (the stall). Baseline from the same run: the same window, hub up,
  before the fleet starts (idle). Then the devices page, a device's detail, the
  alerts page and the analytics page's live chart (three series) are opened and
  the stall is sampled with the fleet running, first on the devices page, then
  with the live chart in front. Peak RSS is the process's ``ru_maxrss``; the live
  chart's worst frame is the longest ``draw_frame`` call.

Timings live here and in docs/benchmarks.md only; tests/bench_smoke runs this at
tiny sizes and asserts nothing about time.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import multiprocessing as mp
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TICK_MS = 10
LONG_STALL_MS = 30  # the target's p99: a stall beyond it is looked at
HEAVY = ("boto3", "botocore", "moto", "pycognito", "awscrt", "awsiot")
# Loaded only when first needed (a chart, a migration); none by the first paint
# in the GUI thread (the backend's worker thread may import numpy meanwhile).
DEFERRED = ("pyqtgraph", "alembic")
TARGETS = {"stall_p99_ms": 30.0, "stall_max_ms": 100.0, "rss_mb": 400.0, "startup_s": 1.5,
           "table_ms": 100.0, "chart_stall_ms": 50.0}


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _summary(lates: list[float], seconds: float) -> dict[str, Any]:
    return {"ticks": len(lates), "expected_ticks": int(seconds * 1000 / TICK_MS),
            "p50_ms": _pct(lates, 0.50), "p99_ms": _pct(lates, 0.99),
            "max_ms": max(lates, default=0.0), "seconds": seconds}


class StallProbe:
    """A repeating 10 ms precise timer; each fire records how late it came
    (the gap since the previous fire minus the interval)."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.lates: list[float] = []
        self.long: list[tuple[float, float]] = []  # (late ms, GUI thread CPU ms in the gap)
        self.spans: list[tuple[float, float, float]] = []  # (late ms, from, to): all phases
        self._last = 0.0
        self._last_cpu = 0.0
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now, cpu = time.perf_counter(), time.thread_time()
        if self._last:
            late = max(0.0, (now - self._last) * 1000 - TICK_MS)
            self.lates.append(late)
            if late > LONG_STALL_MS:
                self.long.append((late, (cpu - self._last_cpu) * 1000))
                self.spans.append((late, self._last, now))
        self._last, self._last_cpu = now, cpu

    def measure(self, app: Any, seconds: float) -> dict[str, Any]:
        self.lates, self.long, self._last = [], [], 0.0
        from PySide6.QtCore import QEventLoop, QTimer

        self.timer.start()
        loop = QEventLoop()  # the event loop as app.exec() runs it
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec()
        self.timer.stop()
        out = _summary(self.lates, seconds)
        # a stall the GUI thread spent computing is the window's own work; the
        # rest of it waited for a core or for the GIL
        out["long_stalls"] = len(self.long)
        out["long_stall_own_cpu_share"] = (
            round(sum(c for _, c in self.long) / sum(w for w, _ in self.long), 2)
            if self.long else None)
        return out


def _config(workdir: Path, hub_process: bool = False) -> Any:
    import dataclasses

    from core.config import load_config

    config = load_config(workdir / "config" / "config.toml", workdir / "data", env={})
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
    if hub_process:  # (a tree from before the setting is measured without it)
        profile = dataclasses.replace(profile, hub_process=True)
    return dataclasses.replace(config, profiles={**config.profiles, "local": profile})


# ------------------------------------------------------------------------ start-up
STARTUP_CHILD = r"""
import os, sys, time, json
sys.path.insert(0, {root!r})
sys.path.insert(0, {bench!r})
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from pathlib import Path
from PySide6.QtCore import QEvent, QObject
from console.app import build_main_window, ensure_application
from core.context import AppContext
from core.plugins import PluginManager
import console_bench
sys.path.insert(0, {root!r})  # console_bench put its own tree first; the measured one wins
app = ensure_application()
context = AppContext(console_bench._config(Path({workdir!r}), {hub_process!r}), PluginManager())
window = build_main_window(context)
painted = []
class Paint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not painted:
            painted.extend((time.time(), time.process_time(), time.thread_time()))
        return False
f = Paint()
app.installEventFilter(f)
window.show()
while not painted:
    app.processEvents()
print(json.dumps({{"painted": painted[0], "cpu_s": painted[1], "gui_cpu_s": painted[2],
                  "heavy": sorted(m for m in console_bench.HEAVY if m in sys.modules),
                  "deferred": sorted(m for m in console_bench.DEFERRED if m in sys.modules),
                  "modules": len(sys.modules)}}))
window.close()
context.close()
os._exit(0)
"""


def phase_startup(repeats: int = 3, root: Path = ROOT,
                  hub_process: bool = False) -> dict[str, Any]:
    """Wall time from starting a fresh interpreter to the first painted window.
    ``root``: the source tree whose console is started (another checkout, e.g.
    the code before a change, measured by this same child in the same run)."""
    runs, cpu, gui_cpu = [], [], []
    heavy: list[str] = []
    deferred: list[str] = []
    for _ in range(repeats):
        workdir = Path(tempfile.mkdtemp(prefix="console-bench-start-"))
        code = STARTUP_CHILD.format(root=str(root), bench=str(ROOT / "bench"),
                                    workdir=str(workdir), hub_process=hub_process)
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=120, env=os.environ | {"QT_QPA_PLATFORM": "offscreen"})
        if out.returncode != 0:
            raise RuntimeError(f"start-up child failed: {out.stderr[-2000:]}")
        got = json.loads(out.stdout.strip().splitlines()[-1])
        runs.append(got["painted"] - t0)
        cpu.append(got["cpu_s"])
        gui_cpu.append(got["gui_cpu_s"])
        heavy, deferred = got["heavy"], got["deferred"]
    # baseline: the bare interpreter with Qt's widgets imported and a QApplication
    t0 = time.time()
    subprocess.run([sys.executable, "-c",
                    "from PySide6.QtWidgets import QApplication, QLabel; a=QApplication([]); "
                    "w=QLabel('x'); w.show(); a.processEvents()"],
                   check=True, env=os.environ | {"QT_QPA_PLATFORM": "offscreen"})
    bare = time.time() - t0
    # CPU to the first paint (all threads; GUI thread): what the load inflates least
    return {"startup_s_median": statistics.median(runs), "startup_s_runs": runs,
            "startup_cpu_s_median": statistics.median(cpu),
            "startup_gui_cpu_s_median": statistics.median(gui_cpu),
            "heavy_imported": heavy, "deferred_imported": deferred, "bare_qt_s": bare}


# ------------------------------------------------------------------------ table
def _devices(n: int) -> list[Any]:
    from datetime import UTC, datetime, timedelta

    from core.model import Device, DeviceStatus

    base = datetime(2026, 12, 1, tzinfo=UTC)
    kinds = ("environmental", "industrial", "tracker", "smart_meter")
    statuses = (DeviceStatus.ONLINE, DeviceStatus.OFFLINE, DeviceStatus.ONLINE,
                DeviceStatus.WARNING)
    return [Device(f"dev-{i:06d}", device_type=kinds[i % 4], organization=f"org-{i % 7}",
                   name=f"Unit {i}" if i % 3 else "", firmware_version=f"1.{i % 5}.{i % 11}",
                   status=statuses[i % 4], last_seen=base + timedelta(seconds=(i * 7919) % 86400),
                   tags=frozenset({f"zone-{i % 13}"}))
            for i in range(n)]


def _latest_values(devices: list[Any]) -> dict[str, dict[str, float]]:
    """Battery and RSSI for every device, as the table's model loads them."""
    return {d.device_id: {"battery_pct": float(i % 100), "rssi": -40.0 - i % 60}
            for i, d in enumerate(devices)}


def phase_table(rows: int = 100_000) -> dict[str, Any]:
    """Sort and filter of the devices page's model at ``rows`` rows, in a shown view."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QApplication, QTableView

    from plugins.devices.widgets.fleet_model import (
        Col,
        DeviceFilterProxy,
        FilterState,
        FleetTableModel,
    )

    app = QApplication.instance() or QApplication([])
    devices = _devices(rows)
    latest = _latest_values(devices)
    model = FleetTableModel()
    proxy = DeviceFilterProxy()
    proxy.setSourceModel(model)
    view = QTableView()
    view.setModel(proxy)
    view.setSortingEnabled(True)
    view.resize(1200, 700)
    view.show()
    t = time.perf_counter()
    model.load(devices, latest, {})
    app.processEvents()
    load_ms = (time.perf_counter() - t) * 1000

    cpu: dict[str, float] = {}

    def timed(action: Any, name: str = "") -> float:
        """Wall ms to the end of the view's reaction; the GUI thread's CPU ms
        (which a loaded box inflates far less) into ``cpu``."""
        c = time.thread_time()
        t = time.perf_counter()
        action()
        app.processEvents()
        cpu[name] = (time.thread_time() - c) * 1000
        return (time.perf_counter() - t) * 1000

    out: dict[str, Any] = {"rows": rows, "load_ms": load_ms}
    for col, name in ((Col.LAST_SEEN, "sort_last_seen_ms"), (Col.NAME, "sort_name_ms"),
                      (Col.BATTERY, "sort_battery_ms")):
        out[name] = timed(lambda c=col: view.sortByColumn(
            int(c), Qt.SortOrder.DescendingOrder), name)
    out["filter_text_ms"] = timed(lambda: proxy.set_text("zone-7"), "filter_text_ms")
    out["filter_text_rows"] = proxy.rowCount()
    out["filter_status_ms"] = timed(lambda: proxy.set_state(
        FilterState(statuses={"offline"})), "filter_status_ms")
    out["filter_status_rows"] = proxy.rowCount()
    out["sort_filtered_ms"] = timed(lambda: view.sortByColumn(
        int(Col.RSSI), Qt.SortOrder.AscendingOrder), "sort_filtered_ms")
    out["clear_filter_ms"] = timed(lambda: proxy.set_state(FilterState()), "clear_filter_ms")
    out["worst_ms"] = max(v for k, v in out.items() if k.endswith("_ms") and k != "load_ms")
    out["cpu_ms"] = cpu
    out["worst_cpu_ms"] = max(cpu.values())
    # baseline, same process: a bare Python sort of as many floats plus a dict
    # of as many keys (what any sort of the rows must at least do)
    c = time.thread_time()
    floats = [float((i * 7919) % 100_003) for i in range(rows)]
    order = sorted(range(rows), key=floats.__getitem__)
    _ = dict(zip(order, range(rows), strict=True))
    out["baseline_cpu_ms"] = (time.thread_time() - c) * 1000
    view.close()
    return out


# ------------------------------------------------------------------------ paint
def phase_paint(rows: int = 10_000, repeats: int = 40) -> dict[str, Any]:
    """One repaint of the devices table (the page's model, proxy and theme, a
    1400x900 window's worth of cells), quiet and while a Python thread of the
    process stays busy, as the console's network and feed threads do: every
    call Qt makes into Python for a cell then waits for the GIL. Baseline,
    same run and view: the same visible texts in a ``QStandardItemModel``,
    which Qt paints without calling Python (what painting the cells costs)."""
    import cProfile
    import pstats

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QStandardItem, QStandardItemModel
    from PySide6.QtWidgets import QAbstractItemView, QTableView

    from console.app import ensure_application, tune_gui_process
    from console.theme import apply_theme
    from console.widgets.tables import configure_row_table
    from plugins.devices.widgets.fleet_model import DeviceFilterProxy, FleetTableModel

    app = ensure_application()
    tune_gui_process(app)
    if os.environ.get("CONSOLE_BENCH_SWITCH_S"):  # to compare other switch intervals
        sys.setswitchinterval(float(os.environ["CONSOLE_BENCH_SWITCH_S"]))
    apply_theme(app, "light")
    devices = _devices(rows)
    latest = _latest_values(devices)
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    model.load(devices, latest, {})

    def shown(view_model: Any) -> Any:
        view = QTableView()
        view.setModel(view_model)
        configure_row_table(view, QAbstractItemView.SelectionMode.SingleSelection)
        view.setWordWrap(False)
        view.resize(1100, 800)
        view.show()
        for _ in range(10):
            app.processEvents()
        return view

    def repaint(view: Any) -> tuple[float, float]:
        """ms of wall and of GUI-thread CPU per full repaint (median of runs)."""
        walls, cpus = [], []
        for _ in range(repeats):
            t, c = time.perf_counter(), time.thread_time()
            view.viewport().repaint()
            walls.append((time.perf_counter() - t) * 1000)
            cpus.append((time.thread_time() - c) * 1000)
        return statistics.median(walls), statistics.median(cpus)

    ours = shown(proxy)
    first = ours.rowAt(0)
    last = ours.rowAt(ours.viewport().height() - 1)
    visible = range(first, (last if last >= 0 else proxy.rowCount() - 1) + 1)
    plain = QStandardItemModel(proxy.rowCount(), proxy.columnCount())
    for r in visible:
        for c in range(proxy.columnCount()):
            plain.setItem(r, c, QStandardItem(str(proxy.index(r, c).data() or "")))
    baseline = shown(plain)
    out: dict[str, Any] = {"rows": rows, "cells": len(visible) * proxy.columnCount()}
    profiler = cProfile.Profile()
    profiler.enable()
    ours.viewport().repaint()
    profiler.disable()
    out["python_calls_from_qt"] = sum(
        n for (path, _line, name), (_cc, n, *_rest) in pstats.Stats(profiler).stats.items()
        if path.endswith("fleet_model.py") and name in ("data", "multiData", "index", "flags"))
    stop = threading.Event()

    def busy() -> None:
        while not stop.is_set():
            sum(range(200))

    for label in ("quiet", "busy"):
        if label == "busy":
            threading.Thread(target=busy, daemon=True).start()
        for name, view in (("baseline", baseline), ("table", ours)):
            wall, cpu = repaint(view)
            out[f"{label}_{name}_ms"], out[f"{label}_{name}_cpu_ms"] = wall, cpu
        out[f"{label}_ratio"] = out[f"{label}_table_ms"] / max(out[f"{label}_baseline_ms"], 1e-6)
    stop.set()
    ours.close()
    baseline.close()
    return out


# ------------------------------------------------------------------------ live
def _sim_child(conn: Connection, url: str, secret: str | None, devices: int,
               seconds: float) -> None:
    from simulator.runtime import FleetRuntime
    from simulator.scenario import single_group
    from simulator.target import BrokerTarget

    start = float(int(time.time()))
    fleet = single_group(devices, "environmental", interval_s=1.0).build_fleet(
        seed=1, start_s=start)
    runtime = FleetRuntime(fleet, BrokerTarget.parse(url, fleet_secret=secret),
                           connect_rate=2000.0, seed=1, client_id_prefix="cbench-")
    conn.send({"ready": True})
    conn.recv()
    stats = runtime.run(seconds)
    conn.send({"published": sum(t.sent for t in stats.by_type.values()),
               "connected_after_s": stats.all_connected_after_s})
    conn.close()


def _vm_peak_mb(pid: int | None) -> float:
    """Peak resident set of another process (Linux), in MB; 0 when unknown."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def _thread_cpu() -> dict[str, float]:
    """CPU seconds so far of each live thread of this process, by its Python
    name (Linux: /proc/self/task/<tid>/stat); threads Python does not know
    (Qt's, paho's C parts have none) are summed as "other"."""
    import threading

    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), "other")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


class StackSampler:
    """Where the GUI thread is, sampled from another thread every ``every_s``
    (wall clock): what it waits in during a stall, which a profile of its own
    CPU does not show."""

    def __init__(self, every_s: float = 0.05) -> None:
        import threading

        self.gui = threading.get_ident()
        self.every_s = every_s
        self.counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stack-sampler", daemon=True)

    def start(self) -> StackSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            frame = sys._current_frames().get(self.gui)
            names = []
            while frame is not None and len(names) < 5:
                code = frame.f_code
                names.append(f"{Path(code.co_filename).stem}:{code.co_name}:{frame.f_lineno}")
                frame = frame.f_back
            key = " < ".join(names)
            self.counts[key] = self.counts.get(key, 0) + 1

    def stop(self) -> list[tuple[int, str]]:
        self._stop.set()
        self._thread.join(2)
        return sorted(((n, k) for k, n in self.counts.items()), reverse=True)[:15]


SETTLE_MAX_S = 30.0


def _hub_drained(backend: Any, devices: int) -> bool:
    """The moved hub's last heartbeat (as the console's status bar reads it) says
    its inbox is under half the fleet; not before its first heartbeat."""
    observer = backend.observer
    beat = observer.presence.beat if observer is not None else None
    return beat is not None and beat.inbox <= devices // 2


def _object_path(obj: Any) -> str:
    """An object by its name or class and its parents' up to one with a name:
    "QWidget < DeviceDetail < DevicesPage"."""
    from PySide6.QtCore import QObject

    parts = []
    while obj is not None and len(parts) < 4:
        name = obj.objectName()
        parts.append(name or type(obj).__name__)
        if name and len(parts) > 1:
            break
        # QObject's own: a model's parent(index) answers a QModelIndex
        obj = QObject.parent(obj)
    return " < ".join(parts)


class SlowEvents:
    """Which Qt events the long stalls were spent in: an application-wide event
    filter notes each event as it is delivered, and the time until the next
    delivery is charged to it (its handler, the paint it caused, and any wait
    for a core or the GIL inside). Charged per receiver class and event type,
    for gaps over ``over_ms``; nested deliveries split a stall between them."""

    def __init__(self, app: Any, over_ms: float = 20.0) -> None:
        from PySide6.QtCore import QObject

        outer = self

        class _Filter(QObject):
            def eventFilter(self, watched: Any, event: Any) -> bool:
                outer._note(watched, event)
                return False

        self.over_s = over_ms / 1000
        self.totals: dict[str, list[float]] = {}
        # the slow paints (ms, GUI thread CPU ms, region width, height,
        # rectangles): a whole repaint and a few changed rows told apart
        self.paints: list[tuple[float, float, int, int, int]] = []
        self._region_cpu = 0.0
        self._region: tuple[int, int, int] | None = None
        self._last: tuple[float, str] | None = None
        # every delivery's time and name, to say what filled a long stall
        self.recent: collections.deque[tuple[float, str]] = collections.deque(maxlen=200_000)
        self._filter = _Filter()
        self._app = app
        app.installEventFilter(self._filter)

    def _note(self, watched: Any, event: Any) -> None:
        now = time.perf_counter()
        last = self._last
        if last is not None and now - last[0] > self.over_s:
            entry = self.totals.setdefault(last[1], [0, 0.0, 0.0])
            gap = (now - last[0]) * 1000
            entry[0] += 1
            entry[1] += gap
            entry[2] = max(entry[2], gap)
            if self._region is not None:
                cpu = (time.thread_time() - self._region_cpu) * 1000
                self.paints.append((round(gap, 1), round(cpu, 1), *self._region))
        self._region = None
        if event.type().name == "Paint":
            rect = event.region().boundingRect()
            self._region = (rect.width(), rect.height(), event.region().rectCount())
            self._region_cpu = time.thread_time()
        self._last = (now, f"{_object_path(watched)}:{event.type().name}")
        self.recent.append(self._last)

    def explain(self, spans: list[tuple[float, float, float]], gc_passes: list[Any],
                worst: int = 5) -> list[dict[str, Any]]:
        """For the ``worst`` long stalls: the deliveries between the two late
        timer fires, per receiver and event type (count, ms until the next
        delivery), and the GC passes that started in it. A stall of many
        short events (a burst of queued signals) shows here and not in the
        per-event gaps above."""
        out = []
        times = [t for t, _ in self.recent]
        for late, t0, t1 in sorted(spans, reverse=True)[:worst]:
            lo, hi = bisect.bisect_left(times, t0), bisect.bisect_right(times, t1)
            inside = list(self.recent)[lo:hi]
            per: dict[str, list[float]] = {}
            for i, (t, name) in enumerate(inside):
                end = inside[i + 1][0] if i + 1 < len(inside) else t1
                entry = per.setdefault(name, [0, 0.0])
                entry[0] += 1
                entry[1] += (end - t) * 1000
            top = sorted(per.items(), key=lambda kv: -kv[1][1])[:6]
            out.append({"late_ms": round(late, 1), "events": len(inside),
                        "by": [(k, int(n), round(ms, 1)) for k, (n, ms) in top],
                        "gc": [(round(ms, 1), gen) for at, ms, gen in gc_passes
                               if t0 <= at <= t1]})
        return out

    def stop(self) -> list[tuple[str, int, float, float]]:
        self._app.removeEventFilter(self._filter)
        rows = sorted(self.totals.items(), key=lambda kv: -kv[1][1])[:15]
        return [(k, int(n), round(total, 1), round(worst, 1)) for k, (n, total, worst) in rows]

    def slow_paints(self) -> list[tuple[float, float, int, int, int]]:
        return sorted(self.paints, reverse=True)[:20]


class GcPauses:
    """Every garbage-collector pass while it is on: the window waits for each
    (on its own thread, or for the GIL), so the longest ones are stalls."""

    def __init__(self) -> None:
        import gc

        self._gc = gc
        self._started = 0.0
        self._young = 0
        # ms, generation, thread, allocations since the last pass, objects freed
        self.passes: list[tuple[float, int, str, int, int]] = []
        self.starts: list[tuple[float, float, int]] = []  # (perf_counter, ms, generation)
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._young = self._gc.get_count()[0]
        else:
            ms = (time.perf_counter() - self._started) * 1000
            self.passes.append((ms, int(info["generation"]), threading.current_thread().name,
                                self._young, int(info["collected"])))
            self.starts.append((self._started, ms, int(info["generation"])))

    def stop(self) -> dict[str, Any]:
        self._gc.callbacks.remove(self._callback)
        longest = sorted(self.passes, reverse=True)[:5]
        return {"passes": len(self.passes),
                "total_ms": round(sum(p[0] for p in self.passes), 1),
                "longest": [(round(ms, 1), gen, thread, young, freed)
                            for ms, gen, thread, young, freed in longest]}


def _console_child(conn: Connection, devices: int, seconds: float, idle_s: float,
                   profile: str | None = None, screenshot: str | None = None,
                   hub_process: bool = False) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from console.app import build_main_window, ensure_application, tune_gui_process
    from core.context import AppContext
    from core.plugins import PluginManager

    app = ensure_application()
    tune_gui_process(app)  # as run_console does: the GIL's switch interval, GC on this thread
    if os.environ.get("CONSOLE_BENCH_SWITCH_S"):  # to compare other switch intervals
        sys.setswitchinterval(float(os.environ["CONSOLE_BENCH_SWITCH_S"]))
    workdir = Path(tempfile.mkdtemp(prefix="console-bench-"))
    context = AppContext(_config(workdir, hub_process), PluginManager())
    window = build_main_window(context)
    window.resize(1400, 900)
    window.show()
    probe = StallProbe()
    backend: Any = context.backend  # the local backend: its broker and hub
    broker = backend.broker
    window.show_page("devices")
    devices_page: Any = window.page_widget("devices")
    for _ in range(50):
        app.processEvents()
        time.sleep(0.02)
    idle = probe.measure(app, idle_s)
    rss_idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    from simulator.scenario import single_group

    # the devices log in as themselves, as RunningFleet(on_broker=...) lets them
    broker.add_devices(single_group(devices, "environmental", interval_s=1.0).build_fleet(
        seed=1, start_s=float(int(time.time()))).device_ids)
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    sim = ctx.Process(target=_sim_child, args=(child, broker.url, broker.fleet_secret, devices,
                                               3600.0))  # runs until terminated below
    sim.start()
    if not parent.recv().get("ready"):
        raise RuntimeError("simulator did not get ready")
    parent.send("go")
    # wait until the table shows (nearly) the whole fleet
    t_fill = time.perf_counter()
    deadline = t_fill + 60 + devices / 200
    fill_worst = 0.0  # the worst stall while the fleet comes up (and the hub moves out)
    handover = getattr(backend, "handover", None)
    while time.perf_counter() < deadline and (
            devices_page.model.rowCount() < devices * 0.98
            or (handover is not None and handover.moved is None and (
                backend.hub is None  # a move under way
                or len(backend.hub.cache) > handover.above))):
        fill_worst = max(fill_worst, probe.measure(app, 0.5)["max_ms"])
    fill_s = time.perf_counter() - t_fill
    moved = handover.moved if handover is not None else None
    # A hub that just moved out resumes the session with what the broker queued
    # meanwhile and drains it at full speed: the move's aftermath, once, not the
    # steady state target 4 is about. Measured apart (worst stall, how long).
    settle_s, settle_worst = 0.0, 0.0
    if moved is not None and backend.hub_process is not None:
        t_settle = time.perf_counter()
        while (time.perf_counter() - t_settle < SETTLE_MAX_S
               and not _hub_drained(backend, devices)):
            settle_worst = max(settle_worst, probe.measure(app, 0.5)["max_ms"])
        settle_s = time.perf_counter() - t_settle
    rows_seen = devices_page.model.rowCount()
    # a device's detail, the alerts page, then the live chart
    first = devices_page.model.device(0).device_id if rows_seen else None
    if first is not None:
        devices_page.show_device(first)
    window.show_page("alerts")
    probe.measure(app, 1.0)
    window.show_page("analytics")
    analytics: Any = window.page_widget("analytics")
    live = analytics.live
    analytics.tabs.setCurrentWidget(live)
    chart_ids = [devices_page.model.device(i).device_id for i in range(min(3, rows_seen))]
    if chart_ids:
        live.picker.select(chart_ids, ["temperature"])
    probe.measure(app, 2.0)
    frame_times: list[float] = []
    original = live.draw_frame

    def timed_frame() -> None:
        t = time.perf_counter()
        original()
        frame_times.append((time.perf_counter() - t) * 1000)

    live.frame_timer.timeout.disconnect()
    live.frame_timer.timeout.connect(timed_frame)
    # the devices page in front (detail open), then the live chart in front
    window.show_page("devices")
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()  # the GUI thread only
        profiler.enable()
    sampler = StackSampler().start() if os.environ.get("CONSOLE_BENCH_SAMPLE") else None
    slow_events = SlowEvents(app) if os.environ.get("CONSOLE_BENCH_EVENTS") else None
    pauses = GcPauses()
    threads0 = _thread_cpu()
    cpu0, gui0 = time.process_time(), time.thread_time()
    receiver = getattr(backend, "receiver", None)
    rx0 = receiver.cpu_s if receiver is not None else 0.0
    probe.spans = []  # the live phases' long stalls only
    on_devices = probe.measure(app, seconds / 2)
    if screenshot:
        window.grab().save(screenshot)
    bridge = devices_page.bridge
    received_mid = bridge.received if bridge is not None else 0
    window.show_page("analytics")
    on_chart = probe.measure(app, seconds / 2)
    slow = slow_events.stop() if slow_events is not None else []
    slow_paints = slow_events.slow_paints() if slow_events is not None else []
    stall_causes = (slow_events.explain(probe.spans, pauses.starts)
                    if slow_events is not None else [])
    # CPU of the console's process over both phases: all threads, the GUI
    # thread, and (hub in a child) the thread turning the receiver's digests
    # into events; the rest is network, bridges' inboxes and pollers
    cpu = {"process_s": time.process_time() - cpu0, "gui_thread_s": time.thread_time() - gui0,
           "receiver_thread_s": (receiver.cpu_s - rx0) if receiver is not None else 0.0,
           "wall_s": seconds}
    threads = {k: round(v - threads0.get(k, 0.0), 2) for k, v in _thread_cpu().items()}
    cpu["threads_s"] = dict(sorted(threads.items(), key=lambda kv: -kv[1])[:12])
    curves = len(live.chart.curves)
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    hub = backend.hub
    hub_stats = {k: getattr(hub, k) for k in ("shed_overload",) if hasattr(hub, k)}
    child = backend.hub_process
    if child is not None:
        hub_stats = {"process": True, "last_status": child.last_line,
                     "rss_peak_mb": _vm_peak_mb(child.pid)}
    received = bridge.received if bridge is not None else 0
    gc_pauses = pauses.stop()
    sim.terminate()
    sim.join(10)
    if child is not None:
        child.stop()  # the hub process with the console, as closing the window does
    conn.send({
        "devices": devices, "idle": idle, "on_devices": on_devices, "on_chart": on_chart,
        "live_worst": max(on_devices["max_ms"], on_chart["max_ms"]),
        "live_p99": max(on_devices["p99_ms"], on_chart["p99_ms"]),
        "live_p50": max(on_devices["p50_ms"], on_chart["p50_ms"]),
        "rss_idle_mb": rss_idle, "rss_peak_mb": rss_peak, "fill_s": fill_s,
        "rows_seen": rows_seen, "chart_curves": curves, "fill_worst_ms": fill_worst,
        "settle_s": settle_s, "settle_worst_ms": settle_worst,
        "hub_moved": None if moved is None else {
            "devices": moved.devices, "seconds": moved.seconds, "drained": moved.drained,
            "error": moved.error},
        "chart_frame_max_ms": max(frame_times, default=0.0),
        "chart_frame_p99_ms": _pct(frame_times, 0.99), "chart_frames": len(frame_times),
        "events_to_devices_page": received, "events_in_second_half": received - received_mid,
        "hub": hub_stats, "console_cpu": cpu, "gc": gc_pauses,
        "gui_stacks": sampler.stop() if sampler is not None else [],
        "slow_events": slow, "slow_paints": slow_paints, "stall_causes": stall_causes,
        "links": {name: getattr(getattr(getattr(backend, name, None), "link", None),
                                "client_id", None) for name in ("observer", "client")},
    })
    conn.close()
    os._exit(0)  # the hub and broker die with the process; a clean close is not measured


def phase_live(devices: int, seconds: float, idle_s: float = 10.0,
               profile: str | None = None, screenshot: str | None = None,
               hub_process: bool = False) -> dict[str, Any]:
    from simulator.broker import raise_fd_limit

    raise_fd_limit()
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    load_before = os.getloadavg()
    proc = ctx.Process(target=_console_child, args=(child, devices, seconds, idle_s,
                                                     profile, screenshot, hub_process))
    proc.start()
    result: dict[str, Any] = parent.recv()
    proc.join(30)
    moved = result.get("hub_moved")
    result["hub_mode"] = ("process" if hub_process else
                          f"moved out of the console's process at {moved['devices']:,} devices"
                          if moved else "in the console's process")
    result["load_before"] = load_before
    result["load_after"] = os.getloadavg()
    return result


def run(sizes: list[int], seconds: float, table_rows: int, *, idle_s: float = 10.0,
        startup_repeats: int = 3, process_sizes: list[int] | None = None) -> dict[str, Any]:
    """``process_sizes``: fleets measured again with ``hub_process = true``,
    the profile the README gives for thousands of devices on one machine."""
    return {
        "startup": phase_startup(startup_repeats),
        "table": _in_child(phase_table, table_rows),
        "paint": _in_child(phase_paint, min(10_000, table_rows), 40 if table_rows > 5_000 else 3),
        "live": [phase_live(n, seconds, idle_s) for n in sizes]
        + [phase_live(n, seconds, idle_s, hub_process=True) for n in process_sizes or []],
    }


def _phase_child(conn: Connection, fn: Any, args: tuple[Any, ...]) -> None:
    conn.send(fn(*args))
    conn.close()


def _in_child(fn: Any, *args: Any) -> dict[str, Any]:
    """``fn(*args)`` in a fresh interpreter (no warm caches from other phases)."""
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_phase_child, args=(child, fn, args))
    proc.start()
    out: dict[str, Any] = parent.recv()
    proc.join(30)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, nargs="*", default=[1_000, 5_000, 10_000])
    p.add_argument("--seconds", type=float, default=40.0)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--profile", help="cProfile the GUI thread of the live phase into FILE")
    p.add_argument("--screenshot", help="PNG of the window on the devices page (live phase)")
    p.add_argument("--phases", nargs="*", default=["startup", "table", "live"])
    p.add_argument("--hub", choices=("thread", "process", "both"), default="thread",
                   help="live phase: the hub in the console's process (the default "
                        "profile), in a child process (hub_process = true), or one run of "
                        "each, back to back")
    p.add_argument("--startup-root", type=Path, default=ROOT,
                   help="source tree whose start-up is measured (default: this one)")
    a = p.parse_args(argv)
    if a.quick:
        a.devices, a.seconds, a.rows = [20], 2.0, 2_000
    out: dict[str, Any] = {}
    if "startup" in a.phases:
        out["startup"] = phase_startup(1 if a.quick else 3, a.startup_root)
        if a.hub in ("process", "both"):
            out["startup_hub_process"] = phase_startup(1 if a.quick else 3, a.startup_root,
                                                       hub_process=True)
    if "table" in a.phases:
        out["table"] = _in_child(phase_table, a.rows)
    if "paint" in a.phases:
        out["paint"] = _in_child(phase_paint, 10_000 if not a.quick else 500,
                                 40 if not a.quick else 3)
    if "live" in a.phases:
        modes = {"thread": [False], "process": [True], "both": [False, True]}[a.hub]
        out["live"] = [phase_live(n, a.seconds, 1.0 if a.quick else 10.0, a.profile,
                                  a.screenshot, mode)
                       for n in a.devices for mode in modes]
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
