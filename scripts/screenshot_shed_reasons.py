"""The status bar while the hub sheds load, per reason: a real hub on a private
mosquitto and SQLite, a burst of QoS 0 messages beyond its inbox (shed:
overload), then refused messages while another connection holds the database's
write lock (quarantine rows shed: database away). The real status widget in a
window's status bar, fed by the hub's own status events.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_shed_reasons.py \
        docs/screenshots
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.shot_tools import grab, wait_for  # noqa: E402


def main(out: Path) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    import core.store.engine
    import plugins.local.hub.hub as hub_module
    from core.config import load_config
    from core.context import AppContext
    from core.hookspecs import hookimpl
    from core.plugins import PluginManager
    from core.ports.backend import Backend
    from core.registrations import BackendSpec
    from core.services.event_bus import EventBus
    from core.store import Store
    from plugins.local.hub.hub import Hub
    from plugins.local.widgets.status import HubStatusWidget
    from simulator.broker import EmbeddedBroker

    out.mkdir(parents=True, exist_ok=True)
    core.store.engine.SQLITE_BUSY_TIMEOUT_MS = 300
    hub_module.MAX_PENDING_QUARANTINE = 3
    app = QApplication.instance() or QApplication([sys.argv[0]])
    tmp = Path(tempfile.mkdtemp(prefix="smartiot-shed-shot-"))
    db = tmp / "hub.db"
    with EmbeddedBroker(prefer="mosquitto", anonymous=True) as broker:
        store = Store.open(f"sqlite:///{db}")
        bus = EventBus()
        hub = Hub(store, bus, broker.host, broker.port, inbox_limit=5)
        hub.start()
        assert hub.wait_subscribed(15)
        backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                          telemetry=store.telemetry, live=bus, rules=store.rules,
                          quarantine=store.quarantine, audit=store.audit)

        class Plugin:
            @hookimpl
            def smartiot_register_backends(self, register):  # type: ignore[no-untyped-def]
                register(BackendSpec("local", "screenshot", lambda _ctx: backend))

        manager = PluginManager(builtins=(), entry_points=False, blocked=())
        manager.register("screenshot-backend", Plugin())
        context = AppContext(load_config(tmp / "config.toml", tmp / "data", env={}), manager)
        window = QMainWindow()
        window.setCentralWidget(QLabel("The hub under more than it can take"))
        widget = HubStatusWidget(context)
        window.statusBar().addPermanentWidget(widget, 1)
        window.resize(1200, 160)
        window.show()
        publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="shed-shot")
        publisher.connect(broker.host, broker.port)
        publisher.loop_start()
        for i in range(3_000):
            publisher.publish("dt/shed/dev-1/telemetry", b"not json %d" % i, qos=0)
        wait_for(app, lambda: hub.counters.shed_overload > 0, 30)
        lock = sqlite3.connect(db, timeout=30, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        deadline = time.monotonic() + 30
        while hub.counters.shed_quarantine == 0 and time.monotonic() < deadline:
            publisher.publish("dt/shed/dev-1/telemetry", b"still not json", qos=0)
            app.processEvents()
            time.sleep(0.05)
        wait_for(app, lambda: widget.shed_quarantine > 0 and widget.shed_overload > 0, 20)
        wait_for(app, lambda: "Database unavailable" in widget.texts()["health"], 20)
        print(widget.texts())
        grab(app, window, out / "status-shed-reasons.png")
        lock.execute("ROLLBACK")
        lock.close()
        publisher.loop_stop()
        publisher.disconnect()
        window.close()
        hub.stop(timeout_s=5)
        store.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
