"""A console whose hub runs elsewhere (``hub = false``) shows the real broker
state and the hub's health, and a banner on the main window while the hub is
gone: a real `smartiot hub` subprocess killed with SIGKILL (so the broker
publishes its Last Will) and started again, a private mosquitto, the project's
simulator, the real main window and status widget."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.plugins import PluginManager
from core.registrations import StatusWidgetSpec
from plugins.local.backend import build_local_backend
from plugins.local.widgets.status import HubStatusWidget, build_hub_status
from tests.chaos.rig import HubProcess
from tests.gui.alerts.conftest import BackendPlugin
from tests.gui.conftest import StatusPlugin
from tests.integration.hub.test_hub_restart import start_fleet

pytestmark = pytest.mark.gui

SCREENSHOTS = os.environ.get("SMARTIOT_SCREENSHOT_DIR")


def team_console(broker_url: str, database_url: str, tmp_path: Path) -> AppContext:
    path = tmp_path / "console" / "config.toml"
    path.parent.mkdir()
    path.write_text('profile = "team"\n[profiles.team]\n'
                    f'broker = "{broker_url}"\ndatabase = "{database_url}"\n'
                    'hub = false\ndemo_fleet = false\n')
    config = load_config(path, tmp_path / "console-data", env={})
    return AppContext(config, PluginManager(entry_points=False, blocked=()))


def shoot(qtbot, window, name: str) -> None:
    if SCREENSHOTS:
        qtbot.wait(400)  # the status bar lays out the new texts first
        window.grab().save(str(Path(SCREENSHOTS) / name))


def test_console_shows_hub_health_and_a_banner_while_the_hub_is_gone(
        qtbot, make_context, make_window, mosquitto_broker, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'team.db'}"
    data = tmp_path / "hub-data"
    data.mkdir()
    hub = HubProcess(mosquitto_broker.url, database, data)
    running = backend = None
    try:
        hub.wait_running()
        running = start_fleet(mosquitto_broker.url, 3, "presence", interval_s=0.5)
        team = team_console(mosquitto_broker.url, database, tmp_path)
        backend = build_local_backend(team)
        assert backend.hub is None and backend.observer is not None
        context = make_context(
            ("test-backend", BackendPlugin(backend)),
            ("status", StatusPlugin(StatusWidgetSpec("local.hub", build_hub_status))),
            config_=team.config)
        window = make_window(context, show=True)
        window.resize(1180, 640)
        widget = window.status_widgets["local.hub"]
        assert isinstance(widget, HubStatusWidget)

        # connected, the hub online, its message rate from the heartbeat
        qtbot.waitUntil(lambda: "Broker connected" in widget.texts()["connection"]
                        and "Hub online" in widget.texts()["hub"]
                        and (widget.messages_per_s or 0) > 0, timeout=30_000)
        assert "msg/s" in widget.texts()["rate"] and "—" not in widget.texts()["rate"]
        assert not widget.banner.shown
        shoot(qtbot, window, "hub-online-status-bar.png")

        killed = time.monotonic()
        hub.kill9()  # no goodbye: the broker publishes the hub's Last Will
        qtbot.waitUntil(lambda: widget.banner.shown, timeout=10_000)
        banner_after = time.monotonic() - killed
        texts = widget.texts()
        assert "Hub offline" in texts["hub"]
        assert "connection lost" in texts["banner"]
        assert "Broker connected" in texts["connection"]  # the console's link is fine
        assert texts["rate"].startswith("—")
        shoot(qtbot, window, "hub-gone-banner.png")

        hub = HubProcess(mosquitto_broker.url, database, data)
        hub.wait_running()
        running_at = time.monotonic()
        qtbot.waitUntil(lambda: not widget.banner.shown
                        and "Hub online" in widget.texts()["hub"], timeout=20_000)
        assert widget.texts()["banner"] == ""
        print(f"HUB-PRESENCE: banner {banner_after:.1f} s after SIGKILL, gone "
              f"{time.monotonic() - running_at:.1f} s after the restarted hub said running")
    finally:
        if running is not None:
            running.stop()
        if backend is not None:
            backend.close()
        hub.close()
