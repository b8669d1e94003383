"""Screenshots of the Analytics page (dashboard, live, history) with realistic data.

    QT_QPA_PLATFORM=offscreen .venv/bin/python -m tests.gui.analytics.screenshots

Seeds the fleet of the GUI tests (simulated telemetry, alerts, a rule) into a
throw-away SQLite store, streams live readings from the simulator's
environmental model into the live feed for a few seconds, and writes
docs/screenshots/analytics-dashboard.png, analytics-live.png, analytics-history.png.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from console.app import ensure_application  # noqa: E402
from console.theme import apply_theme  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.model import Reading  # noqa: E402
from core.model.events import TelemetryReceived  # noqa: E402
from core.plugins import PluginManager  # noqa: E402
from core.ports.backend import Backend  # noqa: E402
from core.services.event_bus import EventBus  # noqa: E402
from core.store import Store  # noqa: E402
from simulator.models import BUILTIN_MODELS  # noqa: E402
from tests.gui.alerts.conftest import BackendPlugin  # noqa: E402
from tests.gui.analytics.fleet_seed import ENV, INTERVAL_S, PUMPS, seed_fleet  # noqa: E402

OUT = ROOT / "docs" / "screenshots"


def settle(app: QApplication, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def stream(bus: EventBus, stop: threading.Event, seeded_from: datetime) -> None:
    """The seeded environmental sensors carry on live at 5 Hz: the same model and
    seed as the stored history, stepped to now first, so live continues history."""
    model = BUILTIN_MODELS["environmental"](len(ENV), np.random.default_rng(7), {})
    t = seeded_from.timestamp()
    while t < time.time() - INTERVAL_S:
        model.step(t, INTERVAL_S)
        t += INTERVAL_S
    while not stop.is_set():
        values = model.step(t, 0.2)
        at = datetime.fromtimestamp(t, UTC)
        bus.publish([TelemetryReceived(d, tuple(
            Reading(d, m, at, float(values[m][i])) for m in ("temperature", "humidity")))
            for i, d in enumerate(ENV[:4])])
        t += 0.2
        time.sleep(max(t - time.time(), 0))


def main() -> int:
    from plugins.analytics.widgets.analytics_page import AnalyticsPage

    app = ensure_application([sys.argv[0]])
    apply_theme(app, "light")
    tmp = Path(tempfile.mkdtemp(prefix="analytics-shots-"))
    store = Store.open(f"sqlite:///{tmp / 'fleet.db'}")
    seeded_from = seed_fleet(store)
    bus = EventBus()
    bus.set_connection_state("connected")
    backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, live=bus, rules=store.rules)
    plugins = PluginManager(builtins=(), entry_points=False, blocked=())
    plugins.register("backend", BackendPlugin(backend))
    context = AppContext(load_config(tmp / "config.toml", tmp / "data", env={}), plugins)
    page = AnalyticsPage(context)
    page.resize(1400, 860)
    page.show()
    settle(app, 3)
    OUT.mkdir(parents=True, exist_ok=True)
    page.grab().save(str(OUT / "analytics-dashboard.png"))

    stop = threading.Event()
    worker = threading.Thread(target=stream, args=(bus, stop, seeded_from), daemon=True)
    worker.start()
    page.tabs.setCurrentWidget(page.live)
    page.live.window_combo.setCurrentIndex(0)  # 1 minute
    page.live.picker.select(list(ENV[:4]), ["temperature", "humidity"])
    page.live.stacked.setChecked(True)
    settle(app, 12)
    page.live.chart.show_crosshair(time.time() - 20)
    settle(app, 0.3)
    page.grab().save(str(OUT / "analytics-live.png"))
    stop.set()
    worker.join()

    page.tabs.setCurrentWidget(page.history)
    page.history.range_combo.setCurrentIndex(page.history.range_combo.findText("Last 6 hours"))
    page.history.picker.select([ENV[0], ENV[1], PUMPS[0]], ["temperature"])
    settle(app, 4)
    chart = page.history.chart
    plot = chart.main_plot
    x0, x1 = plot.getViewBox().viewRange()[0]
    chart.show_crosshair(x1 - (x1 - x0) * 0.22)
    settle(app, 0.3)
    page.grab().save(str(OUT / "analytics-history.png"))
    print(f"wrote {OUT}/analytics-dashboard.png, analytics-live.png, analytics-history.png")
    page.live.close_feed()
    page.close()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
