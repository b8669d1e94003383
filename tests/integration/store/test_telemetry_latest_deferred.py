"""``telemetry_latest`` kept in memory by the hub and flushed every few seconds
(core/store/latest_buffer.py), on SQLite and PostgreSQL: the same answers as the
per-batch upsert once flushed, the same answers at once in the writing process,
and nothing lost when the writer dies between two flushes."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.model import Reading
from core.model.timeutil import from_epoch_ms
from core.store import Store
from tests.integration.store.conftest import PG_ENV, PG_SKIP_REASON, connect_args_for

T0_MS = 1_733_300_000_000
METRICS = ("temperature", "humidity", "co2")


def _batch(devices: int, ts_ms: int, base: float, metrics: tuple[str, ...] = METRICS
           ) -> list[Reading]:
    return [Reading(f"dev-{d}", m, from_epoch_ms(ts_ms), base + d + i / 10)
            for d in range(devices) for i, m in enumerate(metrics)]


def _batches() -> list[list[Reading]]:
    """In order, out of order, ties with another value (the first one stays), a
    new device with only old readings, an older reading that must not win."""
    return [
        _batch(5, T0_MS + 1000, 1.0),
        _batch(5, T0_MS + 3000, 3.0),
        _batch(5, T0_MS + 2000, 2.0),              # late: never the latest
        _batch(3, T0_MS + 3000, 99.0),             # tie: the first stays
        [Reading("dev-new", "rssi", from_epoch_ms(T0_MS - 86_400_000), -70.0)],
        _batch(2, T0_MS + 4000, 4.0, ("temperature",)),
    ]


def _table(store: Store) -> dict[tuple[str, str], tuple[int, float]]:
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT device_id, metric, ts, value FROM telemetry_latest"))
        return {(d, m): (int(t), float(v)) for d, m, t, v in rows}


def _answers(store: Store) -> dict[str, dict[str, tuple[int, float]]]:
    devices = [f"dev-{d}" for d in range(5)] + ["dev-new"]
    out = {}
    for device in devices:
        out[device] = {m: (int(r.ts.timestamp() * 1000), r.value)
                       for m, r in store.telemetry.latest(device).items()}
        assert store.telemetry.metrics_for(device) == sorted(out[device])
    values = store.telemetry.latest_values([*METRICS, "rssi"])
    assert values == {d: {m: v for m, (_, v) in ms.items()} for d, ms in out.items() if ms}
    return out


def _markers(store: Store) -> int:
    with store.engine.connect() as conn:
        return int(conn.execute(text("SELECT count(*) FROM telemetry_latest_pending")).scalar_one())


@pytest.fixture
def two_stores(store_url: str) -> Iterator[tuple[Store, Store]]:
    """The writer's store and a reader in another "process" (its own engine)."""
    def open_store() -> Store:
        return Store.open(store_url, connect_args=connect_args_for(store_url))
    writer, reader = open_store(), open_store()
    yield writer, reader
    writer.close()
    reader.close()


def _immediate(store_url: str) -> dict[tuple[str, str], tuple[int, float]]:
    """What the per-batch upsert makes of the same batches (a fresh schema)."""
    store = Store.open(store_url, connect_args=connect_args_for(store_url))
    try:
        for batch in _batches():
            store.telemetry.write_batch(batch)
        return _table(store)
    finally:
        with store.engine.begin() as conn:  # the test proper starts from nothing
            conn.execute(text("DELETE FROM telemetry_message"))
            conn.execute(text("DELETE FROM telemetry_latest"))
        store.close()


def test_deferred_latest_answers_like_the_upsert_once_flushed(two_stores, store_url) -> None:
    writer, reader = two_stores
    expected = _immediate(store_url)
    writer.telemetry.defer_latest()
    for batch in _batches():
        writer.telemetry.write_batch(batch)
    # this process sees the newest values at once (the console shares the hub's store)
    in_process = _answers(writer)
    assert {(d, m): v for d, ms in in_process.items() for m, v in ms.items()} == expected
    assert _table(reader) == {}            # another process: one flush interval behind
    assert _markers(reader) == 1           # ... and the database says from when
    assert writer.telemetry.flush_latest() == len(expected)
    assert _table(reader) == expected
    assert _answers(reader) == in_process
    assert _markers(reader) == 0
    assert writer.telemetry.flush_latest() == 0  # nothing held, no marker: no transaction


def test_a_writer_that_dies_between_flushes_loses_no_latest_value(two_stores,
                                                                  store_url) -> None:
    writer, reader = two_stores
    expected = _immediate(store_url)
    batches = _batches()
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch(batches[0])
    writer.telemetry.flush_latest()         # the table holds the first batch
    for batch in batches[1:]:
        writer.telemetry.write_batch(batch)
    # the process dies here: what it held in memory is gone
    writer.close()
    stale = _table(reader)
    assert stale != expected and _markers(reader) == 1
    # the next start folds in every reading from the marker on
    assert reader.telemetry.repair_latest() == 1
    assert _table(reader) == expected
    assert _markers(reader) == 0
    assert reader.telemetry.repair_latest() == 0  # after a clean stop: nothing to do


def test_the_repair_after_a_crash_finds_readings_before_1970(two_stores) -> None:
    """The repair joins each series' newest row by its stored minute, which is
    floored (recomputed from ts by SQL's truncating division, a reading 30 s
    before 1970 was looked for in minute 0 and never repaired)."""
    writer, reader = two_stores
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch([Reading("dev-old", "temperature", from_epoch_ms(ts),
                                          float(ts)) for ts in (-90_000, -30_000)])
    writer.close()  # dies before its first flush
    assert reader.telemetry.repair_latest() == 1
    assert _table(reader) == {("dev-old", "temperature"): (-30_000, -30_000.0)}


def test_an_older_batch_lowers_the_marker_in_its_own_transaction(two_stores) -> None:
    writer, reader = two_stores
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch(_batch(2, T0_MS + 5000, 5.0))
    # a device back from a week offline sends a reading older than any held
    old = [Reading("dev-late", "temperature", from_epoch_ms(T0_MS - 7 * 86_400_000), 7.0)]
    writer.telemetry.write_batch(old)
    with reader.engine.connect() as conn:
        since = conn.execute(text("SELECT since_ms FROM telemetry_latest_pending")).scalar_one()
    assert since == T0_MS - 7 * 86_400_000
    writer.close()  # dies before a flush
    reader.telemetry.repair_latest()
    assert _table(reader)[("dev-late", "temperature")] == (T0_MS - 7 * 86_400_000, 7.0)
    assert _table(reader)[("dev-1", "co2")] == (T0_MS + 5000, 5.0 + 1 + 0.2)


def test_a_failed_flush_keeps_everything_held(two_stores) -> None:
    writer, reader = two_stores
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch(_batch(2, T0_MS, 1.0))
    with writer.engine.begin() as conn:  # the table goes away: the flush fails
        conn.execute(text("ALTER TABLE telemetry_latest RENAME TO telemetry_latest_away"))
    driver = writer.engine.dialect.dbapi
    assert driver is not None
    with pytest.raises((DBAPIError, driver.Error)):  # the table is missing
        writer.telemetry.flush_latest()
    with writer.engine.begin() as conn:
        conn.execute(text("ALTER TABLE telemetry_latest_away RENAME TO telemetry_latest"))
    assert _markers(reader) == 1  # rolled back with the flush
    assert writer.telemetry.flush_latest() == 6
    assert len(_table(reader)) == 6 and _markers(reader) == 0


def test_a_flush_that_fails_after_staging_leaves_the_next_one_working(two_stores) -> None:
    """On PostgreSQL the flush makes its staging table once per session; a
    flush rolled back after making it (here its marker's removal fails) takes
    the table with it, and the next flush must make it again."""
    writer, reader = two_stores
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch(_batch(2, T0_MS, 1.0))
    with writer.engine.begin() as conn:
        conn.execute(text("ALTER TABLE telemetry_latest_pending RENAME TO pending_away"))
    driver = writer.engine.dialect.dbapi
    assert driver is not None
    with pytest.raises((DBAPIError, driver.Error)):
        writer.telemetry.flush_latest()
    with writer.engine.begin() as conn:
        conn.execute(text("ALTER TABLE pending_away RENAME TO telemetry_latest_pending"))
    assert _table(reader) == {}  # rolled back whole
    assert writer.telemetry.flush_latest() == 6
    assert len(_table(reader)) == 6 and _markers(reader) == 0


def test_migration_0015_keeps_the_data_and_its_downgrade_repairs_first(bare_engine) -> None:
    from core.store import migrate

    migrate.upgrade(bare_engine, "0014")
    with bare_engine.begin() as conn:
        conn.execute(text("INSERT INTO telemetry (device_id, metric, ts, value)"
                          " VALUES ('d1', 'temp', 1000, 1.5), ('d1', 'temp', 2000, 2.5)"))
        conn.execute(text("INSERT INTO telemetry_latest (device_id, metric, ts, value)"
                          " VALUES ('d1', 'temp', 2000, 2.5)"))
    migrate.upgrade(bare_engine)
    store = Store(bare_engine)
    assert _table(store) == {("d1", "temp"): (2000, 2.5)}
    assert store.telemetry.query("d1", "temp", from_epoch_ms(0), from_epoch_ms(10_000)
                                 ).value.tolist() == [1.5, 2.5]
    store.telemetry.defer_latest()
    store.telemetry.write_batch([Reading("d1", "temp", from_epoch_ms(3000), 3.5)])
    store.telemetry.latest_buffer = None  # the writer died before its flush
    # going back to 0014 (whose writers upsert every batch) folds the marker in first
    migrate.downgrade(bare_engine, "0014")
    assert _table(store) == {("d1", "temp"): (3000, 3.5)}
    with bare_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 3


def test_a_flush_keeps_what_another_writer_stored_newer(two_stores) -> None:
    """The flush (on PostgreSQL through a staging table, an UPDATE and an
    INSERT) against a table another writer keeps current with every batch:
    per series the newer time wins, a tie keeps what is there, a series
    nobody wrote before is added."""
    writer, other = two_stores
    writer.telemetry.defer_latest()
    writer.telemetry.write_batch(_batch(4, T0_MS + 2000, 2.0))
    # the other writer (a console importing a file) upserts with each batch
    other.telemetry.write_batch([
        Reading("dev-0", "temperature", from_epoch_ms(T0_MS + 3000), 30.0),  # newer
        Reading("dev-1", "temperature", from_epoch_ms(T0_MS + 1000), 10.0),  # older
        Reading("dev-2", "humidity", from_epoch_ms(T0_MS + 2000), 20.0),     # a tie
    ])
    assert writer.telemetry.flush_latest() == 12
    table = _table(other)
    assert table[("dev-0", "temperature")] == (T0_MS + 3000, 30.0)
    assert table[("dev-1", "temperature")] == (T0_MS + 2000, 2.0 + 1)
    assert table[("dev-2", "humidity")] == (T0_MS + 2000, 20.0)
    assert table[("dev-3", "co2")] == (T0_MS + 2000, 2.0 + 3 + 0.2)
    assert len(table) == 12
    # a second flush finds every row there: all of them go through the update
    writer.telemetry.write_batch(_batch(4, T0_MS + 4000, 4.0))
    assert writer.telemetry.flush_latest() == 12
    assert set(_table(other).values()) == {(T0_MS + 4000, 4.0 + d + i / 10)
                                           for d in range(4) for i in range(3)}


_ON_POSTGRESQL = pytest.param(
    "postgresql", id="postgresql",
    marks=[pytest.mark.postgres, pytest.mark.skipif(not os.environ.get(PG_ENV),
                                                    reason=PG_SKIP_REASON)])


def _reloptions(engine) -> list[str] | None:
    with engine.connect() as conn:
        return conn.execute(text("SELECT reloptions FROM pg_class WHERE oid ="
                                 " 'telemetry_latest'::regclass")).scalar_one()


@pytest.mark.parametrize("store_url", [_ON_POSTGRESQL], indirect=True)
def test_the_latest_table_leaves_room_for_its_updates_on_postgresql(bare_engine) -> None:
    """Migration 0019 (PostgreSQL's setting; SQLite has none): pages half
    full, so each flush's updates stay on their page (HOT) instead of touching
    the primary key's index; its downgrade puts the default back."""
    from core.store import migrate

    migrate.upgrade(bare_engine, "0018")
    assert _reloptions(bare_engine) is None
    migrate.upgrade(bare_engine)
    assert _reloptions(bare_engine) == ["fillfactor=50"]
    migrate.downgrade(bare_engine, "0018")
    assert _reloptions(bare_engine) is None
