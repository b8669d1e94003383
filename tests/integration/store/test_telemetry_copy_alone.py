"""The hub's common batch on PostgreSQL is its ``COPY`` sent alone, in
autocommit: one round trip instead of BEGIN, COPY, COMMIT
(``SqlTelemetryStore._copy_alone``). Watched on the wire (libpq's protocol
trace of the pool's one connection), and with the cases that must still take
a transaction: the first batch (it writes the latest-value marker), a batch
with a metric set new to the store, a redelivered batch."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from core.ingest.batch import RowBatch
from core.store import Store
from tests.integration.store.conftest import PG_ENV, PG_SKIP_REASON, connect_args_for

T0 = 1_779_999_960_000
METRICS = ("temperature", "humidity", "pressure")

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get(PG_ENV), reason=PG_SKIP_REASON)]


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
class TestTheHubsBatchAlone:
    @pytest.fixture
    def hub_store(self, store_url: str) -> Iterator[Store]:
        store = Store.open(store_url, connect_args=connect_args_for(store_url),
                           pool_size=1, max_overflow=0)
        store.telemetry.clock = lambda: T0 / 1000 + 600
        store.telemetry.defer_latest()
        yield store
        store.close()

    @staticmethod
    def _batch(second: int, value: float = 1.0, metrics: tuple[str, ...] = METRICS
               ) -> RowBatch:
        batch = RowBatch()
        for d in range(5):
            batch.add_message(f"dev-{d}", T0 + second * 1000,
                              {m: value + d for m in metrics})
        return batch

    @staticmethod
    def _wire(store: Store, tmp_path: Path, write: object) -> list[str]:
        """The simple-protocol queries sent while ``write`` runs."""
        trace = tmp_path / f"trace-{len(list(tmp_path.iterdir()))}.txt"
        with store.engine.connect() as conn:
            raw = conn.connection.driver_connection
        with trace.open("w") as out:
            raw.pgconn.trace(out.fileno())
            try:
                write()  # type: ignore[operator]
            finally:
                raw.pgconn.untrace()
        sent = re.findall(r'\tF\t\d+\tQuery\t "(\w+)', trace.read_text())
        return [word.upper() for word in sent]

    def test_a_steady_batch_is_one_copy_and_nothing_else(self, hub_store, tmp_path
                                                          ) -> None:
        first = self._wire(hub_store, tmp_path,
                           lambda: hub_store.telemetry.write_batch(self._batch(0)))
        assert first[0] == "BEGIN" and first[-1] == "COMMIT"  # the marker goes with it
        steady = self._wire(hub_store, tmp_path,
                            lambda: hub_store.telemetry.write_batch(self._batch(1)))
        assert steady == ["COPY"]
        with hub_store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 30
        assert hub_store.telemetry.latest("dev-4")["humidity"].value == 5.0

    def test_a_new_metric_set_still_goes_in_a_transaction(self, hub_store, tmp_path
                                                          ) -> None:
        hub_store.telemetry.write_batch(self._batch(0))
        wider = self._wire(hub_store, tmp_path, lambda: hub_store.telemetry.write_batch(
            self._batch(1, metrics=(*METRICS, "co2"))))
        assert wider[0] == "BEGIN" and "COPY" in wider and wider[-1] == "COMMIT"

    def test_a_redelivered_batch_sent_alone_falls_back_and_the_first_wins(
            self, hub_store) -> None:
        hub_store.telemetry.write_batch(self._batch(0))
        assert hub_store.telemetry.write_batch(self._batch(1, value=1.0)) == 15
        # the same messages again, other values (a redelivery), plus a new second
        again = self._batch(1, value=-50.0)
        for d in range(5):
            again.add_message(f"dev-{d}", T0 + 2000, {m: 2.0 + d for m in METRICS})
        assert hub_store.telemetry.write_batch(again) == 15
        with hub_store.engine.connect() as conn:
            values = conn.execute(text("SELECT ts, value FROM telemetry"
                                       " WHERE device_id = 'dev-0' AND metric = 'humidity'"
                                       " ORDER BY ts")).all()
        assert [tuple(v) for v in values] == [(T0, 1.0), (T0 + 1000, 1.0), (T0 + 2000, 2.0)]
        hub_store.telemetry.flush_latest()
        assert hub_store.telemetry.latest("dev-0")["humidity"].value == 2.0

    def test_a_copy_that_loses_its_connection_raises_why_and_the_next_batch_goes_in(
            self, hub_store, store_url) -> None:
        """The server ends the session between two batches (a restart, an
        administrator): the batch fails with the connection's own error, and
        the pool drops that connection, so the hub's retry is written."""
        import psycopg

        hub_store.telemetry.write_batch(self._batch(0))
        hub_store.telemetry.write_batch(self._batch(1))
        with hub_store.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        admin = Store.open(store_url, connect_args=connect_args_for(store_url), upgrade=False)
        try:
            with admin.engine.begin() as conn:
                conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        finally:
            admin.close()
        with pytest.raises(psycopg.OperationalError):
            hub_store.telemetry.write_batch(self._batch(2))
        assert hub_store.telemetry.write_batch(self._batch(2)) == 15  # the retry
        with hub_store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM telemetry")).scalar_one() == 45

    def test_the_flush_makes_its_staging_table_once_and_does_not_wait_for_the_disk(
            self, hub_store, tmp_path) -> None:
        """Every 5 s the hub's flush of the latest values: its staging table is
        made by the first flush of the session only, and its commit is
        asynchronous (derived data: a crash leaves its marker to repair from)."""
        hub_store.telemetry.write_batch(self._batch(0))
        first = self._wire(hub_store, tmp_path, hub_store.telemetry.flush_latest)
        hub_store.telemetry.write_batch(self._batch(1, value=7.0))
        second = self._wire(hub_store, tmp_path, hub_store.telemetry.flush_latest)
        assert "CREATE" in first and "CREATE" not in second
        assert "SET" in second  # SET LOCAL synchronous_commit TO off, with the merge
        with hub_store.engine.connect() as conn:
            assert conn.execute(text(
                "SELECT value FROM telemetry_latest WHERE device_id = 'dev-4'"
                " AND metric = 'humidity'")).scalar_one() == 11.0
            assert conn.execute(text(
                "SELECT count(*) FROM telemetry_latest_pending")).scalar_one() == 0

    def test_the_batch_after_a_flush_sets_its_marker_ahead_and_a_crash_then_loses_nothing(
            self, hub_store, store_url, tmp_path) -> None:
        """Every flush removes the marker, so the batch after it must set one
        again: a statement of its own in autocommit, then the batch's COPY
        alone, with no transaction around them. A writer that dies after that
        batch leaves the marker, and the next start repairs from it."""
        hub_store.telemetry.write_batch(self._batch(0))
        hub_store.telemetry.flush_latest()
        after = self._wire(hub_store, tmp_path, lambda: hub_store.telemetry.write_batch(
            self._batch(1, value=7.0)))
        assert after == ["COPY"]  # the marker's statement is a parameterised one, not a Query
        with hub_store.engine.connect() as conn:
            markers = conn.execute(text(
                "SELECT since_ms FROM telemetry_latest_pending")).scalars().all()
        assert markers == [T0 + 1000]
        steady = self._wire(hub_store, tmp_path, lambda: hub_store.telemetry.write_batch(
            self._batch(2, value=9.0)))
        assert steady == ["COPY"]
        hub_store.engine.dispose()  # the writer dies: what it held in memory is gone
        reader = Store.open(store_url, connect_args=connect_args_for(store_url))
        try:
            with reader.engine.connect() as conn:
                before = conn.execute(text(
                    "SELECT value FROM telemetry_latest WHERE device_id = 'dev-4'"
                    " AND metric = 'humidity'")).scalar_one()
            assert before == 5.0  # the flushed batch 0, not batches 1 and 2
            assert reader.telemetry.repair_latest() == 1
            assert reader.telemetry.latest("dev-4")["humidity"].value == 13.0
            assert reader.telemetry.latest("dev-0")["temperature"].ts.timestamp() * 1000 \
                == T0 + 2000
        finally:
            reader.close()

    def test_a_marker_set_ahead_of_a_refused_copy_stays_and_the_batch_goes_in(
            self, hub_store) -> None:
        """The COPY after the marker is refused (a redelivered message): the
        marker set ahead stays, as low as the batch, and the batch goes in
        through the staging table's transaction."""
        hub_store.telemetry.write_batch(self._batch(0))
        hub_store.telemetry.write_batch(self._batch(1))
        hub_store.telemetry.flush_latest()
        again = self._batch(1, value=-50.0)
        for d in range(5):
            again.add_message(f"dev-{d}", T0 + 2000, {m: 2.0 + d for m in METRICS})
        assert hub_store.telemetry.write_batch(again) == 15
        with hub_store.engine.connect() as conn:
            assert conn.execute(text(
                "SELECT since_ms FROM telemetry_latest_pending")).scalars().all() == [T0 + 1000]
        hub_store.telemetry.flush_latest()
        assert hub_store.telemetry.latest("dev-0")["humidity"].value == 2.0
        with hub_store.engine.connect() as conn:
            assert conn.execute(text(
                "SELECT count(*) FROM telemetry_latest_pending")).scalar_one() == 0

    def test_a_marker_set_ahead_of_a_copy_that_failed_is_set_again_by_the_retry(
            self, hub_store, monkeypatch) -> None:
        """The marker's own commit does not wait for the disk: a server that
        fails between it and the COPY may lose it. So it counts only once the
        COPY committed, and the retried batch sets it again (here the lost
        marker is removed by hand after the failed COPY)."""
        import psycopg

        from core.store import telemetry as module

        hub_store.telemetry.write_batch(self._batch(0))
        hub_store.telemetry.flush_latest()
        real = module._copy_rows

        def lost(cur, statement, rows):  # type: ignore[no-untyped-def]
            monkeypatch.setattr(module, "_copy_rows", real)
            raise psycopg.OperationalError("the server closed the connection")

        monkeypatch.setattr(module, "_copy_rows", lost)
        with pytest.raises(psycopg.OperationalError):
            hub_store.telemetry.write_batch(self._batch(1, value=7.0))
        with hub_store.engine.begin() as conn:
            conn.execute(text("DELETE FROM telemetry_latest_pending"))  # lost with the server
        assert hub_store.telemetry.write_batch(self._batch(1, value=7.0)) == 15  # the retry
        with hub_store.engine.connect() as conn:
            assert conn.execute(text(
                "SELECT since_ms FROM telemetry_latest_pending")).scalars().all() == [T0 + 1000]
