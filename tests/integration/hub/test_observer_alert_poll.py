"""A console on a team database learns of the hub's alerts by polling the
store (``TeamObserver.poll_alerts_once``). An alert is stamped when the hub
evaluates it and committed after its batch: on a loaded database that came
more than the poll's old one-second overlap late, and the alert never reached
the console. Each alert version is still announced once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from core.model import Alert, Severity
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.mqtt_link import MqttLink
from plugins.local.hub.observer import TeamObserver


def _link(filters: Any, on_message: Any) -> MqttLink:
    """The console's real link, never started: only the store poll runs."""
    return MqttLink("127.0.0.1", 1883, client_id="observer-test", filters=filters,
                    on_message=on_message)


def test_an_alert_committed_late_is_announced_and_each_version_once(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'team.db'}")
    try:
        observer = TeamObserver(_link, EventBus(), store.registry, store.alerts)
        assert observer.poll_alerts_once() == []
        # stamped 3 s before this poll's start, committed only now (a slow batch)
        late = Alert("pump-1", "temp-high", Severity.CRITICAL, "too hot", 91.0,
                     created_at=datetime.now(UTC) - timedelta(seconds=3),
                     updated_at=datetime.now(UTC) - timedelta(seconds=3))
        store.alerts.add(late)
        assert [a.alert_id for a in observer.poll_alerts_once()] == [late.alert_id]
        assert observer.poll_alerts_once() == []  # told once, though still in the window
        acked = store.alerts.get(late.alert_id).acknowledge("support", at=datetime.now(UTC))
        store.alerts.save(acked)
        again = observer.poll_alerts_once()
        assert [(a.alert_id, a.version) for a in again] == [(late.alert_id, acked.version)]
    finally:
        store.close()
