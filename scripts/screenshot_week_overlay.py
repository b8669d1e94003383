"""Screenshot of the History view's week overlay: 10 devices x 7 days at 1 Hz
(6 million readings) drawn from the minute rollups, light and dark.

    xvfb-run -a .venv/bin/python scripts/screenshot_week_overlay.py

Writes docs/screenshots/analytics-week-overlay-{light,dark}.png and prints how
long the load took from request to painted (cold: the first request folds the
rollups; then warm).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "scripts")]

from analytics_bench import seed_week  # noqa: E402
from shot_tools import grab, wait_for  # noqa: E402

from console.app import ensure_application  # noqa: E402
from console.theme import apply_theme  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.model import Device  # noqa: E402
from core.plugins import PluginManager  # noqa: E402
from core.ports.backend import Backend  # noqa: E402
from core.services.event_bus import EventBus  # noqa: E402
from core.store import Store  # noqa: E402
from tests.gui.alerts.conftest import BackendPlugin  # noqa: E402
from tests.gui.analytics.fleet_seed import ORGANIZATION  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
DAYS = int(sys.argv[1]) if len(sys.argv) > 1 else 7


def main() -> int:
    from plugins.analytics.widgets.analytics_page import AnalyticsPage

    app = ensure_application([sys.argv[0]])
    tmp = Path(tempfile.mkdtemp(prefix="week-shots-"))
    store = Store.open(f"sqlite:///{tmp / 'fleet.db'}")
    ids = [f"week-{i:03d}" for i in range(10)]
    store.registry.upsert_many([Device(d, device_type="environmental",
                                       organization=ORGANIZATION) for d in ids])
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    seed_week(store, ids, now - timedelta(days=DAYS), DAYS * 86_400)
    backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, live=EventBus(), rules=store.rules)
    plugins = PluginManager(builtins=(), entry_points=False, blocked=())
    plugins.register("backend", BackendPlugin(backend))
    context = AppContext(load_config(tmp / "config.toml", tmp / "data", env={}), plugins)
    OUT.mkdir(parents=True, exist_ok=True)
    for theme in ("light", "dark"):
        apply_theme(app, theme)
        page = AnalyticsPage(context)
        page.resize(1400, 860)
        page.show()
        history = page.history
        page.tabs.setCurrentWidget(history)
        wait_for(app, lambda h=history: h.picker.devices.count() >= len(ids), timeout_s=120)
        history.range_combo.setCurrentIndex(0)
        history.range_combo.setCurrentIndex(history.range_combo.findText("Last week"))
        for run in ("first", "again"):
            loaded: list[object] = []
            history.loaded.connect(loaded.append)
            began = time.perf_counter()
            if run == "first":
                history.picker.select(ids, ["temperature"])
            else:
                history.reload()
            wait_for(app, lambda got=loaded: bool(got), timeout_s=120)
            history.chart.graphics.viewport().repaint()
            print(f"{theme} {run}: request to painted {(time.perf_counter() - began) * 1000:.0f} ms"
                  f" ({history.status.text()})")
            history.loaded.disconnect(loaded.append)
        grab(app, page, OUT / f"analytics-week-overlay-{theme}.png")
        page.close()
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
