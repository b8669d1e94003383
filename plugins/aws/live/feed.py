"""The console's live feed on AWS: one MQTT-over-WebSocket connection to IoT
Core (or the sandbox's stand-in), the URL presigned with SigV4 from the
identity pool's temporary credentials.

Why the feed runs its own connection loop rather than paho's automatic
reconnect: every connection needs a URL signed with credentials that are
still valid, so each attempt first gets credentials and signs afresh; and the
delay between attempts is jittered (paho's is not), so consoles that lost the
link together do not return together.

One thread does everything, in order: credentials, sign, connect, subscribe
to the organization's three filters (plugins/aws/live/decode.py), then
``loop()`` until the link is lost, the credentials are due for renewal or the
feed stops. Events are published on that thread; the console's bridge moves
them to the GUI thread.

- **Lost link**: the next attempt after ``Backoff.next_delay()`` (1 s, 2 s,
  4 s … up to 60 s, each jittered); the backoff starts over only after a
  connection stayed up ``stable_s``, so a broker that accepts and drops at
  once is not hammered. After every reconnection the pages are told to reload
  (``DataChanged`` devices and alerts): what was published meanwhile was not
  received (clean session, QoS 0 telemetry).
- **Credentials**: renewed ``refresh_margin`` before they expire (at most
  5 min, at most a third of their life); the new ones are fetched while the
  old connection still runs, then the feed reconnects at once with them
  (a connection is only as good as the credentials it was signed with).
- **Changes people make through the API** (acknowledge, snooze, resolve by
  hand) are not published to IoT Core (only the stream consumer's raised and
  resolved alerts are), so while connected the feed tells pages to reload
  alerts every ``alert_sync_s`` (``DataChanged(alerts)``: one list request of
  the alerts page), instead of the 5 s poll a page without a feed runs.
- **Rates**: once a second while connected, a ``HubStatus`` with the messages
  and readings per second this console received (the status bar's "msg/s").
- **Sign-in needed** (nobody signed in, or Cognito refuses the token): state
  ``expired``; the feed asks again every ``signin_poll_s``, and at once when
  the session says someone signed in (``wake``), so signing in in the dialog
  brings the link back by itself.
- **Until the first connection** the state is ``starting`` (the status bar's
  "Connecting live data…", with the step in its detail: credentials, then the
  WebSocket), not "offline": nothing has failed yet. Each state the feed
  passes through is kept in ``states`` (the log and the tests read it).
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.model.events import DataChanged, FleetEvent, HubStatus, TelemetryReceived
from core.ports import changes
from core.ports.live import LinkStatus, LiveFeed, Subscriber
from core.services.event_bus import EventBus
from plugins.aws.live.backoff import Backoff
from plugins.aws.live.credentials import CredentialsUnavailable, SignInNeeded
from plugins.aws.live.decode import DeviceLookup, LiveDecoder, live_filters
from plugins.aws.live.presign import (
    TemporaryCredentials,
    parse_endpoint,
    path_of,
    presigned_url,
)

log = logging.getLogger(__name__)

KEEPALIVE_S = 30  # IoT Core allows 30-1200 s
REFRESH_MARGIN_S = 300.0
STABLE_S = 10.0
SIGNIN_POLL_S = 5.0
ALERT_SYNC_S = 30.0
RATE_S = 1.0
CONNECT_TIMEOUT_S = 10.0


class CredentialSource(Protocol):
    def get(self) -> TemporaryCredentials: ...


def refresh_margin(credentials: TemporaryCredentials, now: float,
                   margin_s: float = REFRESH_MARGIN_S) -> float:
    """How long before expiry to renew: ``margin_s``, but at most a third of
    the credentials' remaining life (moto's last 90 s, IoT Core's an hour)."""
    return min(margin_s, max(0.0, credentials.expires_at - now) / 3)


class IotLiveFeed(LiveFeed):
    def __init__(self, endpoint: str, region: str, credentials: CredentialSource, *,
                 organization: Callable[[], str], find_device: DeviceLookup,
                 backoff: Backoff | None = None, refresh_margin_s: float = REFRESH_MARGIN_S,
                 stable_s: float = STABLE_S, signin_poll_s: float = SIGNIN_POLL_S,
                 alert_sync_s: float = ALERT_SYNC_S) -> None:
        self.endpoint = parse_endpoint(endpoint)
        self.region = region
        self._credentials = credentials
        self._organization = organization
        self._find_device = find_device
        self.backoff = backoff or Backoff()
        self.refresh_margin_s = refresh_margin_s
        self.stable_s = stable_s
        self.signin_poll_s = signin_poll_s
        self.alert_sync_s = alert_sync_s
        self._console_id = uuid.uuid4().hex[:12]
        self._bus = EventBus()
        self._status = LinkStatus("starting", None, "waiting for the sign-in")
        self.states: list[str] = ["starting"]  # every state passed through, in order
        self._stop = threading.Event()
        self._wake = threading.Event()  # a sign-in: ask for credentials now
        self._thread: threading.Thread | None = None
        self.decoder: LiveDecoder | None = None
        # what happened, for tests and the log
        self.connections = 0  # subscribed connections
        self.attempts = 0  # connection attempts
        self.delays: list[float] = []  # backoff delays waited
        self.refreshes = 0  # reconnections with renewed credentials
        self.received = 0
        self._window = [0, 0]  # messages, readings since the last HubStatus
        self.last_url = ""
        self.subscribed = threading.Event()  # set while subscribed

    # ------------------------------------------------------------ LiveFeed
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        return self._bus.subscribe(callback)

    def connection_state(self) -> str:
        state = self._status.state
        if state == "starting":
            return "connecting"
        return state if state in ("connected", "connecting") else "disconnected"

    def wake(self) -> None:
        """Someone signed in: stop waiting (for a sign-in or a backoff) and try now."""
        self._wake.set()

    def link_status(self) -> LinkStatus:
        return self._status

    def client_id(self, credentials: TemporaryCredentials) -> str:
        """``<Cognito identity>-<this console>``: what the console role's and the
        IoT policy's ``client/${cognito-identity.amazonaws.com:sub}-*`` allow.
        IoT Core keeps one connection per client id, so the suffix (fixed for
        this feed's life) lets two consoles of one person both stay connected."""
        return f"{credentials.identity_id or 'console'}-{self._console_id}"

    # ------------------------------------------------------------ running
    def start(self) -> IotLiveFeed:
        self._wake.clear()  # a stop's wake-up is not for this run
        self._thread = threading.Thread(target=self._run, name="aws-live-feed", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=CONNECT_TIMEOUT_S + 5)
        self._set(LinkStatus("disconnected"))

    close = stop

    def _set(self, status: LinkStatus) -> None:
        if status != self._status:
            if status.state != self._status.state:
                log.info("live data: %s%s", status.state,
                         f" ({status.detail})" if status.detail else "")
                self.states.append(status.state)
                del self.states[:-100]
            self._status = status

    def _pause(self, seconds: float) -> None:
        """Wait ``seconds``, less when stopped or woken by a sign-in."""
        if self._wake.wait(seconds):
            self._wake.clear()

    def _run(self) -> None:
        credentials: TemporaryCredentials | None = None
        while not self._stop.is_set():
            if credentials is None:
                if self.connections == 0 and self._status.state != "reconnecting":
                    self._set(LinkStatus("starting", None, "asking for this console's live "
                                         "data credentials"))
                try:
                    credentials = self._credentials.get()
                except SignInNeeded as exc:
                    self._set(LinkStatus("expired", None, str(exc)))
                    self._pause(self.signin_poll_s)
                    continue
                except CredentialsUnavailable as exc:
                    self._wait_backoff(str(exc))
                    continue
                except Exception as exc:  # the feed's thread outlives any one fault
                    log.exception("live data: getting credentials failed")
                    self._wait_backoff(f"{type(exc).__name__}: {exc}")
                    continue
            try:
                outcome, detail, renewed = self._session(credentials)
            except Exception as exc:
                log.exception("live data: the connection failed")
                outcome, detail, renewed = "lost", f"{type(exc).__name__}: {exc}", None
            credentials = renewed
            if outcome == "refresh":
                self.refreshes += 1
                continue  # at once, with the renewed credentials
            if outcome == "expired":
                self._set(LinkStatus("expired", None, detail))
                continue
            if not self._stop.is_set():
                self._wait_backoff(detail)

    def _wait_backoff(self, why: str) -> None:
        delay = self.backoff.next_delay()
        self.delays.append(delay)
        self._set(LinkStatus("reconnecting", time.time() + delay, why))
        self._pause(delay)

    def _session(self, credentials: TemporaryCredentials
                 ) -> tuple[str, str, TemporaryCredentials | None]:
        """One connection: ("lost" | "refresh" | "expired" | "stopped", why,
        credentials to use next (renewed ones, or None: fetch again))."""
        organization = self._organization()
        if not organization:
            return "expired", "the signed-in person has no organization: sign in again", None
        filters = live_filters(organization)
        decoder = self.decoder = LiveDecoder(organization, self._find_device)
        url = presigned_url(self.endpoint, self.region, credentials)
        self.last_url = url
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.client_id(credentials),
                             transport="websockets", clean_session=True)
        client.ws_set_options(path=path_of(url))
        if self.endpoint.scheme == "wss":
            client.tls_set_context(ssl.create_default_context())
        state: dict[str, Any] = {"refused": "", "subscribed": False}
        subscribe_mid: list[int] = []

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                state["refused"] = f"IoT Core refused the connection: {reason}"
                return
            mid = c.subscribe([(f, 1) for f in filters])[1]
            if mid is not None:
                subscribe_mid.append(mid)

        def on_subscribe(_c: mqtt.Client, _u: Any, mid: int, reasons: Any, _p: Any) -> None:
            refused = [f for f, r in zip(filters, reasons, strict=False)
                       if getattr(r, "is_failure", False)]
            if refused:
                state["refused"] = f"IoT Core refused the subscription to {', '.join(refused)}"
            elif mid in subscribe_mid:
                state["subscribed"] = True

        def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            self.received += 1
            events = decoder.decode(message.topic, bytes(message.payload))
            self._window[0] += 1
            self._window[1] += sum(len(e.readings) for e in events
                                   if isinstance(e, TelemetryReceived))
            if events:
                self._bus.publish(events)

        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect_timeout = CONNECT_TIMEOUT_S
        self.attempts += 1
        # the first connection is still the console starting its live data
        self._set(LinkStatus("starting" if self.connections == 0 else "connecting", None,
                             f"{self.endpoint.scheme}://{self.endpoint.netloc}/mqtt"))
        try:
            client.connect(self.endpoint.host, self.endpoint.port, keepalive=KEEPALIVE_S)
        except (OSError, mqtt.WebsocketConnectionError, ValueError) as exc:
            return "lost", f"could not connect to {self.endpoint.netloc}: {exc}", credentials
        renew_at = credentials.expires_at - refresh_margin(credentials, time.time(),
                                                          self.refresh_margin_s)
        up_since: float | None = None
        synced = rated = 0.0
        renewed: TemporaryCredentials | None = None
        try:
            while not self._stop.is_set():
                rc = client.loop(timeout=0.2)
                if state["refused"]:
                    return "lost", state["refused"], None
                if rc != mqtt.MQTT_ERR_SUCCESS:
                    return "lost", f"the link to {self.endpoint.netloc} was lost " \
                                   f"({mqtt.error_string(rc)})", credentials
                if state["subscribed"] and up_since is None:
                    up_since = synced = rated = time.monotonic()
                    self._window = [0, 0]
                    self._connected()
                if up_since is not None and time.monotonic() - rated >= RATE_S:
                    rated = self._publish_rates(rated)
                if up_since is not None and time.monotonic() - synced >= self.alert_sync_s:
                    synced = time.monotonic()
                    self._bus.publish([DataChanged(changes.ALERTS)])
                if up_since is not None and self.backoff.attempt and \
                        time.monotonic() - up_since >= self.stable_s:
                    self.backoff.reset()
                now = time.time()
                if now >= renew_at:
                    renewed, why = self._renew()
                    if renewed is not None:
                        return "refresh", "credentials renewed", renewed
                    if now >= credentials.expires_at:
                        return "expired", why, None
                    renew_at = now + min(5.0, max(0.5, (credentials.expires_at - now) / 4))
            return "stopped", "", None
        finally:
            self.subscribed.clear()
            with contextlib.suppress(Exception):  # closing a socket already gone
                client.disconnect()

    def _publish_rates(self, since: float) -> float:
        now = time.monotonic()
        messages, readings = self._window
        self._window = [0, 0]
        elapsed = max(now - since, 1e-6)
        self._bus.publish([HubStatus("connected", messages_per_s=messages / elapsed,
                                     readings_per_s=readings / elapsed)])
        return now

    def _renew(self) -> tuple[TemporaryCredentials | None, str]:
        try:
            return self._credentials.get(), ""
        except (SignInNeeded, CredentialsUnavailable) as exc:
            log.info("live data: could not renew the credentials yet: %s", exc)
            return None, str(exc)

    def _connected(self) -> None:
        self._wake.clear()  # a sign-in noticed meanwhile is this connection's
        self.connections += 1
        self.subscribed.set()
        self._set(LinkStatus("connected", None, f"{self.endpoint.scheme}://"
                             f"{self.endpoint.netloc}/mqtt"))
        if self.connections > 1:
            # what was published while the link was down never arrives: reload
            resync: list[FleetEvent] = [DataChanged(changes.DEVICES),
                                        DataChanged(changes.ALERTS)]
            self._bus.publish(resync)
