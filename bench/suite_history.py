"""Target 2's reads as a person sees them, for the suite (bench/run_suite.py).

Runs in a process of its own (:func:`run`): the charts it draws are Qt objects,
and the suite's other benches must not meet them in a garbage collection.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def run(quick: bool) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_child, args=(child, quick))
    proc.start()
    try:
        out: dict[str, Any] = parent.recv()
    except EOFError:
        out = {"error": f"the history bench's process ended with {proc.exitcode}"}
    proc.join(60)
    return out


def _child(conn: Connection, quick: bool) -> None:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    conn.send(measure(quick))
    conn.close()


def measure(quick: bool) -> dict[str, Any]:
    """Target 2's reads as a person sees them, through analytics_bench (its owner
    improves them; whatever it offers is taken, and a missing part is reported
    as not measured rather than failing the suite): the 24 h history at 1 Hz
    queried and drawn, and 10 devices overlaid for a week."""
    out: dict[str, Any] = {}
    try:
        import analytics_bench
    except Exception as exc:  # noqa: BLE001 - a bench that does not import is reported
        return {"error": f"analytics_bench did not import: {exc}"}
    for name in ("suite_history", "suite_figures"):  # a single entry point, if it has one
        fn = getattr(analytics_bench, name, None)
        if callable(fn):
            try:
                return dict(fn(quick=quick))
            except Exception as exc:  # noqa: BLE001
                return {"error": f"analytics_bench.{name}: {exc}"}
    import tempfile
    from datetime import timedelta

    from PySide6.QtWidgets import QApplication

    from core.store import Store

    app = QApplication.instance() or QApplication([sys.argv[0]])
    assert isinstance(app, QApplication)
    n, repeat = (1, 1) if quick else (10, 5)
    day = 600 if quick else analytics_bench.DAY_S
    try:
        with tempfile.TemporaryDirectory(prefix="suite-history-") as tmp:
            db = Path(tmp) / "history.db"
            with Store.open(f"sqlite:///{db}") as store:
                devices = [f"env-{i:05d}" for i in range(n)]
                start = datetime(2026, 11, 25, tzinfo=UTC)
                analytics_bench.seed(store, devices, start, day)
                if quick:  # the phase reads a full day; the smoke seeds an hour of it
                    analytics_bench.DAY_S, saved = day, analytics_bench.DAY_S
                try:
                    out["day"] = analytics_bench.history_phase(app, store, db, devices, start,
                                                               repeat)
                finally:
                    if quick:
                        analytics_bench.DAY_S = saved
                out["points"] = day
                out["devices"] = n
                week = getattr(analytics_bench, "week_phase", None) or getattr(
                    analytics_bench, "overlay_week_phase", None)
                if callable(week):
                    out["week"] = week(app, store, db, devices, start - timedelta(days=6),
                                       repeat)
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out
