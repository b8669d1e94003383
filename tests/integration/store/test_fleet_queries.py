"""The Devices page shows 100,000 rows: its per-device extras must come from
one query each, never one per device."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, event, insert

from core.model import Alert, AlertState, Reading, Severity
from core.store import Store
from core.store.alerts import _to_row as alert_row
from core.store.schema import AlertRow, table_of

T0 = datetime(2024, 7, 6, tzinfo=UTC)
DEVICES = 1000


@contextmanager
def count_statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def test_latest_values_for_the_whole_fleet_in_one_query(store: Store) -> None:
    readings: list[Reading] = []
    for i in range(DEVICES):
        d = f"dev-{i:04d}"
        readings.append(Reading(d, "battery_pct", T0, 100.0 - i % 100))
        readings.append(Reading(d, "battery_pct", T0 + timedelta(seconds=1), float(i % 100)))
        readings.append(Reading(d, "temp", T0, 20.0))
        if i % 3:
            readings.append(Reading(d, "rssi", T0, -40.0 - i % 50))
    readings.append(Reading("only-temp", "temp", T0, 1.0))
    store.telemetry.write_batch(readings)

    with count_statements(store.engine) as statements:
        values = store.telemetry.latest_values(["battery_pct", "rssi"])
    assert len(statements) == 1, statements

    assert len(values) == DEVICES
    assert "only-temp" not in values
    assert values["dev-0007"] == {"battery_pct": 7.0, "rssi": -47.0}
    assert values["dev-0003"] == {"battery_pct": 3.0}
    assert all("temp" not in v for v in values.values())
    assert store.telemetry.latest_values(["rssi"])["dev-0001"] == {"rssi": -41.0}
    assert store.telemetry.latest_values([]) == {}
    assert store.telemetry.latest_values(["nothing"]) == {}


def test_open_alert_counts_for_the_whole_fleet_in_one_query(store: Store) -> None:
    alerts: list[Alert] = []
    for i in range(DEVICES):
        for j in range(i % 4):
            state = AlertState.RESOLVED if j == 2 else AlertState.ACTIVE
            if j == 1:
                state = AlertState.ACKNOWLEDGED
            alerts.append(
                Alert(
                    device_id=f"dev-{i:04d}",
                    rule_id=f"r{j}",
                    severity=Severity.WARNING,
                    message="m",
                    state=state,
                    created_at=T0,
                    updated_at=T0,
                )
            )
    with store.engine.begin() as conn:
        conn.execute(insert(table_of(AlertRow)), [alert_row(a) for a in alerts])

    with count_statements(store.engine) as statements:
        counts = store.alerts.open_counts_by_device()
    assert len(statements) == 1, statements

    expected: dict[str, int] = {}
    for a in alerts:
        if a.state is not AlertState.RESOLVED:
            expected[a.device_id] = expected.get(a.device_id, 0) + 1
    assert counts == expected
    assert counts["dev-0003"] == 2  # one of its three is resolved
    assert "dev-0004" not in counts  # i % 4 == 0: no alerts at all
    assert len(counts) == DEVICES * 3 // 4
