"""The hub in the status bar: broker connection, messages/s in, devices online,
and what is wrong when something is.

One ``LiveBridge`` feeds the labels: ``HubStatus`` events carry the connection,
messages and readings per second, why the hub is degraded and what it shed
(the hub sends one a second); a health label appears
only while the hub is degraded ("Database unavailable for 42 s") or has shed
load, so a person sees a problem while it happens. ``DeviceChanged`` events make the
online/total count stale, which is recounted in the background at most every
couple of seconds (and every 15 s regardless, for changes made elsewhere); a
change heard while a count runs is counted again as soon as it returns. The
status a ``DeviceChanged`` carries counts at once, before any recount: on AWS
the live feed hears a device come online before the API's table says so (IoT
Core → Kinesis → the stream consumer → DynamoDB), and the devices page shows
the event's status, so the bar must not say "0 online" beside a table of
online rows. A recount started after the event takes over once it agrees, or
after ``HEARD_TRUST_S`` (the backend had time to catch up; its word is final).
Labels repaint at most four times a second whatever the event rate.

A console whose hub runs elsewhere gets ``HubStatus`` events from the hub's
heartbeat (plugins.local.hub.observer): its connection label is then this
console's own link to the broker, a hub label says whether the hub is online,
and while it is gone (its Last Will, a stop, or three missed beats) a banner
spans the main window (plugins.local.widgets.hub_banner).
"""

from __future__ import annotations

import logging
import math
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QWidget

from console.bridge import LiveBridge
from console.theme import ThemeColors, current_colors, follow_theme
from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model import DeviceStatus
from core.model.events import AlertChanged, DataChanged, DeviceChanged, FleetEvent, HubStatus
from core.ports.backend import Backend
from core.ports.fleet_api import FleetApi
from core.ports.live import LinkStatus
from core.services.fleet_health import (
    Health,
    health_counts,
    load_health_by_device,
    status_label,
)
from plugins.local.widgets.hub_banner import HubBanner

STATUS_EVENTS = (HubStatus, DeviceChanged, AlertChanged, DataChanged)

log = logging.getLogger(__name__)

PAINT_MS = 250
STATE_POLL_MS = 500  # an in-memory read; a "reconnecting in N s" must not lag behind
RECOUNT_MIN_MS = 2000
RECOUNT_POLL_MS = 15_000
RATE_STALE_S = 5.0
HEARD_TRUST_S = 60.0  # how long a heard status outranks a count that disagrees

STATE_TEXT = {"connected": "Broker connected", "connecting": "Connecting to broker…",
              "disconnected": "Broker disconnected", "offline": "Offline",
              # before the backend and its live feed are up (and the AWS feed until its
              # first connection: credentials, IoT policy, WebSocket): nothing failed yet
              "starting": "Connecting live data…",
              # the AWS console's IoT Core link (plugins/aws/live): LinkStatus words
              "reconnecting": "Reconnecting…",
              "expired": "Live data: credentials expired — sign in"}
HUB_TEXT = {"online": "Hub online", "offline": "Hub offline", "silent": "Hub silent",
            "unknown": "Hub: waiting for heartbeat…"}
HUB_GONE = ("offline", "silent")
# Without the broker nobody hears the devices: no rate to show, and the device
# counts are what was last heard (the hub does not turn an outage into
# "offline": plugins/local/hub/outage_wills.py and Hub._housekeeping).
BLIND_TEXT = "Cannot see the fleet"
BLIND_TIP = ("Not connected to the broker, so the devices cannot be heard: no message "
             "rate, and each device keeps the status it was last seen with until the "
             "link is back")
RATE_TIP = "Messages and readings per second received by the hub"
# The widest rate the label must hold without cutting it ("16 readings/s" was cut).
WIDEST_RATE = "8,888 msg/s · 88,888 readings/s"


def state_colour(state: str) -> str:
    c = current_colors()
    return {"connected": c.success, "connecting": c.warning, "reconnecting": c.warning,
            "starting": c.warning,
            "disconnected": c.danger, "expired": c.danger}.get(state, c.disabled)


def count_devices(backend: Backend) -> tuple[int, int]:
    """(healthy online devices, working fleet); see ``count_health``."""
    counts = count_health(backend)
    return counts[Health.OK], sum(n for h, n in counts.items()
                                  if h is not Health.DECOMMISSIONED)


def count_health(backend: Backend) -> dict[Health, int]:
    """Devices by health (core.services.fleet_health): the dashboard's cards."""
    return health_counts(health_by_device(backend).values())


def health_by_device(backend: Backend) -> dict[str, Health]:
    """Each device's health: the counts, kept per device so that a device's
    status event can move it between them without a recount."""
    return load_health_by_device(backend.registry, backend.alerts)


_HEALTH_OF = {h.status: h for h in Health}


def count_health_through(api: FleetApi) -> dict[Health, int]:
    """The same counts through the session's API (a console on the REST API: on
    a deployed AWS stack it cannot read the registry, and sees its organization's
    devices only). ``analytics.devices`` applies fleet_health, status by health."""
    return health_counts(health_through(api).values())


def health_through(api: FleetApi) -> dict[str, Health]:
    return {d.device_id: _HEALTH_OF[d.status] for d in api.analytics.devices()}


def heard_health(counted: Health | None, status: DeviceStatus) -> Health | None:
    """A device's health once its status event is heard, from what the last
    count said of it: online keeps a warning or critical it had (its alerts did
    not change), a device that was offline comes back healthy; ``None`` for a
    decommissioned one (not in the working fleet)."""
    if status is DeviceStatus.DECOMMISSIONED or counted is Health.DECOMMISSIONED:
        return None
    if status is DeviceStatus.OFFLINE:
        return Health.OFFLINE
    if status is DeviceStatus.ONLINE:
        return counted if counted in (Health.WARNING, Health.CRITICAL) else Health.OK
    return _HEALTH_OF[status]


# The hub that sheds for overload shares this window's process: the fleet has
# outgrown it, and the setting that gives the hub a process (and a core) of its
# own is one line in the profile. Said where the shedding is reported.
IN_WINDOW_HUB_HINT = (
    "The hub runs inside this console. For a fleet this busy set hub_process = true "
    "in the profile (or a lower hub_process_above, the fleet size at which the console "
    "moves it out by itself): the hub then runs as a process of its own (README, \"The "
    "hub and the team set-up\").")


class HubStatusWidget(QWidget):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("HubStatus")
        self.context = context
        self.backend: Backend | None = None
        self.bridge: LiveBridge | None = None
        self.connection = "starting"  # "offline" only once building the backend failed
        self.link: LinkStatus | None = None  # the live feed's own account of its link
        self.messages_per_s: float | None = None
        self.readings_per_s: float | None = None
        self.degraded = ""
        self.shed_overload = 0
        self.shed_quarantine = 0
        self.shed_receiver = 0
        self.inbox = 0
        self.hub = ""  # "" = the hub runs in this console
        self.hub_detail = ""
        self.banner = HubBanner()
        self.online: int | None = None
        self.health: dict[Health, int] = {}
        self.total: int | None = None
        self.counted: dict[str, Health] = {}  # the last count, per device
        # device -> (status heard from its DeviceChanged, when: monotonic)
        self.heard: dict[str, tuple[DeviceStatus, float]] = {}
        self._count_started = 0.0
        self._recount_again = False
        self._rate_age = 0.0
        self._dirty = True
        self._counting = False
        self._background = BackgroundCall(self)

        self.connection_label = QLabel()
        self.connection_label.setObjectName("HubConnection")
        self.connection_label.setTextFormat(Qt.TextFormat.RichText)
        self.hub_label = QLabel()
        self.hub_label.setObjectName("HubPresence")
        self.hub_label.setTextFormat(Qt.TextFormat.RichText)
        self.hub_label.hide()
        self.rate_label = QLabel()
        self.rate_label.setObjectName("HubRate")
        self.rate_label.setTextFormat(Qt.TextFormat.RichText)
        self.rate_label.setToolTip(RATE_TIP)
        self.rate_label.setMinimumWidth(self.rate_label.fontMetrics().horizontalAdvance(
            WIDEST_RATE) + 8)
        self.devices_label = QLabel()
        self.devices_label.setObjectName("HubDevices")
        self.devices_label.setToolTip(
            "Devices by health, as the dashboard counts them: online (no open warning or "
            "critical alert), warning or critical (an open alert of that severity), offline")
        self.health_label = QLabel()
        self.health_label.setObjectName("HubHealth")
        self.health_label.setTextFormat(Qt.TextFormat.RichText)
        self.health_label.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 6, 0)
        layout.setSpacing(10)
        self.separators: list[QFrame] = []
        layout.addWidget(self.connection_label)
        layout.addWidget(self.hub_label)
        for i, label in enumerate((self.rate_label, self.devices_label), 1):
            if i:
                line = QFrame()
                line.setFrameShape(QFrame.Shape.VLine)
                line.setFrameShadow(QFrame.Shadow.Plain)
                self.separators.append(line)
                layout.addWidget(line)
            layout.addWidget(label)
        self._colour_separators(current_colors())
        # The separators are drawn in the theme's border colour, which a switch changes.
        follow_theme(self, self._colour_separators)
        layout.addWidget(self.health_label)

        self._paint_timer = QTimer(self, interval=PAINT_MS)
        self._paint_timer.timeout.connect(self._paint)
        self._paint_timer.start()
        self._state_timer = QTimer(self, interval=STATE_POLL_MS)
        self._state_timer.timeout.connect(self._poll_state)
        self._recount_throttle = QTimer(self, singleShot=True, interval=RECOUNT_MIN_MS)
        self._recount_throttle.timeout.connect(self.recount)
        self._recount_poll = QTimer(self, interval=RECOUNT_POLL_MS)
        self._recount_poll.timeout.connect(self.recount)
        self._paint()
        self._background.start(lambda: context.backend, self._ready, self._failed)

    def _failed(self, exc: BaseException) -> None:
        self.connection = "offline"
        self.connection_label.setToolTip(f"No backend: {exc}")
        self._dirty = True

    def _ready(self, backend: Backend) -> None:
        self.backend = backend
        if backend.live is not None:
            # Only what the labels read: telemetry (10,000 messages a second on a
            # large fleet) is dropped on the feed's thread, never buffered here.
            self.bridge = LiveBridge(backend.live, parent=self, kinds=STATUS_EVENTS)
            self.bridge.batch.connect(self.apply_events)
            self._poll_state()
            self._state_timer.start()
        self._recount_poll.start()
        self.recount()

    # ------------------------------------------------------------ inputs
    def apply_events(self, events: list[FleetEvent]) -> None:
        recount = False
        for event in events:
            if isinstance(event, HubStatus):
                if event.connection:
                    self.connection = event.connection
                self.messages_per_s = event.messages_per_s
                self._rate_age = 0.0
                self.readings_per_s = event.readings_per_s
                self.degraded = event.degraded
                self.shed_overload = event.shed_overload
                self.shed_quarantine = event.shed_quarantine
                self.shed_receiver = event.shed_receiver
                self.inbox = event.inbox
                self.hub = event.hub
                self.hub_detail = event.hub_detail
                if event.hub in HUB_GONE or event.hub == "unknown":
                    self.messages_per_s = self.readings_per_s = None  # nobody is counting
                self._dirty = True
            elif isinstance(event, DeviceChanged):
                self.heard[event.device_id] = (event.device.status, time.monotonic())
                recount = True
            elif isinstance(event, AlertChanged | DataChanged):
                recount = True  # health follows alerts too
        if recount:
            if self.total is not None:
                self._tally()
            if self._counting:
                self._recount_again = True  # that count may have read before the change
            elif not self._recount_throttle.isActive():
                self._recount_throttle.start()

    def _poll_state(self) -> None:
        live = self.backend.live if self.backend is not None else None
        if live is None:
            return
        try:
            link = live.link_status()
        except Exception:  # noqa: BLE001 - a status widget never raises
            link = LinkStatus("offline")
        if link != self.link or link.state != self.connection:
            self.link = link
            self.connection = link.state
            self._dirty = True

    def recount(self) -> None:
        if self.backend is None or self._counting:
            return
        self._counting = True
        self._recount_again = False
        self._count_started = time.monotonic()
        backend, context = self.backend, self.context
        if context.remote is not None:  # over the REST API (aws profiles): count there
            self._background.start(lambda: health_through(context.api), self._counted,
                                   self._count_failed)
            return
        self._background.start(lambda: health_by_device(backend), self._counted,
                               self._count_failed)

    def _counted(self, result: dict[str, Health]) -> None:
        self._counting = False
        self.counted = result
        now = time.monotonic()
        for device_id, (status, at) in list(self.heard.items()):
            # a count that started after the event and agrees with it, or an
            # event the backend had long enough to catch up with: the count rules
            agrees = heard_health(result.get(device_id), status) == result.get(device_id)
            if (at < self._count_started and agrees) or now - at > HEARD_TRUST_S:
                del self.heard[device_id]
        self._tally()
        self._after_count()

    def _tally(self) -> None:
        """The counts: the last count with each heard status applied."""
        health = dict(self.counted)
        for device_id, (status, _) in self.heard.items():
            h = heard_health(health.get(device_id), status)
            if h is None:
                health.pop(device_id, None)
            else:
                health[device_id] = h
        counts = {h: 0 for h in Health}
        for h in health.values():
            counts[h] += 1
        self.health = counts
        self.online = counts[Health.OK]
        self.total = sum(n for h, n in counts.items() if h is not Health.DECOMMISSIONED)
        self._dirty = True

    def _count_failed(self, exc: BaseException) -> None:
        self._counting = False
        self.devices_label.setToolTip(f"Could not count devices: {exc}")
        self._after_count()

    def _after_count(self) -> None:
        if self._recount_again and not self._recount_throttle.isActive():
            self._recount_throttle.start()

    # ------------------------------------------------------------ output
    def _colour_separators(self, colours: ThemeColors) -> None:
        for line in self.separators:
            line.setStyleSheet(f"color: {colours.border};")

    def _paint(self) -> None:
        self._rate_age += PAINT_MS / 1000
        if self.messages_per_s is not None and self._rate_age > RATE_STALE_S and \
                self.connection != "connected":
            self.messages_per_s = None
            self._dirty = True
        if self.banner.gone and not self.banner.shown:
            self._dirty = True  # the window was not there yet to put the banner on
        link = self.link
        retry_at = link.retry_at if link is not None and link.state == self.connection \
            else None
        if retry_at is not None:
            self._dirty = True  # the countdown
        if not self._dirty:
            return
        self._dirty = False
        c = current_colors()
        colour = state_colour(self.connection)
        text = STATE_TEXT.get(self.connection, self.connection.capitalize())
        if retry_at is not None:
            text = f"Reconnecting in {max(0, math.ceil(retry_at - time.time()))} s"
        self.connection_label.setText(f"<span style='color:{colour}'>●</span> {text}")
        detail = link.detail if link is not None and link.state == self.connection else ""
        self.connection_label.setToolTip(f"MQTT broker: {self.connection}"
                                         + (f"\n{detail}" if detail else ""))
        self._paint_hub()
        rate = self.messages_per_s
        text = ("— msg/s" if rate is None else
                f"{rate:,.0f} msg/s" if rate >= 10 else f"{rate:.1f} msg/s")
        if rate is not None and self.readings_per_s is not None:
            text += f" · {self.readings_per_s:,.0f} readings/s"
        blind = self.bridge is not None and self.connection != "connected"
        if blind:
            text = f"<span style='color:{c.warning}'>▲</span> {BLIND_TEXT}"
        self.rate_label.setText(text)
        self.rate_label.setToolTip(BLIND_TIP if blind else RATE_TIP)
        self._paint_health()
        if self.total is None:
            self.devices_label.setText("— devices")
        else:
            # the dashboard's cards, in their words (fleet_health.STATUS_LABELS)
            parts = [f"{self.online:,} online"] + [
                f"{self.health.get(h, 0):,} {status_label(h.status)}"
                for h in (Health.WARNING, Health.CRITICAL) if self.health.get(h, 0)]
            parts.append(f"{self.health.get(Health.OFFLINE, 0):,} offline")
            self.devices_label.setText(" · ".join(parts) + (" (as last seen)" if blind else ""))

    def _paint_hub(self) -> None:
        """The hub's presence (consoles whose hub runs elsewhere) and the banner."""
        if not self.hub:
            self.hub_label.hide()
            self.banner.clear()
            return
        c = current_colors()
        if self.connection != "connected":
            # its heartbeat cannot reach us: say nothing about the hub we cannot know
            self.hub_label.setText(f"<span style='color:{c.disabled}'>●</span> Hub: unknown")
            self.hub_label.setToolTip("This console is not connected to the broker, so it "
                                      "cannot hear the hub's heartbeat")
            self.hub_label.show()
            self.banner.clear()
            return
        colour = {"online": c.success, "unknown": c.warning}.get(self.hub, c.danger)
        text = HUB_TEXT.get(self.hub, f"Hub {self.hub}")
        if self.hub == "online" and self.inbox:
            text += f" · backlog {self.inbox:,}"
        self.hub_label.setText(f"<span style='color:{colour}'>●</span> {text}")
        self.hub_label.setToolTip(self.hub_detail)
        self.hub_label.show()
        if self.hub in HUB_GONE:
            self.banner.install(self.window())
            self.banner.show_gone(self.hub, self.hub_detail)
        else:
            self.banner.clear()

    def _paint_health(self) -> None:
        problems = []
        c = current_colors()
        if self.degraded:
            what = self.degraded.removeprefix("degraded: ")
            problems.append(f"<span style='color:{c.danger}'>▲</span> "
                            f"{what[:1].upper()}{what[1:]}")
        # what the hub shed, one entry per reason (its counters of the same names)
        shed = [(n, text, why) for n, text, why in (
            (self.shed_overload, "shed (overload)",
             "messages the hub dropped because its inbox was full (QoS 0 only; QoS 1 "
             "waits at the broker)"),
            (self.shed_receiver, "dropped by the receiver (overload)",
             "messages the hub's receiver process dropped because the hub was not taking "
             "them fast enough (QoS 0 only)"),
            (self.shed_quarantine, "quarantine rows shed (database away)",
             "rejected messages the hub could not keep for the quarantine while the "
             "database was away")) if n]
        for n, text, _ in shed:
            problems.append(f"<span style='color:{c.warning}'>▲</span> {n:,} {text}")
        tips = (["The hub is degraded: " + self.degraded] if self.degraded else []) + [
            f"{n:,} {why}" for n, _, why in shed]
        if self.shed_overload and not self.hub:
            tips.append(IN_WINDOW_HUB_HINT)
        self.health_label.setText(" · ".join(problems))
        self.health_label.setToolTip("\n".join(tip[:1].upper() + tip[1:] for tip in tips))
        self.health_label.setVisible(bool(problems))

    def texts(self) -> dict[str, str]:
        """What the labels say now (repaints first); for tests and screenshots."""
        self._dirty = True
        self._paint()
        return {"connection": self.connection_label.text(), "rate": self.rate_label.text(),
                "hub": self.hub_label.text() if self.hub else "",
                "banner": self.banner.text.text() if self.banner.gone else "",
                "devices": self.devices_label.text(),
                "health": self.health_label.text() if self.health_label.isVisibleTo(self)
                else ""}


def build_hub_status(context: AppContext) -> HubStatusWidget:
    return HubStatusWidget(context)


__all__ = ["HubStatusWidget", "build_hub_status", "count_devices"]
