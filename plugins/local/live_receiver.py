"""The console's telemetry subscription in a child process (``hub_process = true``).

At 10,000 devices x 1 Hz, paho and the JSON decoding of every message cost the
console's process about 0.4 core of GIL (docs/benchmarks.md, "Console at fleet
scale"), which the window needs to paint. Here the subscription runs in a
:class:`plugins.local.hub.receiver_process.ReceiverProcess` whose child also
decodes and validates each message (:func:`digest`), so the console receives
one compact batch every ``BATCH_WAIT_S``: per message the device, time, seq,
firmware and metrics as plain values. The console turns them into the
``TelemetryReceived`` events its views already read, with every reading only
for the devices some view shows in full (``LiveFeed.focus``: a device's detail,
a live chart) and, for the rest, one ``TableSamples`` per batch: the time,
``TABLE_METRICS`` and firmware of each message, which is what the devices
table shows. A message that fails validation is skipped and counted
(the hub quarantines and reports it).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, cast

from core.errors import ValidationError
from core.ingest.fast_records import trusted_readings
from core.model.events import FleetEvent, TableSamples, TelemetryReceived
from core.model.timeutil import from_epoch_ms
from core.ports.live import TABLE_METRICS
from core.protocol.payloads import ProtocolError, decode_telemetry
from core.protocol.topics import TELEMETRY_FILTER, DataKind, parse_device_topic
from core.services.event_bus import EventBus

log = logging.getLogger(__name__)

BATCH_WAIT_S = 0.1  # the console's bridge paints at most every 100 ms anyway
BUFFER_LIMIT = 50_000
DIGEST = f"{__name__}:digest"
RECEIVER_NICE = 5  # below the window, above the hub

# device id, time (epoch ms), seq, firmware ("" when not said), metrics
Row = tuple[str, int, int, str, dict[str, float]]


@dataclass(slots=True)
class TelemetryDigest:
    """What the child sends for a batch: the decoded messages and how many
    were rejected. ``len`` is the number of messages it stands for."""

    rows: list[Row] = field(default_factory=list)
    rejected: int = 0
    messages: int = 0

    def __len__(self) -> int:
        return self.messages


def digest(items: list[tuple[str, bytes, int, int]]) -> TelemetryDigest:
    """In the receiver's child: decode and validate each telemetry message
    against its topic and the time it arrived, as the hub does."""
    out = TelemetryDigest(messages=len(items))
    rows = out.rows
    for topic, payload, received_ms, _mid in items:
        try:
            parsed = parse_device_topic(topic)
            if parsed is None or parsed.kind is not DataKind.TELEMETRY:
                out.rejected += 1
                continue
            message = decode_telemetry(payload, topic_device_id=parsed.device_id,
                                       now_ms=received_ms)
        except (ProtocolError, ValidationError):
            out.rejected += 1
            continue
        rows.append((parsed.device_id, message.ts_ms, message.seq, message.firmware,
                     message.metrics))
    return out


def events_from(rows: list[Row], focused: frozenset[str]) -> list[FleetEvent]:
    """``TelemetryReceived`` with every reading for each message of a focused
    device; the rest as one ``TableSamples``: its time, battery and RSSI
    (``TABLE_METRICS``) and firmware, the columns the devices table shows."""
    events: list[FleetEvent] = []
    ids: list[str] = []
    times: list[int] = []
    battery: list[float | None] = []
    rssi: list[float | None] = []
    firmwares: list[str] = []
    battery_metric, rssi_metric = TABLE_METRICS
    for device_id, ts_ms, seq, firmware, metrics in rows:
        if device_id in focused:
            readings = tuple(trusted_readings(device_id, from_epoch_ms(ts_ms), metrics))
            events.append(TelemetryReceived(device_id, readings, seq, firmware))
            continue
        ids.append(device_id)
        times.append(ts_ms)
        battery.append(metrics.get(battery_metric))
        rssi.append(metrics.get(rssi_metric))
        firmwares.append(firmware)
    if ids:
        events.append(TableSamples(tuple(ids), tuple(times), tuple(battery), tuple(rssi),
                                   tuple(firmwares)))
    return events


class FleetReceiver:
    """The console side: a receiver child on the telemetry topics whose
    digests become live events on ``bus``."""

    def __init__(self, host: str, port: int, bus: EventBus, *, client_id: str,
                 username: str | None, password: str | None, tls: bool,
                 protocol: int = 5) -> None:
        import ssl

        from plugins.local.hub.receiver_process import ReceiverProcess

        self.bus = bus
        self.rejected = 0
        self.messages = 0
        self.cpu_s = 0.0  # this process's CPU turning digests into events (thread_time)
        self.receiver = ReceiverProcess(
            host, port, client_id=client_id, filters=[TELEMETRY_FILTER],
            on_batch=self._on_batch, tls_factory=ssl.create_default_context if tls else None,
            username=username, password=password, protocol=protocol, qos=0,
            batch_wait_s=BATCH_WAIT_S, buffer_limit=BUFFER_LIMIT, transform=DIGEST)

    @property
    def pid(self) -> int | None:
        return self.receiver.pid

    def start(self) -> FleetReceiver:
        from plugins.local.hub_process import lower_priority

        self.receiver.start()
        pid = self.receiver.pid
        if pid is not None:  # the window first (plugins.local.hub_process.HUB_NICE)
            lower_priority(pid, RECEIVER_NICE)
        return self

    def stop(self) -> None:
        self.receiver.stop(timeout_s=5.0)

    def _on_batch(self, batch: Any) -> None:
        started = time.thread_time()
        got = cast(TelemetryDigest, batch.items)
        self.messages += got.messages
        if got.rejected:
            self.rejected += got.rejected
        if got.rows:
            self.bus.publish(events_from(got.rows, self.bus.focused))
        self.cpu_s += time.thread_time() - started
