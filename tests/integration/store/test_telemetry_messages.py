"""A row per message (migration 0018): what the hub's batches, other writers'
readings, wide messages, two messages of one time, redeliveries and the
migration of old rows become, read back through the store and through the
``telemetry`` view, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import Engine, text

from core.ingest.batch import RowBatch, set_id
from core.model import Reading
from core.model.timeutil import from_epoch_ms
from core.store import Store, migrate

T0 = 1_779_999_960_000  # ms, a whole minute (the store's clock stands just after, as live)
METRICS = ("temperature", "humidity", "pressure", "co2", "battery", "rssi")


def _live(store: Store) -> Store:
    store.telemetry.clock = lambda: T0 / 1000 + 600
    return store


def _hub_batch(devices: int, seconds: int) -> RowBatch:
    batch = RowBatch()
    for s in range(seconds):
        for d in range(devices):
            batch.add_message(f"dev-{d}", T0 + s * 1000,
                              {m: d * 100.0 + s + i / 10 for i, m in enumerate(METRICS)})
    return batch


def _count(store: Store, sql: str) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_hub_batch_is_a_row_per_message_and_reads_back_per_reading(store: Store) -> None:
    store = _live(store)
    batch = _hub_batch(devices=20, seconds=30)
    assert len(batch.messages) == 600 and batch.covered == len(batch.rows) == 3_600
    assert store.telemetry.write_batch(batch) == 3_600
    assert _count(store, "SELECT count(*) FROM telemetry_message") == 600
    assert _count(store, "SELECT count(*) FROM telemetry") == 3_600
    series = store.telemetry.query("dev-7", "co2", from_epoch_ms(T0),
                                   from_epoch_ms(T0 + 30_000))
    assert series.ts_ms.tolist() == [T0 + s * 1000 for s in range(30)]
    assert series.value.tolist() == [700.0 + s + 0.3 for s in range(30)]
    with store.engine.connect() as conn:
        stored = conn.execute(text("SELECT device_id, metric, ts, value FROM telemetry"
                                   " ORDER BY device_id, metric, ts")).all()
    assert [tuple(r) for r in stored] == sorted(batch.rows)


def test_readings_without_message_rows_make_the_same_table(store: Store) -> None:
    store = _live(store)
    batch = _hub_batch(devices=3, seconds=5)
    readings = list(batch)  # Reading objects: the store builds the message rows itself
    assert store.telemetry.write_batch(readings) == len(batch.rows)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT device_id, ts, metric_set, v0, v5, v6 FROM"
                                 " telemetry_message ORDER BY device_id, ts")).all()
    assert len(rows) == 15
    assert {r[2] for r in rows} == {set_id(METRICS)}
    assert all(r[5] is None for r in rows)  # the two columns past a six-metric set
    assert [tuple(r[:5]) for r in rows] == sorted(
        (m[1], m[2], m[3], m[4], m[9]) for m in batch.messages)


def test_a_message_wider_than_the_columns_keeps_every_metric(store: Store) -> None:
    store = _live(store)
    wide = {f"m{i:02d}": float(i) for i in range(19)}
    batch = RowBatch()
    batch.add_message("wide-1", T0, wide)
    assert len(batch.messages) == 3  # 8 + 8 + 3
    store.telemetry.write_batch(batch)
    assert store.telemetry.latest("wide-1").keys() == wide.keys()
    for name, value in wide.items():
        series = store.telemetry.query("wide-1", name, from_epoch_ms(T0),
                                       from_epoch_ms(T0 + 1))
        assert series.value.tolist() == [value], name
    assert sorted(store.telemetry.metrics_for("wide-1")) == sorted(wide)


def test_two_messages_of_one_time_with_other_metrics_are_both_kept(store: Store) -> None:
    """A device that sends each metric on its own: one time, two sets."""
    store = _live(store)
    at = from_epoch_ms(T0)
    store.telemetry.write_batch([Reading("split-1", "temperature", at, 21.5)])
    store.telemetry.write_batch([Reading("split-1", "humidity", at, 40.0)])
    assert _count(store, "SELECT count(*) FROM telemetry_message") == 2
    assert {m: r.value for m, r in store.telemetry.latest("split-1").items()} == {
        "temperature": 21.5, "humidity": 40.0}


def test_a_redelivered_message_is_stored_once_and_the_first_wins(store: Store) -> None:
    store = _live(store)
    first = _hub_batch(devices=4, seconds=2)
    again = RowBatch()
    for _minute, device_id, ts, *_rest in first.messages:
        again.add_message(device_id, ts, {m: -1.0 for m in METRICS})
    assert store.telemetry.write_batch(first) == 48
    assert store.telemetry.write_batch(again) == 0
    assert _count(store, "SELECT count(*) FROM telemetry_message") == 8
    assert _count(store, "SELECT count(*) FROM telemetry WHERE value < 0") == 0


def test_a_stored_set_that_differs_under_the_same_id_refuses_the_batch(store: Store) -> None:
    """Two sets under one id would mix their values: refused, nothing written."""
    store = _live(store)
    names = ("alpha", "beta")
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO telemetry_metric_slot (metric, metric_set, slot)"
                          " VALUES ('gamma', :s, 0), ('delta', :s, 1)"), {"s": set_id(names)})
    batch = RowBatch()
    batch.add_message("dev-x", T0, {"alpha": 1.0, "beta": 2.0})
    with pytest.raises(ValueError, match="is stored as"):
        store.telemetry.write_batch(batch)
    assert _count(store, "SELECT count(*) FROM telemetry_message") == 0


def test_retention_deletes_messages_and_the_view_follows(store: Store) -> None:
    store = _live(store)
    store.telemetry.write_batch(_hub_batch(devices=2, seconds=180))
    removed = store.telemetry.delete_before(from_epoch_ms(T0 + 90_000))
    assert removed == 2 * 90  # message rows
    series = store.telemetry.query("dev-1", "rssi", from_epoch_ms(T0),
                                   from_epoch_ms(T0 + 180_000))
    assert series.ts_ms[0] == T0 + 90_000 and len(series) == 90


def test_bucketed_reads_agree_with_numpy_over_the_raw_rows(store: Store) -> None:
    store = _live(store)
    store.telemetry.write_batch(_hub_batch(devices=2, seconds=300))
    raw = store.telemetry.query("dev-1", "pressure", from_epoch_ms(T0),
                                from_epoch_ms(T0 + 300_000))
    buckets = store.telemetry.query("dev-1", "pressure", from_epoch_ms(T0),
                                    from_epoch_ms(T0 + 300_000), bucket_ms=60_000)
    expected = raw.value.reshape(5, 60)
    assert np.allclose(buckets.value, expected.mean(axis=1))
    assert buckets.maximum.tolist() == expected.max(axis=1).tolist()
    assert buckets.count.tolist() == [60] * 5


def test_migration_0018_turns_readings_into_messages_and_back(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0017")
    rows = [(f"d{d}", m, T0 + s * 1000, float(d * 1000 + s * 10 + i))
            for d in range(3) for s in range(120) for i, m in enumerate(METRICS[:4])]
    rows.append(("d0", "solo", T0 + 500, 9.5))  # a reading alone at its time
    with bare_engine.begin() as conn:
        conn.execute(text("INSERT INTO telemetry (minute, device_id, metric, ts, value)"
                          " VALUES (:ts / 60000, :d, :m, :ts, :v)"),
                     [{"d": d, "m": m, "ts": ts, "v": v} for d, m, ts, v in rows])
    migrate.upgrade(bare_engine)
    with bare_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM telemetry_message")).scalar_one() \
            == 3 * 120 + 1
        back = conn.execute(text("SELECT device_id, metric, ts, value FROM telemetry")).all()
        sets = {int(s) for (s,) in conn.execute(text(
            "SELECT DISTINCT metric_set FROM telemetry_message"))}
    assert sorted(tuple(r) for r in back) == sorted(rows)
    assert sets == {set_id(sorted(METRICS[:4])), set_id(("solo",))}
    store = Store(bare_engine)
    store.telemetry.clock = lambda: T0 / 1000 + 600
    assert store.telemetry.query("d2", "co2", from_epoch_ms(T0), from_epoch_ms(T0) +
                                 timedelta(minutes=2)).value.tolist() == [
        2000.0 + s * 10 + 3 for s in range(120)]
    migrate.downgrade(bare_engine, "0017")
    with bare_engine.connect() as conn:
        again = conn.execute(text("SELECT device_id, metric, ts, value FROM telemetry")).all()
    assert sorted(tuple(r) for r in again) == sorted(rows)


def test_latest_values_held_per_set_answer_per_metric_and_flush_so(store: Store) -> None:
    """The hub holds the newest message per device and set; a metric in two
    sets takes the newer of them, before and after the flush."""
    store = _live(store)
    store.telemetry.defer_latest()
    batch = RowBatch()
    batch.add_message("dev-o", T0 + 1000, {"a": 1.0, "b": 1.5})
    batch.add_message("dev-o", T0 + 2000, {"b": 2.5, "c": 2.0})
    batch.add_message("dev-o", T0, {"a": 0.5})  # older: its own set, not the newest a
    store.telemetry.write_batch(batch)
    expected = {"a": (T0 + 1000, 1.0), "b": (T0 + 2000, 2.5), "c": (T0 + 2000, 2.0)}

    def latest() -> dict[str, tuple[int, float]]:
        return {m: (int(r.ts.timestamp() * 1000), r.value)
                for m, r in store.telemetry.latest("dev-o").items()}

    assert latest() == expected
    assert store.telemetry.flush_latest() == 3
    assert latest() == expected
    with store.engine.connect() as conn:
        table = {m: (int(t), float(v)) for m, t, v in conn.execute(text(
            "SELECT metric, ts, value FROM telemetry_latest WHERE device_id = 'dev-o'"))}
    assert table == expected
