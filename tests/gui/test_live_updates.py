"""Pages follow changes made by another process — here the ``smartiot`` CLI —
without anyone pressing Refresh, in the one-process and the team set-up."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.model import Alert, AlertState, Device, DeviceStatus, Severity
from core.plugins import PluginManager

pytestmark = pytest.mark.gui

ROOT = Path(__file__).resolve().parents[2]


def smartiot(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "console.cli", *args], capture_output=True,
                          text=True, env=env, timeout=180, cwd=ROOT)
    assert done.returncode == 0, f"smartiot {' '.join(args)}: {done.stderr}"
    return done.stdout


@pytest.fixture(params=["one-process", "team"])
def setup(request, tmp_path, make_window, qtbot, monkeypatch):
    """The window on a private embedded broker and a SQLite file the CLI shares;
    "team" runs no hub in the console (``hub = false``): it follows the store."""
    hub = request.param == "one-process"
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        "[profiles.local]\ndemo_fleet = false\n" + ("" if hub else "hub = false\n"))
    data = tmp_path / "data"
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_CODESIGN_PASSPHRASE", "live-updates-test")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    config = load_config(config_path, data, env={})
    assert config.profile.hub is hub and config.profile.demo_fleet is False
    context = AppContext(dataclasses.replace(config), PluginManager(entry_points=False,
                                                                    blocked=()))
    backend = context.backend
    # in the profile's organization: a team console sees and deploys to only its own
    backend.registry.upsert_many([Device(f"pump-{i}", device_type="pump",
                                         status=DeviceStatus.ONLINE, firmware_version="1.0.0",
                                         organization=config.profile.organization)
                                  for i in range(3)])
    window = make_window(context, show=True)
    env = {**os.environ, "SMARTIOT_CONFIG": str(config_path), "SMARTIOT_DATA_DIR": str(data),
           "QT_QPA_PLATFORM": "offscreen"}
    if not hub:
        # A terminal on the team's services names them (check_team_profile): the
        # same database file and broker as the console.
        env["SMARTIOT_DATABASE"] = config.database_url
        env["SMARTIOT_BROKER"] = backend.broker_url or "mqtt://127.0.0.1:1883"
    yield window, backend, env, hub
    window.close()
    context.close()


def test_cli_changes_reach_the_open_pages_without_refresh(setup, qtbot, tmp_path):
    window, backend, env, one_process = setup
    alert = Alert("pump-1", "vibration", Severity.WARNING, "vibration above 7 mm/s", value=7.4)
    backend.alerts.add(alert)

    window.show_page("alerts")
    alerts = window.page_widget("alerts")
    qtbot.waitUntil(lambda: alerts.model.row_of(alert.alert_id) is not None, timeout=20_000)
    alerts.state_filter.setCurrentIndex(alerts.state_filter.findText("All states"))
    qtbot.waitUntil(lambda: alerts.model.row_of(alert.alert_id) is not None, timeout=20_000)
    alerts.select_alerts([alert.alert_id])
    refreshes = []
    alerts.refresh_button.clicked.connect(lambda: refreshes.append(1))

    # support acknowledges from a terminal: the table row and the detail follow
    smartiot(env, "alerts", "ack", alert.alert_id[:8], "--comment", "on my way")

    def row_state() -> AlertState | None:
        row = alerts.model.row_of(alert.alert_id)
        return None if row is None else alerts.model.alert_at(row).state

    qtbot.waitUntil(lambda: row_state() is AlertState.ACKNOWLEDGED, timeout=20_000)
    qtbot.waitUntil(lambda: alerts.detail.fields["Acknowledged"].text().startswith(
        backend.alerts.get(alert.alert_id).acknowledged_by or "?"), timeout=20_000)
    assert alerts.detail.fields["Comment"].text() == "on my way"

    # an engineer imports an image from CI: the Library lists it
    window.show_page("firmware")
    firmware = window.page_widget("firmware")
    library = firmware.library
    qtbot.waitUntil(lambda: library.count_label.text() != "", timeout=20_000)
    assert library.model.rowCount() == 0
    image = tmp_path / "pump-1.1.0.bin"
    image.write_bytes(os.urandom(4096))
    if not one_process:
        # A team signs only with keys an admin has added to the team's trusted keys.
        admin = {**env, "SMARTIOT_ROLE": "admin"}
        smartiot(admin, "firmware", "key", "create")
        smartiot(admin, "firmware", "keys", "add",
                 str(Path(env["SMARTIOT_DATA_DIR"]) / "codesign" / "signing-key.pub.pem"),
                 "--owner", "release-engineer")
    smartiot(env, "firmware", "add", str(image), "--version", "1.1.0", "--type", "pump")
    qtbot.waitUntil(lambda: library.model.row_of("pump@1.1.0") is not None, timeout=20_000)

    # ... creates a deployment and cancels it from the terminal: the list follows
    firmware.tabs.setCurrentWidget(firmware.deployments)
    deployments = firmware.deployments
    created = smartiot(env, "deploy", "create", "--firmware", "pump@1.1.0", "--group", "pump")
    deployment_id = created.split("created ")[1].split(":")[0]
    qtbot.waitUntil(lambda: deployments.model.row_of(deployment_id) is not None,
                    timeout=20_000)
    smartiot(env, "deploy", "cancel", deployment_id)

    def listed_status() -> str:
        row = deployments.model.row_of(deployment_id)
        return "" if row is None else deployments.model.row(row).deployment.status.value

    qtbot.waitUntil(lambda: listed_status() == "CANCELED", timeout=20_000)
    assert refreshes == []
