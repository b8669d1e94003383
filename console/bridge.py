"""The one door through which live fleet events enter Qt.

A :class:`LiveFeed` calls its subscribers on the backend's network thread, as
often as messages arrive. :class:`LiveBridge` only appends them to a buffer
there (under a lock, no Qt calls) and a QTimer on the GUI thread flushes the
buffer as **one** ``batch`` signal at most every ``interval_ms`` (never faster
than 30 Hz). The GUI's cost therefore grows with the number of devices that
changed in a flush window, not with the message rate.

Coalescing (on by default) keeps one event per key, in order of first arrival:

================= ============ ==================================================
event             key          merge
================= ============ ==================================================
TelemetryReceived device       readings concatenated (none dropped), ``seq`` and
                               ``firmware`` of the newest message
DeviceChanged     device       newest wins (it carries the whole Device)
ShadowChanged     device       newest wins (the whole document)
AlertChanged      alert id     newest wins (the whole Alert)
CommandChanged    request id   newest wins (the whole CommandRecord)
HubStatus         (type)       newest wins
DataChanged       topic        one per topic ("alerts changed")
MessageRejected   —            never coalesced: each message is evidence
================= ============ ==================================================

``kinds`` filters by event type (``{AlertChanged, DataChanged}``).

``newest_readings``: a view that shows only each device's latest values (the
devices table) gets, per device and flush, the newest reading of each metric
instead of every reading, merged on the feed's thread. At 10,000 devices a
flush that fell behind carried ~25 readings a device, and walking them was the
table's largest cost on the GUI thread. ``keep_all_readings`` names devices
that still get every reading (the one open in the detail, with its sparklines).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Collection, Hashable
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from console.widgets.signals import safe_emit
from core.model import Reading, keep_newest
from core.model.events import (
    AlertChanged,
    CommandChanged,
    DataChanged,
    DeviceChanged,
    FleetEvent,
    HubStatus,
    ShadowChanged,
    TelemetryReceived,
)
from core.ports.live import LiveFeed

EventTypes = Collection[type[FleetEvent]]

MIN_INTERVAL_MS = 34  # 1000 / 30 Hz, rounded up
DEFAULT_INTERVAL_MS = 100


@dataclass
class _Slot:
    event: FleetEvent
    readings: list[Reading] = field(default_factory=list)
    newest: dict[str, Reading] = field(default_factory=dict)  # per metric
    merged: int = 0  # telemetry events in the slot


def _key(event: FleetEvent, serial: Callable[[], int]) -> Hashable:
    match event:
        case TelemetryReceived() | DeviceChanged() | ShadowChanged():
            return (type(event), event.device_id)
        case AlertChanged(alert=alert):
            return (AlertChanged, alert.alert_id) if alert.alert_id else (AlertChanged, serial())
        case CommandChanged(record=record):
            return ((CommandChanged, record.request_id) if record.request_id
                    else (CommandChanged, serial()))
        case HubStatus():
            return (HubStatus,)
        case DataChanged(topic=topic):
            return (DataChanged, topic)
    return (type(event), serial())  # rejected messages: keep every one


class _Inbox:
    """The part the feed calls: plain Python, safe on any thread, no Qt.

    Kept separate from the QObject so that a feed still holding the callback
    after the bridge is gone never touches a deleted C++ object.
    """

    def __init__(self, coalesce: bool, kinds: frozenset[type[FleetEvent]] | None = None,
                 newest_readings: bool = False) -> None:
        self.coalesce = coalesce
        self.kinds = kinds
        self.newest_readings = newest_readings
        self.keep_all: frozenset[str] = frozenset()  # replaced whole, read without the lock
        self._lock = threading.Lock()
        self._slots: dict[Hashable, _Slot] = {}
        self._plain: list[FleetEvent] = []
        self._serial = itertools.count()
        self.received = 0
        self.readings_received = 0

    def push(self, events: list[FleetEvent]) -> None:
        if self.kinds is not None:
            events = [e for e in events if type(e) in self.kinds]
            if not events:
                return
        with self._lock:
            self.received += len(events)
            if not self.coalesce:
                self._plain.extend(events)
                self.readings_received += sum(len(e.readings) for e in events
                                              if isinstance(e, TelemetryReceived))
                return
            slots = self._slots
            serial = self._serial.__next__
            for event in events:
                if isinstance(event, TelemetryReceived):
                    self.readings_received += len(event.readings)
                key = _key(event, serial)
                slot = slots.get(key)
                if slot is None:
                    slot = slots[key] = _Slot(event)
                else:
                    slot.event = event
                if isinstance(event, TelemetryReceived) and event.readings:
                    slot.merged += 1
                    if self.newest_readings and event.device_id not in self.keep_all:
                        keep_newest(slot.newest, event.readings)
                    else:
                        slot.readings.extend(event.readings)

    def take(self) -> list[FleetEvent]:
        with self._lock:
            if not self.coalesce:
                plain, self._plain = self._plain, []
                return plain
            slots, self._slots = self._slots, {}
        out: list[FleetEvent] = []
        for slot in slots.values():
            event = slot.event
            if isinstance(event, TelemetryReceived) and slot.merged > 1:
                readings = slot.readings
                if slot.newest:
                    readings = readings + list(slot.newest.values())
                # built directly: dataclasses.replace cost 8 us a device a flush
                event = TelemetryReceived(event.device_id, tuple(readings), event.seq,
                                          event.firmware)
            out.append(event)
        return out

    def pending(self) -> int:
        with self._lock:
            return len(self._plain) + len(self._slots)


class LiveBridge(QObject):
    """Moves a LiveFeed's events onto the GUI thread in coalesced batches.

    ``batch(list[FleetEvent])`` is emitted on the GUI thread at most once per
    ``interval_ms``. Create it on the GUI thread, keep a reference (or give it a
    parent), and connect views to ``batch``. It unsubscribes from the feed when
    :meth:`close` is called or when the object is destroyed.
    """

    batch = Signal(list)

    def __init__(
        self,
        feed: LiveFeed | None = None,
        *,
        interval_ms: int = DEFAULT_INTERVAL_MS,
        coalesce: bool = True,
        kinds: EventTypes | None = None,
        newest_readings: bool = False,
        parent: QObject | None = None,
    ) -> None:
        """``kinds``: only events of these types are kept (dropped on the feed's
        thread, so a view that wants alerts never buffers telemetry).
        ``newest_readings``: per device and metric the newest reading only
        (the module's docstring says when)."""
        super().__init__(parent)
        self._inbox = _Inbox(coalesce, frozenset(kinds) if kinds is not None else None,
                             newest_readings)
        self._unsubscribe: Callable[[], None] | None = None
        self.batches_emitted = 0
        self._timer = QTimer(self)
        self._timer.setInterval(max(MIN_INTERVAL_MS, int(interval_ms)))
        self._timer.timeout.connect(self.flush)
        # A plain function (no reference to self) so it is safe to run while
        # the C++ object is being destroyed.
        holder: dict[str, Any] = {}
        self._holder = holder
        self.destroyed.connect(lambda *_: _run_unsubscribe(holder))
        if feed is not None:
            self.set_feed(feed)

    # -- public API ---------------------------------------------------------------
    @property
    def interval_ms(self) -> int:
        return self._timer.interval()

    def set_interval(self, interval_ms: int) -> None:
        self._timer.setInterval(max(MIN_INTERVAL_MS, int(interval_ms)))

    @property
    def received(self) -> int:
        """Events handed to the bridge so far (before coalescing)."""
        return self._inbox.received

    @property
    def readings_received(self) -> int:
        return self._inbox.readings_received

    @property
    def is_subscribed(self) -> bool:
        return self._holder.get("unsubscribe") is not None

    def set_feed(self, feed: LiveFeed | None) -> None:
        """Subscribe to ``feed`` (dropping any previous one); None just unsubscribes."""
        _run_unsubscribe(self._holder)
        if feed is None:
            self._timer.stop()
            return
        self._holder["unsubscribe"] = feed.subscribe(self._inbox.push)
        self._timer.start()

    def flush(self) -> None:
        """Emit whatever is buffered now (the timer calls this; tests may too)."""
        events = self._inbox.take()
        if events:
            self.batches_emitted += 1
            safe_emit(self.batch, events)

    def pending(self) -> int:
        return self._inbox.pending()

    def keep_all_readings(self, device_ids: Collection[str]) -> None:
        """These devices get every reading even with ``newest_readings``."""
        self._inbox.keep_all = frozenset(device_ids)

    def close(self) -> None:
        self._timer.stop()
        _run_unsubscribe(self._holder)


def _run_unsubscribe(holder: dict[str, Any]) -> None:
    unsubscribe = holder.pop("unsubscribe", None)
    if unsubscribe is not None:
        unsubscribe()
