"""Live data in the console on the AWS sandbox: `smartiot aws sandbox` as a
subprocess (every port free-chosen, three simulated devices publishing), the
console opened on the aws-local profile and signed in through the real
sign-in dialog. The devices page and a device's live chart then move with
telemetry that reaches the console over MQTT-over-WebSocket (the URL SigV4-
signed with the identity pool's credentials), and the status bar shows the
link; stopping the feed's broker link shows the countdown to the next try.

Set SMARTIOT_SCREENSHOTS=1 under xvfb-run to write
docs/screenshots/aws-live-data.png."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from core import secrets
from core.config import load_config
from core.context import AppContext
from core.plugins import PluginManager
from plugins.aws.console_access.launch import LaunchedSandbox
from plugins.aws.live.feed import IotLiveFeed

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "aws-live-data.png"


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], Path]]:
    home = tmp_path_factory.mktemp("aws-live")
    launched = LaunchedSandbox(home / "data", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "3", "--rate", "2"))
    info = launched.start()
    try:
        yield info, home
    finally:
        launched.stop()


@pytest.fixture
def window(sandbox: tuple[dict[str, Any], Path], qtbot: Any) -> Iterator[Any]:
    from console.app import build_main_window
    from plugins.aws.cognito.signin import CognitoPool
    from plugins.aws.console_access.session import refresh_secret_name

    info, home = sandbox
    name = refresh_secret_name(CognitoPool(info["region"], info["user_pool_id"],
                                           info["user_pool_client_id"]))
    secrets.delete_secret(name)
    config = load_config(home / "config" / "config.toml", home / "data",
                         env={"SMARTIOT_PROFILE": "aws-local"})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    win: Any = build_main_window(context)
    qtbot.addWidget(win)
    win.resize(1400, 860)
    win.show()
    qtbot.waitUntil(lambda: win.sign_in.dialog is not None and win.sign_in.dialog.isVisible(),
                    timeout=20_000)
    dialog = win.sign_in.dialog
    user = next(u for u in info["users"] if u["role"] == "technician")
    dialog.username.setText(user["username"])
    dialog.password.setText(user["password"])
    dialog.submit()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)
    try:
        yield win
    finally:
        win.close()
        context.close()
        secrets.delete_secret(name)


def test_the_devices_page_and_a_live_chart_move_with_telemetry_over_websocket(
        window: Any, sandbox: tuple[dict[str, Any], Path], qtbot: Any) -> None:
    info, _home = sandbox
    feed = window.context.backend.live
    assert isinstance(feed, IotLiveFeed)  # the aws profile's feed, not a poller
    qtbot.waitUntil(feed.subscribed.is_set, timeout=20_000)
    # one code path for AWS and the sandbox: the stand-in's WebSocket, URL presigned
    assert feed.last_url.startswith(f"{info['mqtt_ws_url']}?X-Amz-Algorithm=AWS4-HMAC-SHA256")
    assert "&X-Amz-Security-Token=" in feed.last_url

    window.show_page("devices")
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 3, timeout=20_000)
    loaded = {r.device.device_id: r.last_seen_s or 0.0 for r in devices.model.rows()}
    received = feed.received
    # rows take each reading from the feed as it arrives: "last seen" moves on
    qtbot.waitUntil(lambda: all((r.last_seen_s or 0.0) > loaded[r.device.device_id]
                                for r in devices.model.rows()), timeout=20_000)
    assert feed.received > received

    devices.open_detail(0)
    detail = devices.detail
    overview = detail.overview
    qtbot.waitUntil(lambda: bool(overview._value_rows), timeout=20_000)

    def points() -> int:
        return sum(row.spark.point_count() for row in overview._value_rows.values())

    before = points()
    qtbot.waitUntil(lambda: points() >= before + 3, timeout=20_000)  # the live chart grows

    status = window.status_widgets["local.hub"]
    qtbot.waitUntil(lambda: "Broker connected" in status.texts()["connection"], timeout=5_000)
    # the rate of what this console receives over the link
    qtbot.waitUntil(lambda: status.texts()["rate"] != "— msg/s", timeout=5_000)
    assert "readings/s" in status.texts()["rate"]
    if os.environ.get("SMARTIOT_SCREENSHOTS"):
        qtbot.wait(1500)
        window.grab().save(str(SCREENSHOT))


def test_the_status_bar_counts_down_to_the_next_attempt_while_the_link_is_down(
        window: Any, qtbot: Any) -> None:
    """The broker is the sandbox's own; the feed is pointed at a closed port
    instead, as a cut network looks to it."""
    from plugins.aws.live.backoff import Backoff
    from plugins.aws.live.presign import parse_endpoint

    feed = window.context.backend.live
    assert isinstance(feed, IotLiveFeed)
    qtbot.waitUntil(feed.subscribed.is_set, timeout=20_000)
    status = window.status_widgets["local.hub"]
    feed.stop()
    feed.endpoint = parse_endpoint("ws://127.0.0.1:9/mqtt")  # discard port: refused
    feed.backoff = Backoff(base_s=8.0, cap_s=16.0)
    feed._stop.clear()
    feed.start()
    qtbot.waitUntil(lambda: "Reconnecting in" in status.texts()["connection"], timeout=10_000)
    text = status.texts()["connection"]
    seconds = int(text.split("Reconnecting in ")[1].split(" s")[0])
    assert 1 <= seconds <= 8
    assert "127.0.0.1:9" in status.connection_label.toolTip()
    if os.environ.get("SMARTIOT_SCREENSHOTS"):
        qtbot.wait(300)  # the label's new width is laid out on the next event turn
        window.statusBar().grab().save(str(SCREENSHOT.with_name("aws-live-reconnecting.png")))
