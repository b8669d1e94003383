"""Where the hub receives telemetry: the profile key, its check, the hub's
choice of filters per mode and what a full inbox sheds of the receiver's
messages (no broker: the hub is built, not started)."""

from __future__ import annotations

import ssl
import threading
import time

import pytest

from core.config import load_config
from core.errors import ConfigError
from core.protocol.topics import STATUS_FILTER, TELEMETRY_FILTER
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub
from plugins.local.hub.receiver_process import Batch


@pytest.fixture
def store(tmp_path):
    s = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield s
    s.close()


def test_the_profile_receives_in_a_process_by_default_and_checks_the_key(tmp_path):
    path = tmp_path / "config.toml"
    assert load_config(path, tmp_path / "data", env={}).profile.hub_receiver == "process"
    chosen = load_config(path, tmp_path / "data", env={"SMARTIOT_HUB_RECEIVER": "thread"})
    assert chosen.profile.hub_receiver == "thread"
    path.write_text('[profiles.local]\nhub_receiver = "fork"\n')
    with pytest.raises(ConfigError) as info:
        load_config(path, tmp_path / "data", env={})
    assert "profiles.local.hub_receiver" in str(info.value) and "'fork'" in str(info.value)


def test_process_mode_leaves_telemetry_to_the_receiver(store):
    hub = Hub(store, EventBus(), "127.0.0.1", 1883, receiver="process", client_id="hub-a")
    assert hub.receiver is not None
    # a device's statuses come with its telemetry, on the receiver's one connection
    assert TELEMETRY_FILTER not in hub.link.filters and STATUS_FILTER not in hub.link.filters
    assert hub.receiver.filters == [TELEMETRY_FILTER, STATUS_FILTER]
    # the link keeps the hub's requests
    assert hub.link.filters == ["$aws/things/+/shadow/+", "$aws/things/+/jobs/#"]
    # its own persistent session, next to the link's
    assert hub.receiver.client_id == "hub-a-rx" and not hub.receiver.clean_session
    # what the link's session kept from a thread-mode run is dropped
    assert hub.link.unsubscribe == [TELEMETRY_FILTER, STATUS_FILTER]
    threaded = Hub(store, EventBus(), "127.0.0.1", 1883, receiver="thread")
    assert threaded.receiver is None
    assert TELEMETRY_FILTER in threaded.link.filters and STATUS_FILTER in threaded.link.filters
    assert threaded.link.unsubscribe == []


def test_tls_without_a_factory_falls_back_to_the_thread(store):
    hub = Hub(store, EventBus(), "127.0.0.1", 8883, receiver="process",
              tls_context=ssl.create_default_context())
    assert hub.receiver is None and hub.receiver_mode == "thread"
    with_factory = Hub(store, EventBus(), "127.0.0.1", 8883, receiver="process",
                       tls_context=ssl.create_default_context(),
                       tls_factory=ssl.create_default_context)
    assert with_factory.receiver is not None


def test_an_unknown_mode_is_refused(store):
    with pytest.raises(ValueError, match="receiver must be one of thread, process"):
        Hub(store, EventBus(), "127.0.0.1", 1883, receiver="fork")


def test_a_full_inbox_sheds_qos0_telemetry_from_the_receiver_but_never_a_status(store):
    """A status waits for room (a lost "offline" shows a device online for
    minutes); QoS 0 telemetry beyond the bound is shed and counted."""
    hub = Hub(store, EventBus(), "127.0.0.1", 1883, receiver="process", inbox_limit=2)
    telemetry = [(f"dt/acme/d{i}/telemetry", b"{}", 1, 0) for i in range(3)]
    status = ("dt/acme/d0/status", b'{"state":"offline"}', 2, 0)  # QoS 0: no mid
    handing = threading.Thread(target=hub._on_batch,
                               args=(Batch(-1_000_001, [*telemetry, status]),))
    handing.start()
    deadline = time.monotonic() + 10
    while hub.counters.shed_overload < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert hub.counters.shed_overload == 1 and handing.is_alive()  # the status waits
    hub._inbox.popleft()  # the writer takes one
    hub._room.set()
    handing.join(10)
    assert not handing.is_alive()
    assert [m.topic for m, _ in hub._inbox] == ["dt/acme/d1/telemetry", "dt/acme/d0/status"]
    assert hub.counters.shed_overload == 1
