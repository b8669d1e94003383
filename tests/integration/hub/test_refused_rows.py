"""Rows the database refuses (a value it cannot hold) cost the other devices
nothing: a batch that keeps failing is written one device at a time, the
refused device's readings are dropped, logged and counted, everyone else's are
stored, and the hub is not left degraded. The store here is the real SQLite
store behind a wrapper that refuses one device's rows, passed to the hub like
any store; the devices are the project's simulator on a private mosquitto."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from core.model import Reading
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from tests.chaos.rig import PersistentMosquitto, Witness, fleet, stored_keys
from tests.integration.hub.conftest import wait_until

REFUSED = "rfz-00001"


class RefusingTelemetry:
    def __init__(self, inner, refused: str = REFUSED) -> None:
        self._inner = inner
        self._refused = refused

    def write_batch(self, readings: Sequence[Reading]) -> int:
        if any(r.device_id == self._refused for r in readings):
            raise OverflowError(f"value out of range for {self._refused}")
        return self._inner.write_batch(readings)

    def __getattr__(self, name: str):
        return getattr(self._inner, name)


class RefusingStore:
    def __init__(self, store: Store, refused: str = REFUSED) -> None:
        self._store = store
        self.telemetry = RefusingTelemetry(store.telemetry, refused)

    def __getattr__(self, name: str):
        return getattr(self._store, name)


def test_one_devices_refused_rows_do_not_hold_back_the_others(tmp_path: Path) -> None:
    broker = PersistentMosquitto().start()
    db = tmp_path / "hub.db"
    real = Store.open(f"sqlite:///{db}")
    hub = Hub(RefusingStore(real), EventBus(), broker.host, broker.port)  # type: ignore[arg-type]
    hub.start()
    witness = Witness(broker.host, broker.port, f"rfz-{time.monotonic_ns()}")
    running = None
    try:
        assert hub.wait_connected(10)
        running = fleet(broker.url, 4, prefix="rfz", interval_s=0.2)
        wait_until(lambda: hub.counters.store_refused > 0, 60, "nothing was refused")
        time.sleep(2.0)
        running.stop()
        running = None
        time.sleep(1.0)
        expected = {k for k in witness.snapshot() if k[0] != REFUSED}
        wait_until(lambda: expected <= set(stored_keys(db)), 60,
                   "the other devices' readings were held back by one device's rows")
        assert not any(k[0] == REFUSED for k in stored_keys(db))
        wait_until(lambda: hub.degraded() == "", 30, "the hub stayed degraded")
        assert any("readings the database refused" in p for p in hub.problems())
    finally:
        if running is not None:
            running.stop()
        witness.close()
        hub.stop(timeout_s=5)
        real.close()
        broker.stop()


def test_a_batch_holding_only_the_refused_devices_rows_is_not_retried_for_ever(
        tmp_path: Path) -> None:
    """On a quiet or loaded hub a batch can hold one device's readings only, so
    there is no other device to compare with: the error itself (a value, not
    a connection) says the rows are refused, and the hub goes on."""
    broker = PersistentMosquitto().start()
    real = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    hub = Hub(RefusingStore(real, "solo-00000"), EventBus(), broker.host,  # type: ignore[arg-type]
              broker.port)
    hub.start()
    running = None
    try:
        assert hub.wait_connected(10)
        running = fleet(broker.url, 1, prefix="solo", interval_s=0.2)
        wait_until(lambda: hub.counters.store_refused > 0, 60,
                   "the lone device's refused rows were retried for ever")
        running.stop()
        running = None
        wait_until(lambda: hub.degraded() == "", 30, "the hub stayed degraded")
    finally:
        if running is not None:
            running.stop()
        hub.stop(timeout_s=5)
        real.close()
        broker.stop()
