"""The hub: one MQTT link in, one writer thread out to the store.

paho's network thread only appends raw messages to a bounded inbox; the
writer thread drains it every 100 ms (or sooner when it fills), so ingestion
never waits on the database and the database sees one transaction per batch.

Nothing the database does may stop the hub. Every stage of the writer runs
under its own guard; a batch whose write fails stays in memory (one batch, and
the inbox stops being drained meanwhile) and is written again once the
database is back, and QoS 1 messages are acknowledged to the broker only after
their readings are committed. So while the database is away the inbox fills,
QoS 0 messages beyond its bound are shed and counted (``shed_overload``), and
QoS 1 messages stay with the broker (the network thread stops reading when the
inbox is full, so TCP pushes back and the broker queues them for the hub's
persistent session): memory stays bounded and no QoS 1 reading
the broker accepted is lost. The status says "degraded: database unavailable
for 42 s" while that lasts, from a monitor thread that never touches the
database, so it is true even while the writer waits on a lock.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import logging
import re
import socket
import ssl
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from core.ingest.ingestor import BatchResult, Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.model import Device, LinkStats, QuarantinedMessage, Reading
from core.model.events import DeviceChanged, FleetEvent, HubStatus
from core.protocol.payloads import peek_seq
from core.protocol.topics import (
    HUB_STATUS_TOPIC,
    STATUS_FILTER,
    TELEMETRY_FILTER,
    parse_jobs_topic,
)
from core.services.alerting.evaluator import Sample
from core.services.event_bus import EventBus
from core.services.rollout import RolloutEngine
from core.store import Store
from core.store.hub_state import SqlHubStateStore
from core.store.refusals import rows_refused
from plugins.local.hub.downtime import ALIVE_EVERY_S, HubDowntime
from plugins.local.hub.heap import HeapSettler
from plugins.local.hub.heartbeat import HEARTBEAT_EVERY_S, HubBeat, last_will, online_beat
from plugins.local.hub.mqtt_link import AckToken, MqttLink
from plugins.local.hub.mqtt_wire import MQTT_V5
from plugins.local.hub.outage_wills import restore_outage_wills
from plugins.local.hub.receiver_process import Batch, ReceiverProcess
from plugins.local.hub.shadow_host import ShadowHost, shadows_many
from plugins.local.hub.shadow_host import _is_store_error as is_store_error
from plugins.local.jobs import api as jobs_api
from plugins.local.jobs.batch import pending_many
from plugins.local.jobs.file_server import FirmwareFileServer
from plugins.local.jobs.host import JobsHost

log = logging.getLogger(__name__)

HUB_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER, "$aws/things/+/shadow/+",
               "$aws/things/+/jobs/#")
# What the receiver process takes in process mode: a device's statuses (its Last
# Will included) with its telemetry. MQTT orders messages within one connection
# only; with statuses on the link, a starved receiver handed a device's last
# readings over after its "offline" and the device showed online again until the
# silence sweep. QoS 0 statuses are never shed or dropped (``keep``, _on_batch).
RECEIVER_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER)
# Where telemetry is received: "thread" (paho's network thread in the hub's
# process, sharing the writer's GIL) or "process" (a child process of its own,
# plugins/local/hub/receiver_process.py, with RECEIVER_FILTERS; the link keeps
# every other filter: shadow and jobs requests, and its own Last Will).
RECEIVERS = ("thread", "process")
ROLLOUT_EVERY_S = 0.5
HOUSEKEEPING_EVERY_S = 5.0
# Minute rollups of what was stored are folded this often (see _fold_rollups).
FOLD_EVERY_S = 180.0
RELOAD_EVERY_S = 30.0
FLUSH_EVERY_S = 0.1
# telemetry_latest is written from memory this often, not with every batch: at
# 10,000 devices the per-batch upsert cost as much as storing the readings
# (core/store/latest_buffer.py; a crash in between is repaired at the next start)
LATEST_EVERY_S = 5.0
# The writer wakes when this many messages wait (else every FLUSH_EVERY_S)...
MAX_BATCH = 5000
# ...and takes up to this many into one transaction: a writer that fell behind
# commits more at once, and each series' page is then written once for several
# of its readings (at 10,000 devices, 5,000-message commits wrote a page per
# reading; docs/scaling.md "Group commit").
BATCH_LIMIT = 60_000
# Messages waiting for the writer (~60 MB at 1 KB each, the worst case): room for
# one batch being written and the next arriving. QoS 0 beyond it is shed
# (counted); for QoS 1 the network thread stops reading (backpressure) and the
# broker queues for the hub's session.
INBOX_LIMIT = 120_000
# A console's own hub shares the window's process and GIL: a 60,000-message
# batch's sort alone held the GIL for 183 ms (the window froze that long) and
# its inbox was most of the console's memory at 10,000 devices. There the hub
# takes smaller batches and sheds sooner; a fleet that needs the throughput
# runs `smartiot hub` (or hub_process = true), which keeps the limits above.
CONSOLE_BATCH_LIMIT = MAX_BATCH
CONSOLE_INBOX_LIMIT = 20_000
# Topics whose shed messages' seqs are held for the next kept one (Inbound's
# ``shed``): one per device the hub sheds for, at most SHED_SEQS_LIMIT seqs
# each; beyond either (a flood of made-up topics) they go unrecorded, which only
# keeps those seqs awaited as possibly late, as any gap's.
SHED_TOPICS_LIMIT = 200_000
SHED_SEQS_LIMIT = 1024
MAX_PENDING_QUARANTINE = 20_000
# A store call that has not returned after this long makes the hub report the
# database as unavailable while it still waits (a lock, a dead server).
BLOCKED_AFTER_S = 2.0
RETRY_MIN_S, RETRY_MAX_S = 0.5, 5.0
# A batch failing this often is tried one device at a time (a refused value).
SPLIT_AFTER_FAILURES = 3
# Long drains give the rollout and housekeeping stages a turn this often.
DRAIN_SLICE_S = 0.5
# Shadow and jobs requests take turns with telemetry: at most this much of the
# writer's CPU time for them, then one telemetry batch, while both wait. Each
# costs a transaction or two (0.2-0.5 ms of CPU, less with the reads batched);
# 10,000 devices connecting ask ~30,000 of them, which answered all first kept
# telemetry waiting for half a minute.
REQUESTS_SLICE_S = 0.1
# Requests whose stored state (shadow for a get, pending jobs) is read in one
# query, ahead of answering them.
PREFETCH_REQUESTS = 500
_JOBS_REPLIES = ("/accepted", "/rejected", "/notify", "/notify-next")
SESSION_EXPIRY_S = 7 * 24 * 3600
BACKPRESSURE_WAIT_S = 10.0
RATE_WINDOW_S = 5.0
STOP_DRAIN_S = 30.0
STOP_JOIN_GRACE_S = 15.0  # beyond the drain: a write the database holds up ends

T = TypeVar("T")


def _device_status(topic: str) -> bool:
    """A device's status (STATUS_FILTER): the link's routing in process mode and
    the inbox's shedding both tell it apart by its last level."""
    return topic.endswith("/status")


class Alerting(Protocol):
    """What the hub needs from the alert engine: ALERT events for what changed."""

    def set_devices(self, devices: Sequence[Device]) -> None: ...

    def process(self, device: Device, readings: Sequence[Reading]) -> list[FleetEvent]: ...

    def process_batch(self, batch: Iterable[tuple[Device, Sequence[Sample]]],
                      failed: Callable[[Device, Exception], None]) -> list[FleetEvent]:
        """``process`` on each device's messages (time, metrics) of one write
        batch, as the writer holds them; a device that fails goes to ``failed``."""
        ...

    def tick(self, now: datetime) -> list[FleetEvent]: ...


def stable_client_id(profile: str, database_url: str, host: str | None = None) -> str:
    """The hub's MQTT client id: the same every time this hub (profile, machine,
    database) starts, so it finds its persistent session and what the broker
    queued while it was away; different for two hubs writing different stores,
    which must not take each other's messages. Credentials in the URL do not
    take part."""
    where = re.sub(r"//[^@/]*@", "//", database_url)
    machine = host if host is not None else socket.gethostname()
    digest = hashlib.sha256(f"{profile}|{machine}|{where}".encode()).hexdigest()[:12]
    name = re.sub(r"[^A-Za-z0-9_-]", "-", f"{profile}-{machine}")[:60]
    return f"smartiot-hub-{name}-{digest}"


def hub_client_id(profile: str, database_url: str) -> str:
    """``SMARTIOT_HUB_CLIENT_ID`` when set (two machines taking over one hub's
    session), else :func:`stable_client_id`."""
    import os

    return os.environ.get("SMARTIOT_HUB_CLIENT_ID") or stable_client_id(profile, database_url)


@dataclass
class HubCounters:
    received: int = 0            # messages the broker handed over (network thread)
    processed: int = 0           # messages through the ingest stage
    readings_written: int = 0
    quarantined: int = 0
    write_failures: int = 0
    stage_failures: int = 0
    shed_overload: int = 0       # QoS 0 messages dropped because the inbox was full
    shed_quarantine: int = 0     # quarantine rows dropped while the database was away
    # requests not queued because the request queue was full, by reason
    # ("shadow_get_queue_full"): gets only, which devices ask again (with backoff)
    shed_requests: Counter[str] = field(default_factory=Counter)
    lost_on_stop: int = 0        # messages still in memory when a stop gave up
    store_refused: int = 0       # readings the database refused while taking others
    messages_per_s: float = 0.0
    readings_per_s: float = 0.0
    inbox: int = 0
    inbox_peak: int = 0
    outages: int = 0
    longest_outage_s: float = 0.0
    last_outage_s: float = 0.0


@dataclass
class _Pending:
    """One ingested batch on its way to the store; kept until its telemetry commits."""

    result: BatchResult
    tokens: list[AckToken]
    messages: int
    written: bool = False
    failures: int = 0


class StoreHealth:
    """Whether the store takes writes, for the status line; thread-safe.

    A call in progress for longer than BLOCKED_AFTER_S counts as an outage
    already (a SQLite lock makes a write wait 10 s before it fails), and the
    outage lasts until a retry round leaves nothing unwritten."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.busy_since: float | None = None
        self.down_since: float | None = None
        self.last_error = ""
        self.failed_stage = ""
        self._last_logged = 0.0

    def call(self, stage: str, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            self.busy_since = self._clock()
        try:
            return fn(*args)
        except Exception as exc:
            self.failed(stage, exc)
            raise
        finally:
            with self._lock:
                self.busy_since = None

    def failed(self, stage: str, exc: BaseException) -> None:
        now = self._clock()
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since = self.busy_since if self.busy_since is not None else now
            # The first line only: a driver's message goes on with the statement
            # and its parameters (a whole batch of readings).
            first_line = (str(exc).strip().splitlines() or [""])[0]
            self.last_error = f"{type(exc).__name__}: {first_line}"[:300]
            self.failed_stage = stage
            chatty = first or now - self._last_logged >= 10.0
            if chatty:
                self._last_logged = now
        if first:
            log.error("database unavailable (%s): %s; batches are kept and retried",
                      stage, self.last_error)
            log.debug("the %s stage failed", stage, exc_info=exc)
        elif chatty:
            log.warning("database still unavailable after %.0f s (%s): %s",
                        self.unavailable_for() or 0.0, stage, self.last_error)

    def recovered(self, count: Callable[[float], None] | None = None) -> float | None:
        """Ends an outage; returns how long it lasted, None if there was none.
        ``count(lasted)`` books it before the outage ends for readers: a status
        line that finds the database available again must find it counted."""
        with self._lock:
            if self.down_since is None:
                return None
            lasted = self._clock() - self.down_since
            if count is not None:
                count(lasted)
            self.down_since = None
        log.warning("database available again after %.0f s", lasted)
        return lasted

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def unavailable_for(self) -> float | None:
        now = self._clock()
        with self._lock:
            if self.down_since is not None:
                return now - self.down_since
            if self.busy_since is not None and now - self.busy_since >= BLOCKED_AFTER_S:
                return now - self.busy_since
        return None


class Hub:
    def __init__(
        self,
        store: Store,
        bus: EventBus,
        host: str,
        port: int,
        *,
        tls_context: ssl.SSLContext | None = None,
        username: str | None = None,
        password: str | None = None,
        stale_after_s: float = 120.0,
        auto_register: bool = True,
        alerting: Alerting | None = None,
        clock: Callable[[], float] = time.time,
        file_server: FirmwareFileServer | None = None,
        rollout_speed: float = 1.0,
        client_id: str | None = None,
        protocol: int = MQTT_V5,
        session_expiry_s: int = SESSION_EXPIRY_S,
        inbox_limit: int = INBOX_LIMIT,
        batch_limit: int = BATCH_LIMIT,
        receive_maximum: int | None = None,
        receiver: str = "thread",
        tls_factory: Callable[[], ssl.SSLContext] | None = None,
    ) -> None:
        """``receiver``: "process" receives telemetry in a child process (its
        paho work off the writer's GIL: what lets the hub keep up at fleet
        scale), "thread" on the link's own thread (tests, tiny set-ups). With
        TLS the child needs ``tls_factory`` (a picklable function building the
        link's context, e.g. ``ssl.create_default_context``); without one the
        hub falls back to "thread".

        ``client_id``: give a stable one (:func:`stable_client_id`) for a
        persistent session, so what the broker accepted while the hub was down
        is delivered when it comes back; without one the hub gets a random id
        and a session that ends with the connection (tests, throwaway hubs).
        ``protocol`` 5 (MQTT 5) or 4 (3.1.1, for brokers without MQTT 5).
        ``receive_maximum`` (MQTT 5) is left to the protocol's 65,535 by
        default: mosquitto 2.0.11 sends QoS 1 messages out of order once a small
        limit is reached (the late ones are then quarantined as out of order),
        so the bound comes from the hub's own backpressure instead.
        ``inbox_limit``, ``batch_limit``: see INBOX_LIMIT, BATCH_LIMIT and
        CONSOLE_BATCH_LIMIT."""
        self.store = store
        self.bus = bus
        self.clock = clock
        self.stale_after = timedelta(seconds=stale_after_s)
        self.alerting = alerting
        self.heap = HeapSettler()  # gc full passes: see plugins/local/hub/heap.py
        self.cache = RegistryCache(store.registry)
        self.ingestor = Ingestor(self.cache, auto_register=auto_register)
        self.counters = HubCounters()
        self.health = StoreHealth()
        self.inbox_limit = max(1, inbox_limit)
        self.batch_limit = max(1, batch_limit)
        self._inbox: deque[tuple[Inbound, AckToken | None]] = deque()
        self._shadow_inbox: deque[tuple[Inbound, AckToken | None]] = deque()
        # the seqs of QoS 0 telemetry shed per topic since that topic's last kept
        # message (network and receiver threads: a race only leaves a seq out,
        # which awaits it as any gap's)
        self._shed_by_topic: dict[str, list[int]] = {}
        self._wake = threading.Event()
        self._room = threading.Event()
        self._stop = threading.Event()
        self._monitor_stop = threading.Event()
        self._pending: _Pending | None = None
        self._pending_stats: dict[str, LinkStats] = {}
        self._pending_quarantine: deque[QuarantinedMessage] = deque()
        self._retry_at = 0.0
        self._retry_delay = RETRY_MIN_S
        self._stop_deadline = 0.0
        self._stopped_clean = True
        # since when the link has been up (monotonic): silence is only judged
        # over time the hub could hear (see _housekeeping)
        self._listening_since: float | None = None
        # when the link was last lost (the hub's clock): the broker's dying burst
        # of Last Wills just before is undone (plugins/local/hub/outage_wills.py)
        self._link_lost_at: float | None = None
        persistent = client_id is not None
        link_id = client_id or f"smartiot-hub-{uuid.uuid4().hex[:8]}"
        if receiver not in RECEIVERS:
            raise ValueError(f"receiver must be one of {', '.join(RECEIVERS)}, not {receiver!r}")
        if receiver == "process" and tls_context is not None and tls_factory is None:
            log.warning("the hub receives telemetry on its own thread: TLS without a "
                        "tls_factory cannot be handed to a receiver process")
            receiver = "thread"
        self.receiver_mode = receiver
        self._state_lock = threading.Lock()
        self._link_state = self._receiver_state = "disconnected"
        self.started_at_ms = int(clock() * 1000)
        # Periods this hub session was away: seq gaps in them are its loss.
        self.downtime = HubDowntime(link_id, SqlHubStateStore(store.engine)
                                    if persistent else None, clock)
        self.link = MqttLink(
            host, port, client_id=link_id,
            filters=HUB_FILTERS if receiver == "thread" else tuple(
                f for f in HUB_FILTERS if f not in RECEIVER_FILTERS),
            on_message=self._on_message, on_state=self._on_state,
            tls_context=tls_context, username=username, password=password,
            clean_session=not persistent, protocol=protocol,
            session_expiry_s=session_expiry_s if persistent else 0,
            manual_ack=True, receive_maximum=receive_maximum,
            will=(HUB_STATUS_TOPIC, last_will(link_id, self.started_at_ms).encode()),
            unsubscribe=RECEIVER_FILTERS if receiver == "process" else (),
        )
        self.receiver: ReceiverProcess | None = None
        if receiver == "process":
            # its own session (its own client id): QoS 1 telemetry and statuses
            # it did not acknowledge are queued for it, as for the link, while it
            # is away; each (re)subscribe brings every device's retained status
            # after what was queued, so the latest word comes last
            self.receiver = ReceiverProcess(
                host, port, client_id=f"{link_id}-rx", filters=RECEIVER_FILTERS,
                keep=(STATUS_FILTER,),
                on_batch=self._on_batch, on_state=self._on_status_path_state,
                tls_factory=tls_factory, username=username, password=password,
                clean_session=not persistent, protocol=protocol,
                session_expiry_s=session_expiry_s if persistent else 0,
                qos=1, manual_ack=True, buffer_limit=self.inbox_limit)
        self.shadows = ShadowHost(store.shadows,
                                  lambda topic, body: self.link.publish(topic, body, qos=1),
                                  quarantine=store.quarantine.add_many,
                                  get_many=shadows_many(store.engine))
        # Jobs: the device API, the firmware file server its URLs point at,
        # and the rollout engine deciding who is released when (state in the store).
        self.files = file_server or FirmwareFileServer(store.firmware)
        self.jobs = JobsHost(store.deployments,
                             lambda topic, body: self.link.publish(topic, body, qos=1),
                             self.files.presign, clock=clock,
                             pending_many=pending_many(store.engine, jobs_api.PENDING))
        self.jobs.quarantine = store.quarantine.add_many
        self.rollout = RolloutEngine(store.deployments, self.jobs, speed=rollout_speed)
        self.jobs.on_terminal = self.rollout.execution_updated
        self._thread = threading.Thread(target=self._run, name="smartiot-hub-writer",
                                        daemon=True)
        self._monitor = threading.Thread(target=self._watch, name="smartiot-hub-monitor",
                                         daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        # readings a previous run stored but had not flushed to telemetry_latest
        repaired = self.store.telemetry.repair_latest()
        if repaired:
            log.warning("the hub's last run ended without flushing the latest values; "
                        "they were rebuilt from the stored readings")
        self.store.telemetry.defer_latest(self.link.client_id)
        self.cache.load()
        if self.alerting is not None:
            self.alerting.set_devices(self.cache.all())
        known = self.store.link_stats.list()
        for stats in known:
            self.ingestor.stats[stats.device_id] = stats
            self.ingestor.sequences.seed(stats.device_id, stats.last_seq)
        self.downtime.load(known)
        self.heap.settle()  # what start-up loaded is long-lived: out of the full passes
        self.files.start()
        self._thread.start()
        self._monitor.start()
        self.link.start()
        if self.receiver is not None:
            self.receiver.start()

    def stop(self, timeout_s: float = STOP_DRAIN_S) -> bool:
        """Drain the inbox into the store, acknowledge it, then disconnect; the
        broker keeps what arrives afterwards for the next start (persistent
        session). Returns False when the drain gave up (database still away):
        unacknowledged QoS 1 messages then come again next time, QoS 0 ones in
        memory are counted in ``lost_on_stop``."""
        self._stop_deadline = time.monotonic() + timeout_s
        self._stop.set()
        self._wake.set()
        self._room.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout_s + STOP_JOIN_GRACE_S)
        self._say_goodbye()
        if self.receiver is not None:
            # the writer's acknowledgements go first; what it still held arrives
            # in the inbox before this returns and is stored below
            self.receiver.stop()
        self.link.stop()
        # Whatever came in between the last drain and the disconnect: store it
        # (its QoS 1 messages were not acknowledged and come again; the
        # duplicates are recognised by seq and the (device, metric, ts) key).
        if self._thread.is_alive():
            # stuck in the database past the join: draining here as well could
            # write a batch twice; what was not acknowledged comes again
            log.error("the hub's writer is still busy with the database; the inbox is "
                      "left to the broker's redelivery at the next start")
        elif (self._inbox or self._pending) and not self.health.down:
            self._stop_deadline = time.monotonic() + 10.0
            self._guard("telemetry", lambda: self._drain_telemetry(final=True))
        if not self._thread.is_alive():
            self._flush_latest()  # else the next start rebuilds them from the readings
        left = len(self._inbox) + (self._pending.messages if self._pending else 0)
        if left:
            self.counters.lost_on_stop += sum(
                1 for _, token in self._inbox if token is None)
            self._stopped_clean = False
            log.error("hub stopped with %d messages not stored (QoS 1 ones are redelivered "
                      "by the broker at the next start)", left)
        self._monitor_stop.set()
        if self._monitor.is_alive():
            self._monitor.join(timeout=5)
        if not self._thread.is_alive() and not self.health.down:
            self._guard("hub state", self.downtime.save)  # stopped now: the outage starts
        self.files.stop()
        self.heap.release()
        return left == 0

    def _say_goodbye(self) -> None:
        """A retained "offline, stopped" before a clean disconnect (the Last Will
        covers every other end), so consoles show the hub gone at once."""
        if self.link.state != "connected":
            return
        beat = HubBeat("offline", self.link.client_id, int(self.clock() * 1000),
                       self.started_at_ms, reason="stopped")
        try:
            info = self.link.publish(HUB_STATUS_TOPIC, beat.encode(), qos=1, retain=True)
            info.wait_for_publish(2.0)
        except Exception as exc:  # noqa: BLE001 - the Last Will is not sent on a clean stop
            log.warning("could not tell consoles the hub stops: %s", exc)

    def publish_heartbeat(self) -> bool:
        """The retained heartbeat consoles read (plugins.local.hub.heartbeat);
        False when the link is down (the Last Will speaks then)."""
        if self.link.state != "connected":
            return False
        beat = online_beat(self.link.client_id, self.started_at_ms, self.snapshot(),
                           now_ms=int(self.clock() * 1000), interval_s=HEARTBEAT_EVERY_S)
        try:
            self.link.publish(HUB_STATUS_TOPIC, beat.encode(), qos=1, retain=True)
        except Exception as exc:  # noqa: BLE001 - a status must never stop the hub
            log.warning("the hub's heartbeat could not be published: %s", exc)
            return False
        return True

    def wait_connected(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        if not self.link.wait_connected(timeout):
            return False
        return self.receiver is None or self.receiver.wait_connected(
            max(0.0, deadline - time.monotonic()))

    def wait_subscribed(self, timeout: float) -> bool:
        """Connected and the broker has acknowledged every subscription: devices'
        messages published from now on reach the hub."""
        deadline = time.monotonic() + timeout
        if not self.link.wait_subscribed(timeout):
            return False
        return self.receiver is None or self.receiver.wait_subscribed(
            max(0.0, deadline - time.monotonic()))

    # ------------------------------------------------------------------ status
    def degraded(self) -> str:
        """Empty when all is well, else what is wrong in words for a status line."""
        down = self.health.unavailable_for()
        if down is not None:
            return f"degraded: database unavailable for {down:.0f} s"
        if len(self._inbox) >= self.inbox_limit:
            return f"degraded: overloaded, inbox full ({len(self._inbox):,} messages)"
        return ""

    def problems(self) -> list[str]:
        """What a person must know when the hub ends: an outage still on, data lost."""
        found = []
        state = self.degraded()
        if state:
            found.append(f"ended {state}")
        c = self.counters
        dropped = self.receiver.counters.dropped if self.receiver is not None else 0
        for count, what in ((c.shed_overload, "messages shed (overload)"),
                            (dropped, "messages the receiver process dropped (overload)"),
                            (c.store_refused, "readings the database refused"),
                            (c.shed_quarantine, "quarantine rows shed (database away)"),
                            *((n, f"requests shed ({reason})")
                              for reason, n in sorted(c.shed_requests.items())),
                            (c.lost_on_stop, "QoS 0 messages not stored at stop")):
            if count:
                found.append(f"{count:,} {what}")
        if not self._stopped_clean:
            found.append("stopped before the inbox was stored (QoS 1 messages come again "
                         "from the broker at the next start)")
        return found

    def snapshot(self) -> dict[str, Any]:
        self.counters.inbox = len(self._inbox) + len(self._shadow_inbox)
        return {"connection": self.link.state, **self.counters.__dict__,
                "degraded": self.degraded(),
                "database_error": self.health.last_error if self.health.down else "",
                "client_id": self.link.client_id,
                "persistent_session": not self.link.clean_session,
                "hub_lost": self.downtime.hub_lost,
                "started_at_ms": self.started_at_ms,
                "rejected_by_reason": dict(self.ingestor.rejected_by_reason),
                "receiver": (self.receiver.snapshot() if self.receiver is not None
                             else {"state": "thread"}),
                "jobs": self.jobs.snapshot()}

    def _hub_event(self) -> HubStatus:
        c = self.counters
        return HubStatus(
            connection=self.link.state, messages_per_s=c.messages_per_s,
            readings_per_s=c.readings_per_s, degraded=self.degraded(),
            shed_overload=c.shed_overload, inbox=c.inbox, shed_quarantine=c.shed_quarantine,
            shed_receiver=self.receiver.counters.dropped if self.receiver is not None else 0)

    def _watch(self) -> None:
        """Once a second: rates and the HUB live event. Never touches the store,
        so it keeps telling the truth while the writer waits on the database.
        Rates are over the last RATE_WINDOW_S: writes come in batches, and a
        per-second figure would read 0 between two of them."""
        samples: deque[tuple[float, int, int]] = deque()
        last_beat = time.monotonic()
        while not self._monitor_stop.wait(1.0):
            now = time.monotonic()
            c = self.counters
            samples.append((now, c.received, c.readings_written))
            while len(samples) > 2 and now - samples[0][0] > RATE_WINDOW_S:
                samples.popleft()
            if len(samples) >= 2:
                then, received, written = samples[0]
                span = max(now - then, 1e-6)
                c.messages_per_s = (c.received - received) / span
                c.readings_per_s = (c.readings_written - written) / span
            c.inbox = len(self._inbox) + len(self._shadow_inbox)
            try:
                self.bus.publish([self._hub_event()])
            except Exception:
                log.exception("publishing the hub status failed")
            if now - last_beat >= HEARTBEAT_EVERY_S - 0.05:
                last_beat = now
                self.publish_heartbeat()

    # ------------------------------------------------------------------ network thread
    def _on_message(self, topic: str, payload: bytes, token: AckToken | None = None) -> None:
        self.counters.received += 1
        message = Inbound(topic, payload, int(self.clock() * 1000))
        if topic.startswith("$aws/"):
            if len(self._shadow_inbox) >= self.inbox_limit:
                if topic.endswith("/shadow/get"):
                    # a read a device asks again (backoff, its clientToken): shed
                    # and counted, acknowledged, instead of holding the network
                    # thread (and every update behind it) for room
                    self.counters.shed_requests["shadow_get_queue_full"] += 1
                    if token is not None:
                        self.link.ack([token])
                    return
                if token is None:
                    self.counters.shed_overload += 1
                    return
                self._wait_for_room(self._shadow_inbox)
            self._shadow_inbox.append((message, token))
            self._wake.set()
            return
        if self.receiver is not None and _device_status(topic):
            # The receiver takes statuses in process mode: this is what the link's
            # session of an earlier thread-mode run still had queued, before the
            # link's UNSUBSCRIBE. Taken here it would race the receiver's readings
            # again; the receiver's SUBSCRIBE brings each device's retained status.
            if token is not None:
                self.link.ack([token])
            return
        size = len(self._inbox)
        if size >= self.inbox_limit:
            # QoS 0 telemetry promises nothing: shed, and say so; a status is
            # never shed (a lost "offline" shows a device online for minutes)
            if token is None and not _device_status(topic):
                self.counters.shed_overload += 1
                self._note_shed(topic, payload)
                return
            size = self._wait_for_room(self._inbox)
        if self._shed_by_topic:
            shed = self._take_shed(topic)
            if shed:
                message = Inbound(topic, payload, message.received_ms, shed)
        self._inbox.append((message, token))
        if size + 1 > self.counters.inbox_peak:
            self.counters.inbox_peak = size + 1
        if size + 1 >= MAX_BATCH:
            self._wake.set()

    def _on_batch(self, batch: Batch) -> None:
        """The receiver process's messages (its reader thread): telemetry and
        device statuses in the order of its one connection, into the same bounded
        inbox as the link's (the writer's Ingestor tells the two apart), with the
        same shedding and backpressure: QoS 0 telemetry is shed when the inbox is
        full, a status never (it waits for room, as QoS 1 does)."""
        inbox, limit, counters = self._inbox, self.inbox_limit, self.counters
        generation = batch.generation
        counters.received += len(batch.items)
        shed_by_topic = self._shed_by_topic
        for topic, payload, received_ms, mid in batch.items:
            size = len(inbox)
            if size >= limit:
                if not mid and not _device_status(topic):  # QoS 0: shed, say so
                    counters.shed_overload += 1
                    self._note_shed(topic, payload)
                    continue
                size = self._wait_for_room(inbox)
            shed = self._take_shed(topic) if shed_by_topic else ()
            inbox.append((Inbound(topic, payload, received_ms, shed),
                          (generation, mid) if mid else None))
        size = len(inbox)
        if size > counters.inbox_peak:
            counters.inbox_peak = size
        if size >= MAX_BATCH:
            self._wake.set()

    def _note_shed(self, topic: str, payload: bytes) -> None:
        """``topic``'s message with this payload was shed: its seq goes with the
        topic's next kept message, so the seq accounting does not await it as
        possibly late (it was received, and dropped here)."""
        seq = peek_seq(payload)
        if seq is None:
            return
        shed = self._shed_by_topic
        seqs = shed.get(topic)
        if seqs is None:
            if len(shed) < SHED_TOPICS_LIMIT:
                shed[topic] = [seq]
        elif len(seqs) < SHED_SEQS_LIMIT:
            seqs.append(seq)

    def _take_shed(self, topic: str) -> tuple[int, ...]:
        """The seqs shed on ``topic`` since its last kept message, for the one
        being kept now (both receive paths; asked only while any are held)."""
        seqs = self._shed_by_topic.pop(topic, None)
        return tuple(seqs) if seqs else ()

    def _on_status_path_state(self, state: str) -> None:
        """The receiver's state (``_on_receiver_state``), and the loss of the
        connection device statuses come on: a broker shutting down sends every
        device's Last Will there just before it closes, and the child hands them
        over before it says the connection is gone. Noted here, after them, the
        loss makes the writer undo them at once (outage_wills.py), as when they
        came on the link: the link's own loss may be noticed before they are in."""
        was = self._receiver_state
        self._on_receiver_state(state)
        if was == "connected" and state != "connected" and not self._stop.is_set():
            # when the child saw it: the Wills before it carry the child's receive
            # times, and the pipe between can lag past WILL_GRACE_S on a busy box
            lag = getattr(self.receiver, "state_lag_s", 0.0)
            self._link_lost_at = self.clock() - lag
            self._wake.set()

    def _ack(self, tokens: Sequence[AckToken]) -> None:
        """Each source acknowledges its own tokens and skips the other's."""
        self.link.ack(tokens)
        if self.receiver is not None:
            self.receiver.ack(tokens)

    def _wait_for_room(self, inbox: deque[tuple[Inbound, AckToken | None]]) -> int:
        """Backpressure for QoS 1: the network thread stops reading until the
        writer takes a batch, so TCP pushes back and the broker queues for our
        session (mosquitto 2.0 does not keep to a small Receive Maximum). It
        waits at most BACKPRESSURE_WAIT_S a message, so paho's loop still sends
        its keepalive and a stuck writer cannot silence the link."""
        deadline = time.monotonic() + BACKPRESSURE_WAIT_S
        while len(inbox) >= self.inbox_limit and not self._stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._wake.set()
            self._room.wait(min(left, 0.5))
            self._room.clear()
        return len(inbox)

    def _on_receiver_state(self, state: str) -> None:
        with self._state_lock:
            self._receiver_state = state
            self.downtime.link_state(self._hearing())
        if state != "connected":
            self._wake.set()

    def _hearing(self) -> str:
        """"connected" while telemetry can reach the hub: the link and, in
        process mode, the receiver both up; seq gaps outside are the hub's loss."""
        link = self._link_state
        if self.receiver is None or link != "connected":
            return link
        return self._receiver_state

    def _on_state(self, state: str) -> None:
        with self._state_lock:
            self._link_state = state
            self.downtime.link_state(self._hearing())
        if state == "connected":
            if self._listening_since is None:
                self._listening_since = time.monotonic()
        else:
            if self._listening_since is not None:  # it was connected: lost now
                self._link_lost_at = self.clock()
                self._wake.set()
            self._listening_since = None
        self.bus.set_connection_state(state)
        self.bus.publish([self._hub_event()])
        if state == "connected":
            self.publish_heartbeat()  # replaces the Last Will or goodbye consoles saw

    # ------------------------------------------------------------------ writer thread
    def _guard(self, stage: str, fn: Callable[[], object]) -> None:
        """A stage that fails is logged and counted; the hub goes on."""
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - counted and logged
            self._stage_failed(stage, exc)

    def _stage_failed(self, stage: str, exc: Exception) -> None:
        """Call from an ``except`` block: counted, and logged with its traceback."""
        self.counters.stage_failures += 1
        if not self.health.down:  # StoreHealth logs outages itself
            log.exception("hub stage %s failed: %s", stage, exc)

    def _flush_latest(self) -> None:
        self._guard("latest values", lambda: self.health.call(
            "latest values", self.store.telemetry.flush_latest))

    def _run(self) -> None:
        last_housekeeping = last_reload = last_rollout = last_alive = time.monotonic()
        last_latest = last_alive
        last_lost: float | None = None
        while True:
            stopping = self._stop.is_set()
            if not stopping:
                self._wake.wait(FLUSH_EVERY_S)
                self._wake.clear()
            self._guard("shadow and jobs requests", self._drain_requests)
            self._guard("telemetry", functools.partial(self._drain_telemetry, final=stopping))
            if stopping:
                self._guard("unwritten rows", self._retry_leftovers)
                break
            now = time.monotonic()
            if self.health.down:
                self._guard("unwritten rows", self._retry_leftovers)
                continue  # the stages below need the database; they resume after
            if now - last_latest >= LATEST_EVERY_S:
                last_latest = now
                self._flush_latest()
            if now - last_rollout >= ROLLOUT_EVERY_S:
                last_rollout = now
                self._rollout_tick()
            lost = self._link_lost_at
            if lost is not None and lost != last_lost:
                last_housekeeping, last_lost = now, lost
                self._after_link_loss()
            elif now - last_housekeeping >= HOUSEKEEPING_EVERY_S:
                last_housekeeping = now
                self._guard("housekeeping", self._housekeeping)
            if now - last_alive >= ALIVE_EVERY_S:
                last_alive = now
                # through StoreHealth: a locked database shows as degraded, not as a stall
                self._guard("hub state", lambda: self.health.call("hub state",
                                                                  self.downtime.save))
            if now - last_reload >= RELOAD_EVERY_S:
                last_reload = now
                self._guard("registry reload", self._reload_registry)

    def _after_link_loss(self) -> None:
        """Housekeeping at once after a link loss, so the Last Wills of a dying
        broker are undone at once (outage_wills.py). Those Wills came before the
        loss on the same connection, but may have reached the inbox after this
        turn's drain (the network thread appends them, then notes the loss):
        they are drained first, or the devices would show offline until the
        next housekeeping five seconds later."""
        self._guard("telemetry", functools.partial(self._drain_telemetry, final=False))
        self._guard("housekeeping", self._housekeeping)

    def _drain_requests(self) -> None:
        """Shadow and jobs requests: each answered, then acknowledged. A database
        error puts the request back at the front of its queue, unacknowledged,
        and marks the database down (the status line says so); it is retried
        with the telemetry's backoff, so a device's update survives an outage
        instead of being acknowledged and lost. Any other failure drops the
        request with a log line: the device asks again (jobs answers with an
        error itself). With telemetry waiting, it returns after
        REQUESTS_SLICE_S (and wakes the writer for the rest)."""
        try:
            self._answer_requests()
        finally:
            self.jobs.forget_prefetched()
            self.shadows.forget_prefetched()

    def _prefetch_requests(self) -> None:
        """The next PREFETCH_REQUESTS requests' shadows (gets) and pending jobs
        read in one query each, so a connect storm costs a query per batch of
        devices, not one or two per request. A failure here is left to the
        requests themselves (each reads what was not read)."""
        jobs: list[str] = []
        gets: list[str] = []
        try:
            # copied in one C call: the network thread appends meanwhile
            ahead = list(itertools.islice(self._shadow_inbox, PREFETCH_REQUESTS))
        except RuntimeError:  # mutated under the copy all the same: read per request
            return
        for message, _ in ahead:
            thing = _request_thing(message.topic)
            if thing is None:
                continue
            if message.topic.startswith("$aws/things/" + thing + "/jobs/"):
                if not message.topic.endswith(_JOBS_REPLIES):  # our own, come back
                    jobs.append(thing)
            elif message.topic.endswith(("/shadow/get", "/shadow/update")):
                gets.append(thing)
        try:
            self.jobs.prefetch(jobs)
            self.shadows.prefetch(gets)
        except Exception as exc:  # noqa: BLE001 - the per-request reads still answer
            log.debug("prefetching requests failed: %s", exc)

    def _answer_requests(self) -> None:
        # the turn is measured in the writer's CPU, not wall time: on a busy box
        # 0.1 s of wall clock held a few dozen requests against a whole telemetry
        # batch, and the devices' retries (a shadow get every 5 s until
        # answered) kept the request inbox full
        started = time.thread_time()
        handled = 0
        while self._shadow_inbox:
            if self.health.down and time.monotonic() < self._retry_at:
                return
            if handled % PREFETCH_REQUESTS == 0:
                self._prefetch_requests()
            handled += 1
            message, token = self._shadow_inbox.popleft()
            self._room.set()
            now_s = int(self.clock())
            events: list[FleetEvent] = []
            jobs = parse_jobs_topic(message.topic) is not None
            try:
                if jobs:
                    events = self.jobs.handle(message.topic, message.payload, now_s)
                else:
                    events = self.shadows.handle(message.topic, message.payload, now_s)
            except Exception as exc:
                if is_store_error(exc):
                    self.health.failed("jobs requests" if jobs else "shadow requests", exc)
                    self._shadow_inbox.appendleft((message, token))
                    self._failed_write()
                    return
                self.counters.stage_failures += 1
                log.exception("request on %s failed", message.topic[:200])
            if token is not None:
                self.link.ack([token])
            self._guard("live events", functools.partial(self.bus.publish, events))
            if self._inbox and time.thread_time() - started >= REQUESTS_SLICE_S:
                self._wake.set()  # telemetry's turn; the rest after it
                return

    def _drain_telemetry(self, *, final: bool = False) -> None:
        """Batches from the inbox into the store. ``final`` (stopping): what is in
        the inbox now, retried until the stop deadline; not what keeps arriving
        (the broker keeps that for the next start), or a busy hub never stops."""
        started = time.monotonic()
        deadline = self._stop_deadline
        budget = len(self._inbox) if final else -1
        while True:
            if final and time.monotonic() >= deadline:
                return
            if self.health.down and time.monotonic() < self._retry_at:
                if not final or time.monotonic() >= deadline:
                    return
                time.sleep(min(0.1, max(0.0, self._retry_at - time.monotonic())))
                continue
            if self._pending is None:
                if not self._inbox or budget == 0:
                    return
                take = min(len(self._inbox), self.batch_limit)
                if budget > 0:
                    take = min(take, budget)
                    budget -= take
                items = [self._inbox.popleft() for _ in range(take)]
                self._room.set()
                batch = [message for message, _ in items]
                tokens = [token for _, token in items if token is not None]
                # nobody listening (`smartiot hub`: consoles take live data from
                # the broker): no per-message live event to make and drop
                self.ingestor.live_events = self.bus.subscriber_count > 0
                result = self.ingestor.process(batch, int(self.clock() * 1000))
                self.counters.processed += len(batch)
                self._pending = _Pending(result, tokens, len(batch))
            if not self._write_pending():
                if not final:
                    return
                continue
            if not final and (self._shadow_inbox
                              or time.monotonic() - started >= DRAIN_SLICE_S):
                # one batch, then requests get their turn; or the periodic stages
                self._wake.set()  # more to do; let the periodic stages run first
                return

    def _write_by_device(self, readings: Sequence[Reading],
                         error: BaseException | None = None) -> int | None:
        """A batch that keeps failing, written one device at a time: when some
        devices' rows go in and others' do not, the database is up and refuses
        those rows (a value it cannot hold), so they are dropped, logged and
        counted (``store_refused``) instead of holding back every device for
        ever. None when nothing went in: the database is away, retry later."""
        by_device: dict[str, list[Reading]] = {}
        for reading in readings:
            by_device.setdefault(reading.device_id, []).append(reading)
        if len(by_device) == 1 and error is not None and rows_refused(error):
            # One device's rows alone, refused as values (not an outage): the
            # comparison with other devices is impossible, the error says enough.
            device_id, rows = next(iter(by_device.items()))
            self._count_refused([(device_id, len(rows), error)])
            return 0
        if len(by_device) < 2:
            return None
        written, refused, took = 0, [], 0
        for device_id, rows in by_device.items():
            try:
                written += self.health.call("telemetry", self.store.telemetry.write_batch,
                                            rows)
                took += 1
            except Exception as error:  # noqa: BLE001 - counted and logged below
                refused.append((device_id, len(rows), error))
                if took == 0 and len(refused) >= 2:
                    return None  # two refusals and nothing taken: the database is away
        if took == 0:
            return None
        self._count_refused(refused)
        return written

    def _count_refused(self, refused: Sequence[tuple[str, int, BaseException]]) -> None:
        for device_id, count, problem in refused:
            self.counters.store_refused += count
            first_line = (str(problem).strip().splitlines() or [""])[0][:200]
            log.error("the database refused %d readings of %s (%s: %s); they are dropped",
                      count, device_id, type(problem).__name__, first_line)

    def _failed_write(self) -> None:
        self._retry_at = time.monotonic() + self._retry_delay
        self._retry_delay = min(self._retry_delay * 2, RETRY_MAX_S)

    def _write_pending(self) -> bool:
        """Telemetry first (then the broker is told), then the rest of the batch's
        stages, each on its own; False when the telemetry did not commit."""
        pending = self._pending
        assert pending is not None
        result = pending.result
        if not pending.written:
            try:
                written = self.health.call("telemetry", self.store.telemetry.write_batch,
                                           result.readings)
            except Exception as error:  # noqa: BLE001 - StoreHealth logged it; retried
                self.counters.write_failures += 1
                pending.failures += 1
                split_now = pending.failures == SPLIT_AFTER_FAILURES or (
                    pending.failures > SPLIT_AFTER_FAILURES and pending.failures % 10 == 0)
                split = self._write_by_device(result.readings, error) if split_now else None
                if split is None:
                    self._failed_write()
                    return False
                written = split
            pending.written = True
            self.counters.readings_written += written
            self.counters.quarantined += len(result.quarantined)
        self._pending = None
        self._guard("acknowledge", lambda: self._ack(pending.tokens))
        for stats in self.downtime.attribute(self.ingestor.take_dirty_stats()):
            self.ingestor.stats[stats.device_id] = stats  # a gap moved to hub_lost
            self._pending_stats[stats.device_id] = stats
        self._pending_quarantine.extend(result.quarantined)
        excess = len(self._pending_quarantine) - MAX_PENDING_QUARANTINE
        if excess > 0:
            for _ in range(excess):
                self._pending_quarantine.popleft()
            self.counters.shed_quarantine += excess
        self._retry_leftovers()
        events = result.events
        if self.alerting is not None:
            get = self.cache.get
            devices = ((device, samples) for device, samples in
                       ((get(device_id), samples) for device_id, samples in result.samples.items())
                       if device is not None)
            try:
                events.extend(self.alerting.process_batch(
                    devices, lambda device, exc: self._stage_failed("alert evaluation", exc)))
            except Exception as exc:  # noqa: BLE001 - as _guard: counted, logged
                self._stage_failed("alert evaluation", exc)
        self._guard("live events", lambda: self.bus.publish(events))
        return True

    def _retry_leftovers(self) -> None:
        """Registry, link statistics and quarantine rows not yet written; the
        outage ends when none is left (and no telemetry batch waits)."""
        if self.health.down and time.monotonic() < self._retry_at:
            return
        ok = True
        try:
            self.health.call("registry", self.cache.flush)
        except Exception:  # noqa: BLE001 - logged by StoreHealth, retried
            ok = False
        if self._pending_stats:
            stats = list(self._pending_stats.values())
            try:
                self.health.call("link statistics", self.store.link_stats.upsert_many, stats)
                for s in stats:
                    if self._pending_stats.get(s.device_id) is s:
                        del self._pending_stats[s.device_id]
            except Exception:  # noqa: BLE001 - logged by StoreHealth, retried
                ok = False
        if self._pending_quarantine:
            rows = list(self._pending_quarantine)
            try:
                self.health.call("quarantine", self.store.quarantine.add_many, rows)
                for _ in rows:
                    self._pending_quarantine.popleft()
            except Exception:  # noqa: BLE001 - logged by StoreHealth, retried
                ok = False
        if self._pending is not None and not self._pending.written:
            ok = False
        if not ok:
            self._failed_write()
            return
        if self.health.down:
            self.health.recovered(self._count_outage)
            self._wake.set()
        self._retry_delay = RETRY_MIN_S

    def _count_outage(self, lasted: float) -> None:
        c = self.counters
        c.outages += 1
        c.last_outage_s = lasted
        c.longest_outage_s = max(c.longest_outage_s, lasted)

    def _rollout_tick(self) -> None:
        """Releases, aborts, timeouts and retries; then the devices' step timers."""
        for part in (self.rollout, self.jobs):
            try:
                part.tick()
            except Exception:
                log.exception("%s tick failed", type(part).__name__)

    def _housekeeping(self) -> None:
        now = datetime.fromtimestamp(self.clock(), UTC)
        # A hub that was away cannot tell a silent device from its own absence:
        # devices go offline for silence only once it has listened for
        # ``stale_after`` (what the broker queued meanwhile is being stored and
        # marks them seen); their Last Will still makes them offline at once.
        listening = self._listening_since
        judged = listening is not None and (
            time.monotonic() - listening >= self.stale_after.total_seconds())
        events: list[FleetEvent] = [DeviceChanged(d) for d in (
            self.cache.mark_stale(now, self.stale_after) if judged else ())]
        if listening is None and self._link_lost_at is not None:
            lost = datetime.fromtimestamp(self._link_lost_at, UTC)
            events.extend(DeviceChanged(d) for d in restore_outage_wills(self.cache, lost, now))
        self._guard("registry", lambda: self.health.call("registry", self.cache.flush))
        if self.alerting is not None:
            self.alerting.set_devices(self.cache.all())
            events.extend(self.alerting.tick(now))
        self.bus.publish(events)
        self.heap.maybe_settle()
        self._fold_rollups()

    _folder: threading.Thread | None = None
    _folded_at = float("-inf")

    def _fold_rollups(self) -> None:
        """Every ``FOLD_EVERY_S``, in a thread of its own (a fold after a bulk of
        data takes seconds): the minute rollups are folded here, so the first
        chart after it does not wait 15-20 s folding them itself. The store
        folds in short transactions, between the writer's batches."""
        fold = getattr(self.store.telemetry, "fold_all_minutes", None)
        now = time.monotonic()
        if (fold is None or now - self._folded_at < FOLD_EVERY_S or self._stop.is_set()
                or (self._folder is not None and self._folder.is_alive())):
            return
        self._folded_at = now

        def run() -> None:
            try:
                fold()
            except Exception as exc:  # noqa: BLE001 - counted and logged
                self._stage_failed("minute rollups", exc)

        self._folder = threading.Thread(target=run, name="hub-fold-minutes", daemon=True)
        self._folder.start()

    def _reload_registry(self) -> None:
        """Pick up what consoles changed (names, tags, decommissioning)."""
        self.health.call("registry", self.cache.flush)
        self.health.call("registry", self.cache.load)

    def device(self, device_id: str) -> Device | None:
        return self.cache.get(device_id)


def _request_thing(topic: str) -> str | None:
    """The thing of a ``$aws/things/<thing>/...`` request topic."""
    if not topic.startswith("$aws/things/"):
        return None
    end = topic.find("/", 12)
    return topic[12:end] if end > 12 else None
