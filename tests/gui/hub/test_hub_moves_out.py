"""The console's own hub moves into a child process when the fleet outgrows it
(``hub_process_above``): the real window on the default local profile (embedded
broker, SQLite, the hub in the console's process), the simulator growing past
the threshold, and an independent QoS 1 subscriber as witness of what the
broker accepted. The move must lose nothing, leave no hub in the window's
process, and the window must go on showing the fleet through the child."""

from __future__ import annotations

import dataclasses
import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from core.context import AppContext
from core.plugins import PluginManager
from core.protocol.topics import TELEMETRY_FILTER
from plugins.local.backend import EMBEDDED_CONSOLE
from simulator.api import RunningFleet
from simulator.faults import FaultPlan
from simulator.fleet import DeviceGroup
from simulator.scenario import Scenario
from tests.chaos.rig import stored_keys

pytestmark = pytest.mark.gui

THRESHOLD = 5
DEVICES = 8


class Witness:
    """Every telemetry key (device, metric, ts) the broker delivered to a
    persistent QoS 1 session of its own, with the console's login."""

    def __init__(self, url: str, login: tuple[str | None, str | None]) -> None:
        host, port = url.removeprefix("mqtt://").split(":")
        self.keys: set[tuple[str, str, int]] = set()
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="handover-witness",
                                  clean_session=False)
        if login[0]:
            self.client.username_pw_set(login[0], login[1])
        self.client.on_connect = lambda c, *_: c.subscribe(TELEMETRY_FILTER, qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._message
        self.client.connect(host, int(port))
        self.client.loop_start()
        assert subscribed.wait(15), "the witness could not subscribe"

    def _message(self, client, userdata, message) -> None:
        body = json.loads(message.payload)
        with self._lock:
            self.keys.update((body["device_id"], m, int(body["ts"])) for m in body["metrics"])

    def snapshot(self) -> set[tuple[str, str, int]]:
        with self._lock:
            return set(self.keys)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def growing_console(config, make_window, qtbot):
    profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False,
                                  hub_process=False, hub_process_above=THRESHOLD)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager(entry_points=False, blocked=()))
    backend = context.backend
    window = make_window(context, show=True)
    witness = Witness(backend.broker.url, backend.broker.console_login(EMBEDDED_CONSOLE))
    yield window, backend, context, witness
    witness.close()
    window.close()
    context.close()


def test_the_hub_moves_out_of_the_console_as_the_fleet_grows_and_loses_nothing(
        growing_console, qtbot, tmp_path):
    window, backend, context, witness = growing_console
    assert backend.hub is not None and backend.hub_process is None
    assert backend.handover is not None
    window.show_page("devices")
    devices = window.page_widget("devices")

    fleet = RunningFleet(Scenario("grow", (DeviceGroup(
        "env", "environmental", DEVICES, org="site", interval_s=0.5, id_prefix="grow"),),
        FaultPlan(())), on_broker=backend.broker, telemetry_qos=1,
        client_id_prefix="grow-").start()
    try:
        qtbot.waitUntil(lambda: backend.handover.moved is not None, timeout=60_000)
        move = backend.handover.moved
        assert move.error == "" and move.devices > THRESHOLD
        assert move.drained, "the console's hub stopped with its inbox not stored"
        # the hub now runs beside the window, not in its process
        assert backend.hub is None
        assert backend.hub_process.alive() and backend.receiver is not None
        assert backend.observer is not None
        assert not [t.name for t in threading.enumerate() if t.name == "smartiot-hub-writer"]

        # the window follows the child: every device listed, last seen moves
        qtbot.waitUntil(lambda: devices.model.rowCount() == DEVICES, timeout=30_000)

        def last_seen(device_id):
            return devices.model._rows[devices.model.row_of(device_id)].last_seen_s

        qtbot.waitUntil(lambda: last_seen("grow-00001") is not None, timeout=20_000)
        seen = last_seen("grow-00001")
        qtbot.waitUntil(lambda: last_seen("grow-00001") > seen, timeout=20_000)
        # and the status bar shows the hub as one that runs elsewhere, online
        status = window.status_widgets["local.hub"]
        qtbot.waitUntil(lambda: status.hub == "online", timeout=30_000)
        time.sleep(2)  # the child stores for a while too
    finally:
        fleet.stop()

    # Every reading the broker accepted, before, during and after the move,
    # is stored exactly once
    delivered = witness.snapshot()
    assert delivered
    db_path = context.config.database_url.removeprefix("sqlite:///")
    qtbot.waitUntil(lambda: delivered <= set(stored_keys(db_path)), timeout=60_000)
    stored = stored_keys(db_path)
    assert not [k for k in delivered if stored[k] != 1]
    # and the hub's seq accounting saw no gap in any device's stream
    stats = backend.store.link_stats.list()
    assert {s.device_id for s in stats} >= set(fleet.device_ids)
    assert [(s.device_id, s.lost) for s in stats if s.lost] == []
