"""What arrives on a console's live topics, as the typed events pages consume
(core.model.events), decoded with core's protocol code.

- ``dt/{org}/{device}/telemetry``: core.protocol.payloads.decode_telemetry,
  one TelemetryReceived per message;
- ``dt/{org}/{device}/status``: decode_status; a DeviceChanged with the
  device's record (looked up through the API, briefly cached) and its new
  status;
- ``smartiot/{org}/alerts``: the stream consumer's notification message
  (plugins/aws/notifications/queue.py); an AlertChanged ("raised" or
  "resolved") and a DataChanged(alerts), so pages that show more of an alert
  than the message carries (who acknowledged it) reload it from the API.

A message this console cannot read is counted and skipped: the stream
consumer quarantines bad device data with its reason; a view only must not
break on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from core.errors import ValidationError
from core.model import Device, DeviceStatus, Reading
from core.model.alert import Alert
from core.model.events import (
    AlertChanged,
    DataChanged,
    DeviceChanged,
    FleetEvent,
    TelemetryReceived,
)
from core.model.timeutil import from_epoch_ms
from core.ports import changes
from core.ports.notifications import NotificationKind
from core.protocol.payloads import ProtocolError, decode_status, decode_telemetry
from core.protocol.topics import DataKind, alerts_topic, parse_device_topic
from plugins.aws.notifications.queue import MalformedNotification, parse_notification

DeviceLookup = Callable[[str], Device | None]


def live_filters(organization: str) -> list[str]:
    """The filters a console subscribes to: its organization's telemetry,
    status and alerts — exactly what the console role's policy allows."""
    return [f"dt/{organization}/+/telemetry", f"dt/{organization}/+/status",
            alerts_topic(organization)]


class LiveDecoder:
    def __init__(self, organization: str, find_device: DeviceLookup) -> None:
        self.organization = organization
        self._find = find_device
        self._alerts_topic = alerts_topic(organization)
        self.skipped = 0
        self.last_skip = ""

    def decode(self, topic: str, payload: bytes) -> list[FleetEvent]:
        try:
            if topic == self._alerts_topic:
                return self._alert(payload)
            parsed = parse_device_topic(topic)
            if parsed is None or parsed.org != self.organization:
                return self._skip(f"{topic}: not one of organization "
                                  f"{self.organization}'s live topics")
            if parsed.kind is DataKind.TELEMETRY:
                message = decode_telemetry(payload, topic_device_id=parsed.device_id,
                                           now_ms=int(time.time() * 1000))
                ts = from_epoch_ms(message.ts_ms)
                readings = tuple(Reading(parsed.device_id, m, ts, v)
                                 for m, v in message.metrics.items())
                return [TelemetryReceived(parsed.device_id, readings, message.seq,
                                          message.firmware)]
            if parsed.kind is DataKind.STATUS:
                status = decode_status(payload, topic_device_id=parsed.device_id)
                device = self._find(parsed.device_id)
                if device is None or device.status is DeviceStatus.DECOMMISSIONED:
                    return []
                wanted = (DeviceStatus.ONLINE if status.state == "online"
                          else DeviceStatus.OFFLINE)
                return [DeviceChanged(replace(device, status=wanted))]
            return self._skip(f"{topic}: not a live topic")
        except (ProtocolError, ValidationError, MalformedNotification) as exc:
            return self._skip(f"{topic}: {exc}")

    def _alert(self, payload: bytes) -> list[FleetEvent]:
        notification = parse_notification(payload)
        a = notification.alert
        if a.organization_id and a.organization_id != self.organization:
            return self._skip(f"alert {a.alert_id} of organization {a.organization_id} "
                              f"on {self._alerts_topic}")
        alert = Alert(a.device_id, a.rule_id, a.severity, a.message, alert_id=a.alert_id,
                      state=a.state, created_at=a.created_at,
                      updated_at=notification.sent_at, resolved_at=a.resolved_at)
        change = "resolved" if notification.kind is NotificationKind.RESOLVED else "raised"
        return [AlertChanged(alert, change=change), DataChanged(changes.ALERTS)]

    def _skip(self, why: str) -> list[FleetEvent]:
        self.skipped += 1
        self.last_skip = why
        return []
