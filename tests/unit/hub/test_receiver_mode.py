"""Where the hub receives telemetry: the profile key, its check, and the hub's
choice of filters per mode (no broker: the hub is built, not started)."""

from __future__ import annotations

import ssl

import pytest

from core.config import load_config
from core.errors import ConfigError
from core.protocol.topics import TELEMETRY_FILTER
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.hub import Hub


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
    assert TELEMETRY_FILTER not in hub.link.filters
    assert hub.receiver.filters == [TELEMETRY_FILTER]
    # its own persistent session, next to the link's
    assert hub.receiver.client_id == "hub-a-rx" and not hub.receiver.clean_session
    # a telemetry subscription the link's session kept from a thread-mode run is dropped
    assert hub.link.unsubscribe == [TELEMETRY_FILTER]
    threaded = Hub(store, EventBus(), "127.0.0.1", 1883, receiver="thread")
    assert threaded.receiver is None and TELEMETRY_FILTER in threaded.link.filters
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
