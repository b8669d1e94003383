"""A console's live feed when the hub runs elsewhere (the team set-up).

The console listens to the same device topics as the hub — without writing
anything — so its views move in real time, and it picks up alert changes the
hub (or another console) made by asking the shared database for alerts
changed since it last looked. It also reads the hub's retained heartbeat
(plugins.local.hub.heartbeat) and follows its own link to the broker, so the
status bar shows the real connection and the hub's health, and says so when
the hub is gone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.errors import ValidationError
from core.model import Alert, DeviceStatus, Reading
from core.model.events import AlertChanged, DeviceChanged, TelemetryReceived
from core.model.timeutil import from_epoch_ms
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.registry import DeviceRegistry
from core.protocol.payloads import ProtocolError, decode_status, decode_telemetry
from core.protocol.topics import (
    HUB_STATUS_TOPIC,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    DataKind,
    parse_device_topic,
)
from core.services.event_bus import EventBus
from plugins.local.hub.heartbeat import HeartbeatError, HubPresence, decode_beat
from plugins.local.hub.mqtt_link import MqttLink

log = logging.getLogger(__name__)

OBSERVER_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER, HUB_STATUS_TOPIC)
ALERT_POLL_S = 2.0
# Each poll asks again for this much before the previous one started: an alert
# is stamped when the hub evaluates it and committed after its batch, and on a
# loaded database that took more than the one second the poll used to overlap,
# so the alert never reached this console (a test of two consoles on a team
# database missed it under CI's load). Alerts already told at their version are
# not told again.
ALERT_POLL_OVERLAP = timedelta(seconds=30)
PRESENCE_CHECK_S = 1.0
# Device statuses are gathered this long and looked up together (see _on_status).
STATUS_BATCH_S = 0.25
STATUS_RETRY_S = 2.0


class TeamObserver:
    def __init__(self, link_factory: Callable[..., MqttLink], bus: EventBus,
                 registry: DeviceRegistry, alerts: AlertStore) -> None:
        self.bus = bus
        self._registry = registry
        self._alerts = alerts
        self.link = link_factory(OBSERVER_FILTERS, self._on_message)
        self.presence = HubPresence()
        self.link.watch_state(self._link_state)
        self._stop = threading.Event()
        self._since = datetime.now(UTC) - timedelta(seconds=5)
        self._told: dict[str, tuple[int, datetime]] = {}  # alert id -> (version, updated)
        self._poller = threading.Thread(target=self._poll_alerts, name="alert-poller",
                                        daemon=True)
        self._watcher = threading.Thread(target=self._watch_hub, name="hub-presence",
                                         daemon=True)
        # device id -> what its newest status said (ONLINE or OFFLINE), not yet told
        self._statuses: dict[str, DeviceStatus] = {}
        self._statuses_lock = threading.Lock()
        self._statuses_waiting = threading.Event()
        self._status_teller = threading.Thread(target=self._tell_statuses,
                                               name="status-teller", daemon=True)

    def start(self) -> None:
        self.link.start()
        self._poller.start()
        self._watcher.start()
        self._status_teller.start()

    # ------------------------------------------------------------------ the hub
    def _link_state(self, state: str) -> None:
        self.bus.set_connection_state(state)
        if state == "connected":  # judge the hub afresh once its word can reach us
            self.presence = HubPresence()
        self._tell_hub()

    def _tell_hub(self) -> None:
        self.bus.publish([self.presence.event(self.link.state)])

    def _on_hub_status(self, payload: bytes) -> None:
        try:
            beat = decode_beat(payload)
        except HeartbeatError as exc:
            log.warning("ignored a message on %s: %s", HUB_STATUS_TOPIC, exc)
            return
        changed = self.presence.heard(beat)
        if changed:
            log.info("hub %s: %s", self.presence.state, self.presence.detail())
        self._tell_hub()

    def _watch_hub(self) -> None:
        """Beats that stop (a hung hub, a network cut the broker has not noticed
        yet) make the hub "silent" after three intervals; only while this
        console is connected, or it would blame the hub for its own link."""
        while not self._stop.wait(PRESENCE_CHECK_S):
            if self.link.state == "connected" and self.presence.check():
                log.warning("hub %s: %s", self.presence.state, self.presence.detail())
                self._tell_hub()

    def stop(self) -> None:
        self._stop.set()
        self._statuses_waiting.set()
        self.link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
        if topic == HUB_STATUS_TOPIC:
            self._on_hub_status(payload)
            return
        try:
            parsed = parse_device_topic(topic)
        except ValidationError:
            return
        if parsed is None:
            return
        try:
            if parsed.kind is DataKind.TELEMETRY:
                message = decode_telemetry(payload, topic_device_id=parsed.device_id,
                                           now_ms=int(time.time() * 1000))
                ts = from_epoch_ms(message.ts_ms)
                readings = tuple(Reading(parsed.device_id, m, ts, v)
                                 for m, v in message.metrics.items())
                self.bus.publish([TelemetryReceived(parsed.device_id, readings,
                                                    message.seq, message.firmware)])
            elif parsed.kind is DataKind.STATUS:
                status = decode_status(payload, topic_device_id=parsed.device_id)
                self._on_status(parsed.device_id, DeviceStatus.ONLINE
                                if status.state == "online" else DeviceStatus.OFFLINE)
        except (ProtocolError, ValidationError):
            return  # the hub quarantines and counts it; a view just skips it

    def _on_status(self, device_id: str, wanted: DeviceStatus) -> None:
        """Noted for the status teller, the newest word of each device winning.

        A view needs the device's record to show its new status, and looking
        it up here, one query per message on paho's thread, cost ~1 ms of the
        window's process each: 10,000 devices coming online (a fleet started,
        a broker restarted, this console subscribing to their retained
        statuses) held the GIL for tens of seconds against the window. Gathered
        for STATUS_BATCH_S they are one query a chunk and one event batch."""
        with self._statuses_lock:
            self._statuses[device_id] = wanted
        self._statuses_waiting.set()

    def _tell_statuses(self) -> None:
        while not self._stop.is_set():
            self._statuses_waiting.wait()
            if self._stop.wait(STATUS_BATCH_S):
                return
            self._statuses_waiting.clear()
            with self._statuses_lock:
                taken, self._statuses = self._statuses, {}
            if taken:
                self._tell_statuses_of(taken)

    def _tell_statuses_of(self, taken: dict[str, DeviceStatus]) -> None:
        try:
            devices = self._registry.find_many(list(taken))
        except Exception as exc:  # noqa: BLE001 - the database busy or away: tried again
            log.warning("could not look up %d devices whose status changed (%s: %s); "
                        "trying again in %.0f s", len(taken), type(exc).__name__, exc,
                        STATUS_RETRY_S)
            with self._statuses_lock:  # what came meanwhile is newer: it stays
                self._statuses = {**taken, **self._statuses}
            self._stop.wait(STATUS_RETRY_S)
            self._statuses_waiting.set()
            return
        self.bus.publish([DeviceChanged(replace(device, status=taken[device_id]))
                          for device_id, device in devices.items()
                          if device.status is not DeviceStatus.DECOMMISSIONED])

    def _poll_alerts(self) -> None:
        while not self._stop.wait(ALERT_POLL_S):
            try:
                self.poll_alerts_once()
            except Exception:
                log.exception("could not poll alert changes")

    def poll_alerts_once(self) -> list[Alert]:
        """The alerts changed since the last poll (less the overlap), each
        announced once a version; returns those announced."""
        started = datetime.now(UTC)
        changed = self._alerts.list(AlertQuery(changed_since=self._since))
        self._since = started - ALERT_POLL_OVERLAP
        fresh = [a for a in changed if self._told.get(a.alert_id, (0,))[0] != a.version]
        for alert in fresh:
            self._told[alert.alert_id] = (alert.version, alert.updated_at)
        # what fell out of the window cannot come back through it
        self._told = {k: v for k, v in self._told.items() if v[1] >= self._since}
        self.bus.publish([AlertChanged(a, change="synced", notify=False) for a in fresh])
        return fresh
