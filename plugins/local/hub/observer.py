"""A console's live feed when the hub runs elsewhere (the team set-up).

The console listens to the same device topics as the hub — without writing
anything — so its views move in real time, and it picks up alert changes the
hub (or another console) made by asking the shared database for alerts
changed since it last looked. No extra protocol between hub and consoles.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from core.errors import ValidationError
from core.model import DeviceStatus, Reading
from core.model.events import AlertChanged, DeviceChanged, TelemetryReceived
from core.model.timeutil import from_epoch_ms
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.registry import DeviceRegistry
from core.protocol.payloads import ProtocolError, decode_status, decode_telemetry
from core.protocol.topics import STATUS_FILTER, TELEMETRY_FILTER, DataKind, parse_device_topic
from core.services.event_bus import EventBus
from plugins.local.hub.mqtt_link import MqttLink

log = logging.getLogger(__name__)

OBSERVER_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER)
ALERT_POLL_S = 2.0


class TeamObserver:
    def __init__(self, link_factory: Callable[..., MqttLink], bus: EventBus,
                 registry: DeviceRegistry, alerts: AlertStore) -> None:
        self.bus = bus
        self._registry = registry
        self._alerts = alerts
        self.link = link_factory(OBSERVER_FILTERS, self._on_message)
        self._stop = threading.Event()
        self._since = datetime.now(UTC) - timedelta(seconds=5)
        self._poller = threading.Thread(target=self._poll_alerts, name="alert-poller",
                                        daemon=True)

    def start(self) -> None:
        self.link.start()
        self._poller.start()

    def stop(self) -> None:
        self._stop.set()
        self.link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
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
                device = self._registry.find(parsed.device_id)
                if device is not None and device.status is not DeviceStatus.DECOMMISSIONED:
                    wanted = (DeviceStatus.ONLINE if status.state == "online"
                              else DeviceStatus.OFFLINE)
                    self.bus.publish([DeviceChanged(replace(device, status=wanted))])
        except (ProtocolError, ValidationError):
            return  # the hub quarantines and counts it; a view just skips it

    def _poll_alerts(self) -> None:
        while not self._stop.wait(ALERT_POLL_S):
            started = datetime.now(UTC)
            try:
                changed = self._alerts.list(AlertQuery(changed_since=self._since))
            except Exception:
                log.exception("could not poll alert changes")
                continue
            self._since = started - timedelta(seconds=1)  # overlap: clocks and commits
            self.bus.publish([AlertChanged(a, change="synced", notify=False) for a in changed])
