"""The console's own hub moves into a child process once the fleet outgrows it.

The one-process console (the default ``local`` profile) is the lightest set-up
for a few hundred devices, and the wrong one for thousands: the hub's writer
and the window then share one interpreter, the window stalls for a tenth of a
second at a time and the hub, held back to keep the window first, sheds
(docs/benchmarks.md, "Console at fleet scale"). ``hub_process = true`` avoids
that from the start, but only someone who read the docs sets it, and the fleet
that outgrows the console usually starts small: a simulator ramping up, devices
being installed. So the console watches its hub's registry and, past
``hub_process_above`` devices, hands the hub over to the child process that
``hub_process = true`` would have started (plugins.local.hub_process), and from
then on follows it as a team console does.

Nothing the broker accepted is lost in the move: the hub stops as it does at
every console close (its inbox drained into the store and acknowledged), the
child resumes the same persistent session (the same client ids), and the
broker keeps what arrives in between for it, as across any hub restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core.config import Config
from core.protocol.topics import TELEMETRY_FILTER

log = logging.getLogger(__name__)

Login = tuple[str | None, str | None]
LinkFactory = Callable[[Any, Any], Any]  # (filters, on_message) -> MqttLink

CHECK_EVERY_S = 2.0
# The hub's drain, the child's start and its first connection; close() waits
# this long for a move in progress before it stops whatever is running.
MOVE_WAIT_S = 60.0


@dataclass(frozen=True)
class HubChildWiring:
    """What starting the hub child and following it needs, from the backend's
    assembly: the configuration, the broker and its logins, the console's
    link factory."""

    config: Config
    broker_url: str
    host: str
    port: int
    tls: bool
    protocol: int
    hub_login: Login
    console_login: Login
    link: LinkFactory


def start_hub_child(backend: Any, wiring: HubChildWiring) -> LinkFactory:
    """The hub as a child process and the console's telemetry through a
    receiver child of its own (plugins.local.live_receiver); returns the link
    factory the console's observer uses (statuses and the hub's heartbeat:
    telemetry comes through the receiver)."""
    import uuid

    from plugins.local.hub_process import HubProcess
    from plugins.local.live_receiver import FleetReceiver

    backend.hub_process = HubProcess(wiring.config, wiring.broker_url,
                                     hub_login=wiring.hub_login,
                                     console_login=wiring.console_login).start()
    backend.receiver = FleetReceiver(
        wiring.host, wiring.port, backend.bus,
        client_id=f"smartiot-live-{uuid.uuid4().hex[:8]}",
        username=wiring.console_login[0], password=wiring.console_login[1],
        tls=wiring.tls, protocol=wiring.protocol).start()

    def observer_link(filters: Any, on_message: Any) -> Any:
        return wiring.link(tuple(f for f in filters if f != TELEMETRY_FILTER), on_message)

    return observer_link


@dataclass(frozen=True)
class Move:
    """What a finished move reports (the status bar's tooltip, the log)."""

    devices: int
    drained: bool      # the hub's inbox was stored before it stopped
    seconds: float     # from the decision to the child following
    error: str = ""    # the child did not start: the hub went back into the console


class HubHandover:
    """Watches the in-console hub's device count on a thread of its own and,
    past ``above``, moves the hub out once. ``restart_in_console`` builds and
    starts a hub in the console again, for a child that fails to start."""

    def __init__(self, backend: Any, wiring: HubChildWiring, *, above: int,
                 restart_in_console: Callable[[], Any],
                 check_every_s: float = CHECK_EVERY_S) -> None:
        self.backend = backend
        self.wiring = wiring
        self.above = above
        self.restart_in_console = restart_in_console
        self.check_every_s = check_every_s
        self.moved: Move | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # a move and close() do not interleave
        self._thread = threading.Thread(target=self._watch, name="hub-handover", daemon=True)

    def start(self) -> HubHandover:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Before the backend closes: no move starts after this, and one under
        way finishes first (its parts are then the backend's to stop)."""
        self._stop.set()
        with self._lock:
            pass
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(MOVE_WAIT_S)

    def _watch(self) -> None:
        while not self._stop.wait(self.check_every_s):
            hub = self.backend.hub
            if hub is None:
                return
            if len(hub.cache) > self.above:
                self.move()
                return

    def move(self) -> Move | None:
        """Stop the hub here, start the child, follow it. Returns None when
        the backend is closing or the hub is already elsewhere."""
        import time

        from plugins.local.hub.observer import TeamObserver

        with self._lock:
            hub = self.backend.hub
            if hub is None or self._stop.is_set():
                return None
            started = time.monotonic()
            devices = len(hub.cache)
            log.warning("the fleet has %d devices, more than hub_process_above = %d: the hub "
                        "moves out of the console's process into a child process of its own",
                        devices, self.above)
            drained = hub.stop()
            self.backend.hub = None
            error = ""
            try:
                observer_link = start_hub_child(self.backend, self.wiring)
            except Exception as exc:  # the console must go on with a hub
                error = str(exc) or type(exc).__name__
                log.exception("the hub process did not start; the hub goes back into the "
                              "console's process")
                self._stop_children()
                self.backend.hub = self.restart_in_console()
            else:
                store = self.backend.store
                self.backend.observer = TeamObserver(observer_link, self.backend.bus,
                                                     store.registry, store.alerts)
                self.backend.observer.start()
            self.moved = Move(devices, drained, time.monotonic() - started, error)
        log.warning("hub moved in %.1f s (%s)", self.moved.seconds,
                    "inbox stored" if drained else "inbox left to the broker's redelivery")
        return self.moved

    def _stop_children(self) -> None:
        for name in ("receiver", "hub_process"):
            part = getattr(self.backend, name)
            if part is not None:
                try:
                    part.stop()
                except Exception:  # best effort on the way back
                    log.exception("stopping %s failed", name)
                setattr(self.backend, name, None)
