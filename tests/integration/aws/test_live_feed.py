"""The console's live data on AWS, on real parts: moto's server (the user
pool signs the person in with SRP, the identity pool hands out temporary
credentials), the sandbox's IoT Core stand-in (amqtt: a TCP listener for
devices, a WebSocket listener for consoles) and the project's simulator
publishing as devices do. The feed (plugins/aws/live) signs its WebSocket
URL with SigV4, subscribes to its organization's telemetry, status and alert
topics, reconnects with jittered backoff and renews its credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import paho.mqtt.client as mqtt
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from paho.mqtt.enums import CallbackAPIVersion

from core.model.alert import Alert, Severity
from core.model.events import (
    AlertChanged,
    DataChanged,
    FleetEvent,
    HubStatus,
    TelemetryReceived,
)
from core.model.roles import Role
from core.ports.notifications import AlertNotification, NotificationKind, NotifiedAlert
from core.protocol.payloads import Telemetry
from core.services.accounts import SignInFailed
from plugins.aws.cognito.signin import Tokens
from plugins.aws.live.backoff import Backoff
from plugins.aws.live.credentials import IdentityPoolCredentials
from plugins.aws.live.feed import IotLiveFeed
from plugins.aws.live.presign import TemporaryCredentials, parse_endpoint, presigned_url
from plugins.aws.notifications.queue import encode
from plugins.aws.sandbox.fleet import start_demo_fleet
from plugins.aws.sandbox.mqtt import IotCoreStandIn
from simulator.api import RunningFleet
from tests.integration.aws.cognito_pool import PASSWORD, CognitoStage

ORG = "demo"  # the sandbox fleet's organization (plugins/aws/sandbox/fleet.py)


def wait_until(what: str, condition: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Events:
    """Everything the feed delivers, in order, from its network thread."""

    def __init__(self) -> None:
        self.items: list[FleetEvent] = []
        self._lock = threading.Lock()

    def __call__(self, batch: list[FleetEvent]) -> None:
        with self._lock:
            self.items.extend(batch)

    def of(self, kind: type[Any]) -> list[Any]:
        with self._lock:
            return [e for e in self.items if isinstance(e, kind)]


@dataclass
class LiveStage:
    cognito: CognitoStage
    identity_pool_id: str
    broker: IotCoreStandIn
    tokens: Tokens

    def credentials(self, id_token: Callable[[], str] | None = None) -> IdentityPoolCredentials:
        s = self.cognito.settings
        return IdentityPoolCredentials(
            self.identity_pool_id, s.region, s.user_pool_id,
            id_token or (lambda: self.tokens.id_token), endpoint_url=s.endpoint_url)

    def feed(self, credentials: Any = None, **options: Any) -> IotLiveFeed:
        return IotLiveFeed(self.broker.ws_url, self.cognito.settings.region,
                           credentials or self.credentials(), organization=lambda: ORG,
                           find_device=lambda _device: None, **options)


@pytest.fixture
def live(cognito: CognitoStage) -> Iterator[LiveStage]:
    """A technician of organization demo signed in; the stage's identity pool
    trusts the user pool (as the sandbox and serverless.yml make it)."""
    cognito.add("dana", Role.TECHNICIAN, ORG)
    result = cognito.sign_in().sign_in("dana", PASSWORD)
    assert isinstance(result, Tokens)
    s = cognito.settings
    identity_pool_id = cognito.aws.client("cognito-identity").create_identity_pool(
        IdentityPoolName=f"iot_console_{s.stage}", AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{
            "ProviderName": f"cognito-idp.{s.region}.amazonaws.com/{s.user_pool_id}",
            "ClientId": s.user_pool_client_id, "ServerSideTokenCheck": False}],
    )["IdentityPoolId"]
    broker = IotCoreStandIn().start()
    try:
        yield LiveStage(cognito, identity_pool_id, broker, result)
    finally:
        broker.stop()


@pytest.fixture
def fleet(live: LiveStage) -> Iterator[RunningFleet]:
    running = start_demo_fleet(live.broker.mqtt_url, 2, 5.0)
    yield running
    running.stop()


def device_client(broker: IotCoreStandIn, name: str) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name)
    client.connect(broker.host, broker.mqtt_port)
    client.loop_start()
    return client


def alert_message(alert: Alert, organization: str, kind: NotificationKind) -> bytes:
    """What the stream consumer publishes on smartiot/{org}/alerts (alert_feed.py)."""
    return encode(AlertNotification(kind, NotifiedAlert.from_alert(alert, organization),
                                    datetime.now(UTC))).encode()


# ---------------------------------------------------------------- the URL

def test_the_presigned_url_is_iot_cores_and_its_signature_verifies(live: LiveStage) -> None:
    """Recomputed with botocore's SigV4 from the URL's own parameters: the
    canonical request is GET /mqtt with the host header and the X-Amz-*
    parameters except the signature and the session token (IoT Core adds the
    token after signing), for the service iotdevicegateway."""
    credentials = live.credentials().get()
    assert credentials.session_token and credentials.identity_id  # moto's identity pool
    assert credentials.expires_at > time.time()
    endpoint = parse_endpoint("a1b2c3d4e5-ats.iot.eu-west-1.amazonaws.com")
    url = presigned_url(endpoint, "eu-west-1", credentials)

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "wss", "a1b2c3d4e5-ats.iot.eu-west-1.amazonaws.com", "/mqtt")
    query = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    params = dict(query)
    assert [k for k, _ in query][-1] == "X-Amz-Security-Token"  # appended after signing
    assert params["X-Amz-Security-Token"] == credentials.session_token
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    date = params["X-Amz-Date"]
    assert datetime.strptime(date, "%Y%m%dT%H%M%SZ")
    assert params["X-Amz-Credential"] == (
        f"{credentials.access_key}/{date[:8]}/eu-west-1/iotdevicegateway/aws4_request")
    assert params["X-Amz-SignedHeaders"] == "host"
    assert 0 < int(params["X-Amz-Expires"]) <= 7 * 24 * 3600

    def signature(secret: str) -> str:
        signed = {k: v for k, v in params.items()
                  if k not in ("X-Amz-Signature", "X-Amz-Security-Token")}
        request = AWSRequest(method="GET", url=f"https://{parts.netloc}/mqtt", params=signed)
        request.context["timestamp"] = date
        prepared = request.prepare()
        request.url = prepared.url
        request.params = {}
        signer = SigV4Auth(Credentials(credentials.access_key, secret),
                           "iotdevicegateway", "eu-west-1")
        canonical = signer.canonical_request(request)
        assert canonical.startswith("GET\n/mqtt\n")
        assert "X-Amz-Security-Token" not in canonical and "X-Amz-Signature" not in canonical
        return str(signer.signature(signer.string_to_sign(request, canonical), request))

    assert params["X-Amz-Signature"] == signature(credentials.secret_key)
    assert params["X-Amz-Signature"] != signature(credentials.secret_key + "x")
    # The sandbox's stand-in gets the same URL, signed for its own host and port.
    local = presigned_url(parse_endpoint(live.broker.ws_url), "eu-west-1", credentials)
    assert local.startswith(f"ws://127.0.0.1:{live.broker.ws_port}/mqtt?X-Amz-Algorithm=")


# ---------------------------------------------------------------- events

def test_the_console_receives_its_organizations_telemetry_and_alerts_over_websocket(
        live: LiveStage, fleet: RunningFleet) -> None:
    events = Events()
    feed = live.feed()
    feed.subscribe(events)
    feed.start()
    other = device_client(live.broker, "other-device")
    publisher = device_client(live.broker, "alert-feed")
    try:
        wait_until("the feed subscribed", feed.subscribed.is_set)
        assert feed.link_status().state == "connected"
        assert feed.connection_state() == "connected"
        assert "X-Amz-Security-Token=" in feed.last_url
        # its MQTT client id is the person's Cognito identity and a suffix of this
        # console (the policies' client/${cognito-identity.amazonaws.com:sub}-*)
        credentials = live.credentials().get()
        client_id = feed.client_id(credentials)
        assert client_id.startswith(credentials.identity_id + "-")
        assert len(client_id.encode()) <= 128 and client_id != live.feed().client_id(credentials)
        readings = wait_until("telemetry of both simulated devices", lambda: (
            {e.device_id for e in events.of(TelemetryReceived)} >= set(fleet.device_ids)
            and events.of(TelemetryReceived)))
        first = readings[0]
        assert first.readings and first.seq is not None
        assert all(r.device_id == first.device_id for r in first.readings)

        raised = Alert(fleet.device_ids[0], "temp-high", Severity.CRITICAL, "too hot", 81.5)
        publisher.publish(f"smartiot/{ORG}/alerts",
                          alert_message(raised, ORG, NotificationKind.RAISED), qos=1)
        # another organization's telemetry and alerts never reach this console
        other.publish("dt/other/pump-9/telemetry",
                      Telemetry("pump-9", 1, int(time.time() * 1000), {"t": 1.0}).encode())
        foreign = Alert("pump-9", "temp-high", Severity.WARNING, "elsewhere")
        other.publish("smartiot/other/alerts",
                      alert_message(foreign, "other", NotificationKind.RAISED), qos=1)
        resolved = replace(raised, resolved_at=datetime.now(UTC))
        publisher.publish(f"smartiot/{ORG}/alerts",
                          alert_message(resolved, ORG, NotificationKind.RESOLVED), qos=1)
        changes = wait_until("the raised and resolved alert", lambda: (
            len(events.of(AlertChanged)) >= 2 and events.of(AlertChanged)))
        assert [(c.alert.alert_id, c.change) for c in changes] == [
            (raised.alert_id, "raised"), (raised.alert_id, "resolved")]
        assert changes[0].alert.severity is Severity.CRITICAL
        assert changes[0].alert.message == "too hot"
        assert any(isinstance(e, DataChanged) and e.topic == "alerts" for e in events.items)
        time.sleep(0.5)  # the foreign messages were published before the resolved one
        assert not [e for e in events.of(TelemetryReceived) if e.device_id == "pump-9"]
        assert all(c.alert.device_id != "pump-9" for c in events.of(AlertChanged))
        assert feed.decoder is not None and feed.decoder.skipped == 0  # never even sent
        # the status bar's rate: what this console receives, once a second. A
        # second may hold only alerts or statuses (messages, no readings), so the
        # first rate with readings is the one asked for.
        rates = wait_until("a rate of readings", lambda: [
            h for h in events.of(HubStatus) if h.readings_per_s > 0])
        assert rates[0].connection == "connected" and rates[0].messages_per_s > 0
    finally:
        feed.stop()
        for client in (other, publisher):
            client.disconnect()
            client.loop_stop()
    assert feed.connection_state() == "disconnected"


def test_a_devices_status_message_becomes_its_record_with_the_new_status(
        live: LiveStage, fleet: RunningFleet) -> None:
    """Status messages (retained, with the Last Will) carry no record: the feed
    looks the device up (through the API in the console) and changes its status."""
    from core.model import Device, DeviceStatus
    from core.model.events import DeviceChanged

    records = {d: Device(d, device_type="environmental", organization=ORG,
                         status=DeviceStatus.OFFLINE) for d in fleet.device_ids}
    looked_up: list[str] = []

    def find(device_id: str) -> Device | None:
        looked_up.append(device_id)
        return records.get(device_id)

    events = Events()
    feed = IotLiveFeed(live.broker.ws_url, live.cognito.settings.region, live.credentials(),
                       organization=lambda: ORG, find_device=find)
    feed.subscribe(events)
    feed.start()
    try:
        changed = wait_until("every device online", lambda: (
            {e.device.device_id for e in events.of(DeviceChanged)} >= set(fleet.device_ids)
            and events.of(DeviceChanged)))
    finally:
        feed.stop()
    assert all(e.device.status is DeviceStatus.ONLINE for e in changed)
    assert all(e.device.device_type == "environmental" for e in changed)  # the looked-up record
    assert set(looked_up) <= set(fleet.device_ids)


def test_a_message_it_cannot_read_is_counted_and_skipped(live: LiveStage) -> None:
    events = Events()
    feed = live.feed()
    feed.subscribe(events)
    feed.start()
    device = device_client(live.broker, "pump-1")
    try:
        wait_until("the feed subscribed", feed.subscribed.is_set)
        device.publish(f"dt/{ORG}/pump-1/telemetry", b"not json", qos=1)
        device.publish(f"smartiot/{ORG}/alerts", b'{"kind": "alert.raised"}', qos=1)
        good_payload = Telemetry("pump-1", 7, int(time.time() * 1000), {"temp": 21.5}).encode()
        device.publish(f"dt/{ORG}/pump-1/telemetry", good_payload, qos=1)
        good = wait_until("the good reading", lambda: events.of(TelemetryReceived))
        assert good[0].seq == 7 and good[0].readings[0].value == 21.5
        assert feed.decoder is not None
        wait_until("both bad messages counted", lambda: feed.decoder and
                   feed.decoder.skipped == 2)
        assert feed.link_status().state == "connected"  # a bad message is no reason to drop
    finally:
        feed.stop()
        device.disconnect()
        device.loop_stop()


def test_while_connected_pages_reload_alerts_that_people_changed_through_the_api(
        live: LiveStage) -> None:
    """Acknowledgements and snoozes go through the API and reach IoT Core from
    nobody, so the feed asks pages to reload alerts every alert_sync_s."""
    events = Events()
    feed = live.feed(alert_sync_s=0.5)
    feed.subscribe(events)
    feed.start()
    try:
        wait_until("the feed subscribed", feed.subscribed.is_set)
        started = time.monotonic()
        wait_until("two alert reloads", lambda: len(events.of(DataChanged)) >= 2, timeout_s=5)
        assert time.monotonic() - started >= 0.5  # paced, not a storm
    finally:
        feed.stop()
    assert {e.topic for e in events.of(DataChanged)} == {"alerts"}


# ---------------------------------------------------------------- the link

def test_it_reconnects_after_the_broker_restarts_with_growing_jittered_delays(
        live: LiveStage, fleet: RunningFleet) -> None:
    events = Events()
    feed = live.feed(backoff=Backoff(base_s=0.2, cap_s=1.6), stable_s=0.5)
    feed.subscribe(events)
    feed.start()
    wait_until("the feed subscribed", feed.subscribed.is_set)
    wait_until("telemetry", lambda: events.of(TelemetryReceived))
    try:
        live.broker.stop()
        status = wait_until("the feed to notice", lambda: (
            feed.link_status().state == "reconnecting" and feed.link_status()))
        assert status.retry_at is not None and status.retry_at > time.time() - 1
        assert feed.connection_state() == "disconnected"
        outage_s = 3.0
        time.sleep(outage_s)  # the broker stays down this long
        attempts_during_outage = feed.attempts
        delays = list(feed.delays)
        live.broker = IotCoreStandIn(mqtt_port=live.broker.mqtt_port,
                                     ws_port=live.broker.ws_port).start()
        wait_until("the feed back", lambda: feed.connections == 2, timeout_s=10)
        received_before = len(events.of(TelemetryReceived))
        wait_until("telemetry after the restart", lambda: (
            len(events.of(TelemetryReceived)) > received_before), timeout_s=30)
        # up for stable_s: the next outage starts again at 0.1-0.2 s
        wait_until("the backoff to start over", lambda: feed.backoff.attempt == 0)
    finally:
        feed.stop()
    # No storm: 1 connection + about log2(3 s / 0.1 s) attempts, not one per loop turn.
    assert 2 <= attempts_during_outage <= 7, attempts_during_outage
    ceilings = [min(1.6, 0.2 * 2 ** i) for i in range(len(delays))]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert len({round(d / c, 3) for d, c in zip(delays, ceilings, strict=True)}) > 1  # jittered
    # One reload of devices and alerts for what was published while it was down.
    resyncs = [e for e in events.items if isinstance(e, DataChanged)]
    assert sorted(e.topic for e in resyncs) == ["alerts", "devices"]


def test_credentials_are_renewed_before_they_expire_and_the_feed_reconnects_with_them(
        live: LiveStage, fleet: RunningFleet) -> None:
    """moto's identity pool hands out credentials for 90 s; this source reports
    them as lasting 1.5 s, so the renewal (at a third of their life before
    expiry) happens within the test."""
    source = live.credentials()
    handed: list[TemporaryCredentials] = []

    class ShortLived:
        def get(self) -> TemporaryCredentials:
            c = replace(source.get(), expires_at=time.time() + 1.5)
            handed.append(c)
            return c

    events = Events()
    feed = live.feed(ShortLived())
    feed.subscribe(events)
    urls: list[str] = []

    def renewed_twice() -> bool:
        urls.append(feed.last_url)
        return feed.refreshes >= 2

    feed.start()
    try:
        wait_until("two renewals", renewed_twice, timeout_s=15)
        wait_until("subscribed after the renewal", feed.subscribed.is_set)
        count = len(events.of(TelemetryReceived))
        wait_until("telemetry on the renewed link", lambda: (
            len(events.of(TelemetryReceived)) > count))
    finally:
        feed.stop()
    assert source.fetched == len(handed) >= 3
    assert feed.attempts == feed.refreshes + 1 and not feed.delays  # renewals wait for nothing
    # every connection signed afresh with the credentials it was handed
    assert len({u for u in urls if u}) >= 3


def test_without_a_sign_in_the_link_says_so_and_comes_back_once_signed_in(
        live: LiveStage) -> None:
    signed_in = threading.Event()

    def id_token() -> str:
        if not signed_in.is_set():
            raise SignInFailed("not signed in: sign in again")
        return live.tokens.id_token

    feed = live.feed(live.credentials(id_token), signin_poll_s=0.2)
    feed.start()
    try:
        status = wait_until("the expired state", lambda: (
            feed.link_status().state == "expired" and feed.link_status()))
        assert "sign in" in status.detail
        assert feed.attempts == 0  # nothing is sent without credentials
        signed_in.set()
        wait_until("the feed subscribed", feed.subscribed.is_set)
    finally:
        feed.stop()
    assert feed.delays == []  # waiting for a sign-in is not a backoff


def test_a_wrong_or_missing_endpoint_is_named() -> None:
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="iot_endpoint"):
        parse_endpoint("")
    with pytest.raises(ConfigError, match="mqtt://x"):
        parse_endpoint("mqtt://x")
    assert parse_endpoint("abc-ats.iot.eu-west-1.amazonaws.com").port == 443


def test_the_identity_pool_calls_leave_no_token_or_key_in_the_debug_log(
        live: LiveStage, caplog: pytest.LogCaptureFixture) -> None:
    """botocore logs each request's parameters and each answer at DEBUG: GetId's
    and GetCredentialsForIdentity's carry the ID token (as the login) and the
    temporary keys. The console's log filter (console_access/redaction.py,
    installed with the sign-in) leaves them out."""
    import logging

    from plugins.aws.console_access import redaction

    redaction.install()
    with caplog.at_level(logging.DEBUG):
        credentials = live.credentials().get()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "GetCredentialsForIdentity" in text or "get_credentials_for_identity" in text.lower()
    for secret in (live.tokens.id_token, credentials.secret_key, credentials.session_token):
        assert secret not in text
