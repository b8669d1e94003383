from core.model import Device
from core.model.events import DeviceChanged, FleetEvent, HubStatus
from core.services.event_bus import EventBus


def test_publish_reaches_subscribers_until_they_unsubscribe():
    bus = EventBus()
    seen: list[list[FleetEvent]] = []
    unsubscribe = bus.subscribe(seen.append)
    event = DeviceChanged(Device("d1"))
    bus.publish([event])
    unsubscribe()
    bus.publish([event])
    assert seen == [[event]]
    assert bus.subscriber_count == 0


def test_failing_subscriber_does_not_starve_the_others():
    bus = EventBus()
    seen = []

    def broken(batch):
        raise RuntimeError("view crashed")

    bus.subscribe(broken)
    bus.subscribe(seen.append)
    bus.publish([HubStatus("connected")])
    assert len(seen) == 1


def test_empty_batches_are_not_delivered():
    bus = EventBus()
    seen = []
    bus.subscribe(seen.append)
    bus.publish([])
    assert seen == []
