"""Target 2's reads as a person sees them, for the suite (bench/run_suite.py).

Runs in an interpreter of its own (:func:`run`): the charts it draws are Qt
objects, and the suite's other benches must not meet them in a garbage
collection (nor a test runner's Qt state: a multiprocessing child forked off
pytest crashed where a fresh interpreter does not).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def run(quick: bool) -> dict[str, Any]:
    """:func:`measure` in a fresh interpreter (this file run as a script)."""
    with tempfile.TemporaryDirectory(prefix="suite-history-") as tmp:
        out = Path(tmp) / "history.json"
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), str(out),
             *(["--quick"] if quick else [])],
            env=os.environ | {"QT_QPA_PLATFORM": "offscreen"}, capture_output=True,
            text=True, timeout=1800)
        if proc.returncode != 0 or not out.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or [""]
            return {"error": f"the history bench ended with {proc.returncode}: {tail[0]}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result


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

    from PySide6.QtWidgets import QApplication

    from core.store import Store

    app = QApplication.instance() or QApplication([sys.argv[0]])
    from console.gui_thread_gc import install

    install(app)  # as the console does: the read pool's threads must not collect Qt objects
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
    except Exception as exc:  # noqa: BLE001
        out["error"] = f"{type(exc).__name__}: {exc}"
    week = getattr(analytics_bench, "week_overlay", None)
    if callable(week):
        saved = analytics_bench.DAY_S
        if quick:  # the smoke's "week": 2 devices x an hour
            analytics_bench.DAY_S = 3_600
        try:  # 10 devices x 7 days at 1 Hz
            out["week"] = week(app, devices=2 if quick else 10, days=1 if quick else 7,
                               repeat=repeat)
        except Exception as exc:  # noqa: BLE001
            out["week_error"] = f"{type(exc).__name__}: {exc}"
        finally:
            analytics_bench.DAY_S = saved
    return out


if __name__ == "__main__":
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    Path(sys.argv[1]).write_text(json.dumps(measure("--quick" in sys.argv[2:]), default=str))
