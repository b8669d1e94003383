"""The console on AWS when the laptop is offline, on the real sandbox
(`smartiot aws sandbox` as a subprocess) and the real window.

The console's profile reaches the sandbox's REST API and its AWS endpoint
(Cognito, the identity pool) through two TCP links the test cuts and
restores, as a laptop losing and finding its network:

- signed in and browsing fills the offline cache; the live link connects
  with the stage's IoT policy attached to the console's Cognito identity,
  and the status bar says "Connecting live data…" (never "Offline") until it
  is up;
- started again with both links cut, the console opens on the cached pages
  (no sign-in dialog) with the offline banner, and an acknowledgement is
  queued; when the links return it signs in by itself with the stored
  refresh token and the acknowledgement is applied exactly once;
- with no stored sign-in and no network, signing in says Cognito cannot be
  reached instead of hanging.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from PySide6.QtCore import Qt

from core import secrets
from core.config import load_config
from core.context import AppContext
from core.model import Alert, AlertState, Device, Severity
from core.plugins import PluginManager
from plugins.aws.cognito.signin import CognitoPool
from plugins.aws.console_access.launch import LaunchedSandbox
from plugins.aws.console_access.session import CognitoSession, refresh_secret_name
from plugins.aws.live.feed import IotLiveFeed
from tests.integration.aws.dropping_link import DroppingLink

pytestmark = pytest.mark.gui
WAIT = 30_000
ORGANIZATION = "demo"


@dataclass
class Offline:
    info: dict[str, Any]
    home: Path
    api: DroppingLink  # the console's way to the REST API
    aws: DroppingLink  # ... and to Cognito and the identity pool

    def cut(self) -> None:
        self.api.cut()
        self.aws.cut()

    def restore(self) -> None:
        self.api.restore()
        self.aws.restore()

    @property
    def secret(self) -> str:
        return refresh_secret_name(CognitoPool(self.info["region"], self.info["user_pool_id"],
                                               self.info["user_pool_client_id"]))

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.info["region"],
                            endpoint_url=self.info["endpoint_url"],
                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")

    def user(self, role: str) -> dict[str, str]:
        return next(u for u in self.info["users"] if u["role"] == role)

    def context(self) -> AppContext:
        """A console whose aws profile names the sandbox's ids and reaches it
        only through the links (as a deployed stack's profile names its own)."""
        i = self.info
        path = self.home / "config" / "config.toml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            'profile = "aws-laptop"\n[profiles.aws-laptop]\n'
            f'api_url = "{self.api.url}"\nendpoint_url = "{self.aws.url}"\n'
            f'region = "{i["region"]}"\nstage = "{i["stage"]}"\n'
            f'user_pool_id = "{i["user_pool_id"]}"\n'
            f'user_pool_client_id = "{i["user_pool_client_id"]}"\n'
            f'identity_pool_id = "{i["identity_pool_id"]}"\n'
            f'iot_endpoint = "{i["mqtt_ws_url"]}"\n')
        config = load_config(path, self.home / "data", env={})
        return AppContext(config, PluginManager(entry_points=False, blocked=()))


def _port(url: str) -> int:
    return int(urlsplit(url).port or 0)


@pytest.fixture(scope="module")
def offline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Offline]:
    home = tmp_path_factory.mktemp("aws-offline")
    launched = LaunchedSandbox(home / "sandbox", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "2", "--rate", "1"))
    info = launched.start()
    api = DroppingLink(_port(info["api_url"]))
    aws = DroppingLink(_port(info["endpoint_url"]))
    try:
        yield Offline(info, home, api, aws)
    finally:
        api.close()
        aws.close()
        launched.stop()


@pytest.fixture(autouse=True)
def _nobody_signed_in(offline: Offline) -> Iterator[None]:
    secrets.delete_secret(offline.secret)
    yield
    offline.restore()  # after a test that failed while the links were cut
    secrets.delete_secret(offline.secret)


def _window(context: AppContext, qtbot: Any) -> Any:
    from console.app import build_main_window

    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    return window


def _sign_in(window: Any, qtbot: Any, user: dict[str, str]) -> None:
    qtbot.waitUntil(lambda: window.sign_in.dialog is not None
                    and window.sign_in.dialog.isVisible(), timeout=WAIT)
    dialog = window.sign_in.dialog
    dialog.username.setText(user["username"])
    dialog.password.setText(user["password"])
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=WAIT)


def _alerts(window: Any, qtbot: Any, alert_id: str) -> Any:
    window.show_page("alerts")
    page = window.page_widget("alerts")

    def shown() -> bool:
        return any(page.model.alert_at(r).alert_id == alert_id
                   for r in range(page.model.rowCount()))

    qtbot.waitUntil(shown, timeout=WAIT)
    return page


def _devices(window: Any, qtbot: Any) -> Any:
    window.show_page("devices")
    page = window.page_widget("devices")
    qtbot.waitUntil(lambda: any(r.device.device_id == "laptop-pump"
                                for r in page.model.rows()), timeout=WAIT)
    return page


def test_started_offline_the_console_shows_its_cache_queues_and_applies_once_back(
        offline: Offline, qtbot: Any) -> None:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.settings import AwsSettings

    info = offline.info
    aws = build_aws_backend_for(AwsSettings(region=info["region"], stage=info["stage"],
                                            endpoint_url=info["endpoint_url"]))
    aws.registry.upsert_many([Device("laptop-pump", device_type="pump",
                                     organization=ORGANIZATION)])
    alert = Alert("laptop-pump", "rule-high", Severity.WARNING, "pressure high", 9.5)
    aws.alerts.add(alert)
    support = offline.user("support")

    # ---- online: sign in and browse (this fills the offline cache)
    context = offline.context()
    window = _window(context, qtbot)
    _sign_in(window, qtbot, support)
    status = window.status_widgets["local.hub"]
    texts = [status.texts()["connection"]]
    feed = context.backend.live
    assert isinstance(feed, IotLiveFeed)
    while not feed.subscribed.is_set():
        qtbot.wait(50)
        if texts[-1] != status.texts()["connection"]:
            texts.append(status.texts()["connection"])
        assert len(texts) < 10, texts
    qtbot.waitUntil(lambda: "Broker connected" in status.texts()["connection"], timeout=5_000)
    # From the sign-in to the first connection the feed only starts: no failure,
    # no "Offline" (it took 12 s and more on a loaded machine, said as "Offline")
    assert feed.states == ["starting", "connected"], feed.states
    assert not any("Offline" in t for t in texts), texts
    # connected may show a moment before the subscription is acknowledged
    assert all("Connecting live data" in t or "Broker connected" in t for t in texts), texts
    assert "Connecting live data" in texts[0], texts
    # the console's Cognito identity got the stage's IoT policy through the API
    identity = feed._credentials.identity_id  # type: ignore[attr-defined]
    iot = offline.client("iot")
    policy = f"iot-console-{info['stage']}"
    assert identity in iot.list_targets_for_policy(policyName=policy)["targets"]
    assert [p["policyName"] for p in iot.list_attached_policies(target=identity)["policies"]
            ] == [policy]

    _devices(window, qtbot)
    _alerts(window, qtbot, alert.alert_id)
    assert secrets.get_secret(offline.secret)  # the refresh token stays for the next start
    window.close()
    context.close()

    # ---- the laptop loses its network; the console is started again
    offline.cut()
    context = offline.context()
    window = _window(context, qtbot)
    qtbot.waitUntil(lambda: window.sidebar.isEnabled(), timeout=WAIT)
    assert window.sign_in.dialog is None or not window.sign_in.dialog.isVisible()
    assert context.actor.user == support["username"]
    banner = window.offline_banner
    qtbot.waitUntil(lambda: banner.isVisible()
                    and banner.text().startswith("Offline — showing data from "),
                    timeout=10_000)
    _devices(window, qtbot)
    page = _alerts(window, qtbot, alert.alert_id)
    page.select_alerts([alert.alert_id])
    page.acknowledge_selected(comment="from the van")
    qtbot.waitUntil(lambda: "queued" in page.message.text(), timeout=WAIT)
    work = window.offline_work
    assert work.status().pending == 1
    # the live link waits for the network too, with backoff: not a sign-in problem
    feed = context.backend.live
    assert isinstance(feed, IotLiveFeed)
    qtbot.waitUntil(lambda: feed.link_status().state == "reconnecting", timeout=WAIT)
    assert "expired" not in feed.states
    provider = context.remote.provider  # type: ignore[union-attr]
    assert isinstance(provider, CognitoSession) and provider.offline
    assert aws.alerts.get(alert.alert_id).state is AlertState.ACTIVE

    # ---- the network is back: signed in by itself, the queued ack sent once
    offline.restore()
    qtbot.waitUntil(lambda: work.status().pending == 0, timeout=90_000)
    assert work.status().needs_decision == 0
    stored = aws.alerts.get(alert.alert_id)
    assert stored.state is AlertState.ACKNOWLEDGED
    assert stored.version == alert.version + 1  # applied exactly once
    assert stored.acknowledged_by == support["username"]
    assert stored.ack_comment == "from the van"
    kinds = [e.kind.value for e in aws.alerts.history(alert.alert_id)]
    assert kinds.count("acknowledged") == 1, kinds
    assert provider.silent_sign_ins == 1 and not provider.offline
    qtbot.waitUntil(lambda: not banner.isVisible(), timeout=WAIT)
    qtbot.waitUntil(feed.subscribed.is_set, timeout=60_000)
    window.close()
    context.close()


def test_without_a_stored_sign_in_and_no_network_signing_in_says_so(
        offline: Offline, qtbot: Any) -> None:
    offline.cut()
    context = offline.context()
    window = _window(context, qtbot)
    qtbot.waitUntil(lambda: window.sign_in.dialog is not None
                    and window.sign_in.dialog.isVisible(), timeout=WAIT)
    assert not window.sidebar.isEnabled()
    dialog = window.sign_in.dialog
    user = offline.user("technician")
    dialog.username.setText(user["username"])
    dialog.password.setText(user["password"])
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled(), timeout=WAIT)
    assert "could not reach" in dialog.error.text() and "network" in dialog.error.text()
    assert dialog.isVisible() and not window.sidebar.isEnabled()
    offline.restore()
    window.close()
    context.close()
