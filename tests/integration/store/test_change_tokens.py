"""Change tokens move exactly when a topic's rows do, whoever writes them, and
the watcher turns that into one ``changes`` event per moved topic."""

from __future__ import annotations

from core.model import Alert, Device, Severity
from core.model.events import DataChanged
from core.ports import changes
from core.services.change_feed import ChangeWatcher
from core.store import Store


def test_tokens_follow_writes_from_another_store_object(tmp_path):
    url = f"sqlite:///{tmp_path / 'smartiot.db'}"
    with Store.open(url) as mine, Store.open(url) as other:
        published: list[list] = []
        watcher = ChangeWatcher(mine.changes, lambda events: published.append(list(events)))
        assert watcher.poll_once() == []  # the baseline
        assert watcher.poll_once() == []  # nothing changed, nothing published

        alert = Alert("pump-1", "r", Severity.WARNING, "hot")
        other.alerts.add(alert)
        assert watcher.poll_once() == [changes.ALERTS]
        other.alerts.save(alert.acknowledge("maria"))  # same count, new version
        assert watcher.poll_once() == [changes.ALERTS]

        other.registry.upsert(Device("pump-1"))
        assert watcher.poll_once() == [changes.DEVICES]
        assert published == [[DataChanged(changes.ALERTS)], [DataChanged(changes.ALERTS)],
                             [DataChanged(changes.DEVICES)]]
        assert set(mine.changes.tokens()) == set(changes.TOPICS)


def test_an_idle_feed_costs_no_queries(tmp_path):
    class Counting:
        calls = 0

        def tokens(self):  # type: ignore[no-untyped-def]
            Counting.calls += 1
            return {"alerts": str(Counting.calls)}

    watcher = ChangeWatcher(Counting(), lambda _e: None, interval_s=0.01,  # type: ignore[arg-type]
                            active=lambda: False).start()
    import time

    time.sleep(0.2)
    watcher.stop()
    assert Counting.calls == 1  # the baseline, taken at start


def test_a_change_before_the_first_poll_is_still_reported(tmp_path):
    """Pages load right after the backend starts; the watcher's baseline is
    taken at start, so a change made before its first poll is not swallowed."""
    with Store.open(f"sqlite:///{tmp_path / 'smartiot.db'}") as store:
        listening = False
        published: list = []
        watcher = ChangeWatcher(store.changes, published.extend, interval_s=3600,
                                active=lambda: listening).start()
        try:
            store.alerts.add(Alert("pump-1", "r", Severity.WARNING, "hot"))
            listening = True
            assert watcher.poll_once() == [changes.ALERTS]
        finally:
            watcher.stop()
