"""A console following a hub that runs elsewhere hears every device's status on
the broker and shows it. Each status used to be looked up in the registry on
its own, on paho's thread in the window's process: 10,000 devices coming
online (a fleet started, a broker restarted, the console subscribing to their
retained statuses) were 20,000 queries holding the GIL against the window for
tens of seconds. They are gathered and looked up together now; every device
still ends up showing what it said last."""

from __future__ import annotations

import uuid
from dataclasses import replace

from sqlalchemy import event

from core.model import Device, DeviceStatus
from core.model.events import DeviceChanged
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.mqtt_link import MqttLink
from plugins.local.hub.observer import TeamObserver
from tests.integration.hub.conftest import wait_until
from tests.mqtt_recorder import Recorder

DEVICES = 600


def test_a_burst_of_statuses_is_looked_up_together_and_the_last_word_wins(
        mosquitto_broker, tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'console.db'}")
    ids = [f"m-{i:04d}" for i in range(DEVICES)]
    store.registry.upsert_many([Device(d, device_type="meter", organization="plant",
                                       tags=frozenset({"line-2"})) for d in ids])
    store.registry.upsert(Device("gone-1", status=DeviceStatus.DECOMMISSIONED))
    bus = EventBus()
    batches: list[list[DeviceChanged]] = []
    bus.subscribe(lambda events: batches.append(
        [e for e in events if isinstance(e, DeviceChanged)]))
    statements = []
    event.listen(store.engine, "before_cursor_execute",
                 lambda *args: statements.append(args[2]))

    def link(filters, on_message):
        return MqttLink(mosquitto_broker.host, mosquitto_broker.port,
                        client_id=f"console-{uuid.uuid4().hex[:8]}", filters=filters,
                        on_message=on_message)

    observer = TeamObserver(link, bus, store.registry, store.alerts)
    observer.start()
    sender = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["nothing/here"])
    try:
        assert observer.link.wait_subscribed(10)
        statements.clear()
        sender.publish("dt/plant/m-0000/status", b'{"state":"offline"}')
        for device_id in ids:
            sender.publish(f"dt/plant/{device_id}/status", b'{"state":"online","type":"meter"}')
        sender.publish("dt/plant/m-0001/status", b'{"state":"offline","reason":"unplugged"}')
        sender.publish("dt/plant/gone-1/status", b'{"state":"online"}')
        sender.publish("dt/plant/nobody-9/status", b'{"state":"online"}')

        def shown() -> dict[str, DeviceChanged]:
            last: dict[str, DeviceChanged] = {}
            for batch in list(batches):
                for e in batch:
                    last[e.device.device_id] = e
            return last

        wait_until(lambda: len(shown()) == DEVICES
                   and shown()["m-0001"].device.status is DeviceStatus.OFFLINE,
                   timeout=30, message="not every device's status reached the views")
    finally:
        sender.close()
        observer.stop()
    last = shown()
    assert set(last) == set(ids)  # the decommissioned and the unknown are not shown
    assert {d: e.device.status for d, e in last.items() if e.device.status
            is not DeviceStatus.ONLINE} == {"m-0001": DeviceStatus.OFFLINE}
    # the whole record, as the registry has it, with the status the device said
    sample = last["m-0123"].device
    assert sample == replace(store.registry.get("m-0123"), status=DeviceStatus.ONLINE)
    assert sample.tags == frozenset({"line-2"}) and sample.organization == "plant"
    # looked up together: one query (and one for tags) a gathering, not two a
    # message; a gathering is a quarter second, so how many there are depends on
    # how fast the 602 statuses came (a loaded machine), never near one a status
    lookups = [s for s in statements if "FROM devices" in s or "FROM device_tags" in s]
    told = [b for b in batches if b]
    # (a chunk is 500 ids: a gathering of all 602 is two of each query)
    assert 0 < len(lookups) <= 4 * len(told) + 4, (len(lookups), len(told))
    assert len(told) <= 60 and max(len(b) for b in told) >= 10, [len(b) for b in told]
    store.close()
