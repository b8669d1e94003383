"""Readings that arrive more than an hour after their own time (a field device
replaying its buffer after a long outage) land in minutes the readers already
folded into ``telemetry_minute``: the batch that stores them makes those
minutes be rebuilt, so bucketed charts, the week overlay and the dashboard show
every accepted reading. Real SQLite and (with SMARTIOT_TEST_PG_URL) PostgreSQL;
the fold/write races are forced by pausing a real fold between its statements."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import event, text

from core.ingest.batch import ReadingBatch
from core.model import Reading
from core.model.analytics import HistoryRequest
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.services.analytics import load_series
from core.store import Store
from core.store.telemetry import MINUTE_MS

NOW = datetime(2024, 9, 8, 12, 0, 7, tzinfo=UTC)
NOW_MS = to_epoch_ms(NOW)
DEVICES = ("dev-a", "dev-b", "dev-c")
STEP_MS = 5 * MINUTE_MS + 1_250  # sparse, never on a minute boundary


def _week(store: Store, *, skip: tuple[int, int] | None = None
          ) -> dict[str, list[tuple[int, float]]]:
    """A week of readings per device; ``skip``: [lo, hi) ms left out (offline)."""
    rng = np.random.default_rng(3)
    out: dict[str, list[tuple[int, float]]] = {}
    readings = []
    for device in DEVICES:
        rows = [(int(t), float(rng.normal(20, 5)))
                for t in range(NOW_MS - 7 * 86_400_000, NOW_MS, STEP_MS)
                if skip is None or not skip[0] <= t < skip[1] or device != "dev-b"]
        out[device] = rows
        readings += [Reading(device, "temp", from_epoch_ms(t), v) for t, v in rows]
    store.telemetry.write_batch(readings)
    return out


def _expected(rows: list[tuple[int, float]], start_ms: int, end_ms: int, bucket_ms: int
              ) -> dict[int, tuple[int, float, float, float]]:
    """bucket start -> (count, min, max, sum)."""
    found: dict[int, list[float]] = {}
    for t, v in rows:
        if start_ms <= t < end_ms:
            found.setdefault(t // bucket_ms * bucket_ms, []).append(v)
    return {b: (len(vs), min(vs), max(vs), sum(vs)) for b, vs in found.items()}


def _check(store: Store, data: dict[str, list[tuple[int, float]]], bucket_ms: int) -> None:
    start, end = NOW - timedelta(days=7), NOW
    request = HistoryRequest(DEVICES, ("temp",), start, end, bucket_ms)
    for series in (*load_series(store.telemetry, request),
                   *(store.telemetry.query(d, "temp", start, end, bucket_ms=bucket_ms)
                     for d in DEVICES)):
        want = _expected(data[series.device_id], to_epoch_ms(start), to_epoch_ms(end), bucket_ms)
        assert series.ts_ms.tolist() == sorted(want), series.device_id
        assert series.count is not None and series.minimum is not None
        assert series.maximum is not None
        assert series.count.tolist() == [want[b][0] for b in sorted(want)]
        assert series.minimum.tolist() == [want[b][1] for b in sorted(want)]
        assert series.maximum.tolist() == [want[b][2] for b in sorted(want)]
        np.testing.assert_allclose(series.value, [want[b][3] / want[b][0] for b in sorted(want)])


@pytest.fixture
def clocked(store: Store) -> Store:
    store.telemetry.clock = lambda: NOW_MS / 1000
    return store


@pytest.mark.parametrize("as_batch", [False, True], ids=["list", "reading-batch"])
def test_a_late_reading_shows_in_the_minutes_already_folded(clocked: Store,
                                                            as_batch: bool) -> None:
    data = _week(clocked)
    _check(clocked, data, 10 * MINUTE_MS)  # folds the week up to an hour ago
    late = [("dev-a", NOW_MS - 2 * 3_600_000 + 17, 1e6), ("dev-c", NOW_MS - 86_400_000 + 3, -1e6)]
    readings: list[Reading] = ReadingBatch() if as_batch else []
    for device, t, v in late:
        readings.append(Reading(device, "temp", from_epoch_ms(t), v))
        if isinstance(readings, ReadingBatch):
            readings.rows.append((device, "temp", t, v))
        data[device].append((t, v))
    clocked.telemetry.write_batch(readings)
    _check(clocked, data, 10 * MINUTE_MS)
    _check(clocked, data, MINUTE_MS)


def test_an_offline_device_replaying_its_buffer_fills_its_gap(clocked: Store) -> None:
    """The gap was folded as empty minutes (the mark passed it) before the
    device came back with three hours of buffered readings."""
    gap = (NOW_MS - 4 * 3_600_000, NOW_MS - 30 * MINUTE_MS)
    data = _week(clocked, skip=gap)
    _check(clocked, data, 10 * MINUTE_MS)
    replay = [(t, 40.0 + (t % 7)) for t in range(gap[0] + 11, gap[1], 10_000)]
    for start in range(0, len(replay), 100):  # the device sends it in pieces
        clocked.telemetry.write_batch([Reading("dev-b", "temp", from_epoch_ms(t), v)
                                       for t, v in replay[start:start + 100]])
    data["dev-b"] += replay
    _check(clocked, data, 10 * MINUTE_MS)
    _check(clocked, data, MINUTE_MS)


def test_a_live_batch_leaves_the_rollups_alone(clocked: Store) -> None:
    data = _week(clocked)
    _check(clocked, data, 10 * MINUTE_MS)
    with clocked.engine.connect() as conn:
        before = conn.execute(text("SELECT count(*), sum(until_ms) FROM telemetry_minute_mark"
                                   )).one()
    clocked.telemetry.write_batch([Reading("dev-a", "temp", from_epoch_ms(NOW_MS - 1000), 1.0)])
    with clocked.engine.connect() as conn:
        after = conn.execute(text("SELECT count(*), sum(until_ms) FROM telemetry_minute_mark"
                                  )).one()
    assert tuple(after) == tuple(before)


def _pause_fold(store: Store, when: str, during: Callable[[], None]) -> list[BaseException]:
    """Run ``during`` (in a thread, given up to 3 s) once, when the store's next
    fold is about to run (``before``) or has just run (``after``) its INSERT of
    minutes: between the fold reading the marks and writing its own."""
    errors: list[BaseException] = []
    fired = threading.Event()

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if fired.is_set() or not statement.startswith("INSERT INTO telemetry_minute ("):
            return
        fired.set()

        def run() -> None:
            try:
                during()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                errors.append(exc)

        worker = threading.Thread(target=run)
        worker.start()
        worker.join(timeout=3)  # a writer blocked by this fold waits for its commit
        errors.append(_Joined(worker))

    event.listen(store.engine, f"{when}_cursor_execute", hook)
    return errors


class _Joined(Exception):
    def __init__(self, worker: threading.Thread) -> None:
        super().__init__("writer thread")
        self.worker = worker


def _finish(errors: list[BaseException]) -> None:
    for item in errors:
        if isinstance(item, _Joined):
            item.worker.join(timeout=60)
            assert not item.worker.is_alive()
    real = [e for e in errors if not isinstance(e, _Joined)]
    if real:
        raise real[0]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_fold_racing_a_late_write_ends_right(open_store: Callable[[], Store],
                                               when: str) -> None:
    """``before``: the fold read the marks, then the late write commits (it
    lowers a mark the fold must not push forward again). ``after``: the fold
    inserted its minutes, not seeing the late reading, and commits after the
    write began (the write must undo those minutes)."""
    folder, writer = open_store(), open_store()
    for s in (folder, writer):
        s.telemetry.clock = lambda: NOW_MS / 1000
    data = _week(folder)
    if when == "before":
        # folded up to 3 h ago; the racing fold then folds the next two hours
        folder.telemetry.fold_minutes(DEVICES, "temp", NOW_MS - 3 * 3_600_000)
        late_ms = NOW_MS - 5 * 3_600_000 + 1
    else:
        # folded up to 6 h ago; the racing fold folds the minute the reading lands in
        folder.telemetry.fold_minutes(DEVICES, "temp", NOW_MS - 6 * 3_600_000)
        late_ms = NOW_MS - 2 * 3_600_000 + 1

    def late_write() -> None:
        writer.telemetry.write_batch([Reading("dev-a", "temp", from_epoch_ms(late_ms), 99.5)])

    errors = _pause_fold(folder, when, late_write)
    folder.telemetry.fold_minutes(DEVICES, "temp", NOW_MS - 3_600_000)
    _finish(errors)
    assert errors, "the fold never ran"
    data["dev-a"].append((late_ms, 99.5))
    _check(writer, data, 10 * MINUTE_MS)
    _check(folder, data, MINUTE_MS)


def _raw_reporting(store: Store, start_ms: int, end_ms: int, bucket_ms: int
                   ) -> tuple[list[int], list[int]]:
    origin = start_ms // bucket_ms * bucket_ms
    with store.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT (ts - :o) / :b, count(DISTINCT device_id) FROM telemetry WHERE metric ="
            " 'temp' AND ts >= :s AND ts < :e GROUP BY (ts - :o) / :b ORDER BY 1"),
            {"o": origin, "b": bucket_ms, "s": start_ms, "e": end_ms}).all()
    return [origin + int(r[0]) * bucket_ms for r in rows], [int(r[1]) for r in rows]


@pytest.mark.parametrize("bucket_ms", [10 * MINUTE_MS, 3_600_000])
def test_devices_reporting_counts_from_the_minutes_and_equals_the_raw_count(
        clocked: Store, bucket_ms: int) -> None:
    gap = (NOW_MS - 30 * 3_600_000, NOW_MS - 20 * 3_600_000)
    _week(clocked, skip=gap)
    statements: list[str] = []
    event.listen(clocked.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_a: statements.append(statement))
    start, end = NOW - timedelta(days=7, seconds=13), NOW
    seen: list[int] = []
    for late in (False, True):
        if late:  # dev-b back with readings in its gap, now folded as empty
            clocked.telemetry.write_batch([
                Reading("dev-b", "temp", from_epoch_ms(t), 1.0)
                for t in range(gap[0] + 7, gap[1], 1_800_000)])
        statements.clear()
        got_ts, got_n = clocked.telemetry.reporting_devices(start, end, bucket_ms=bucket_ms,
                                                            metric="temp")
        counted = [s for s in statements if "count(distinct" in s.lower()]
        want_ts, want_n = _raw_reporting(clocked, to_epoch_ms(start), NOW_MS, bucket_ms)
        assert got_ts.tolist() == want_ts
        assert got_n.tolist() == want_n
        seen += want_n
        assert counted and all("telemetry_minute" in s for s in counted), counted
    assert 2 in seen and 3 in seen  # the gap counted, then filled


def test_folding_everything_leaves_the_reads_nothing_to_fold(clocked: Store) -> None:
    """What the hub runs every few minutes: every series of every metric, in
    transactions of a few devices, up to the fold horizon."""
    data = _week(clocked)
    clocked.telemetry.write_batch([Reading(d, "hum", from_epoch_ms(NOW_MS - 86_400_000), 1.0)
                                   for d in DEVICES])
    assert clocked.telemetry.fold_all_minutes(chunk=2) == 2 * len(DEVICES)
    with clocked.engine.connect() as conn:
        marks = conn.execute(text("SELECT DISTINCT until_ms FROM telemetry_minute_mark")).all()
    assert [r[0] for r in marks] == [(NOW_MS - 3_600_000) // MINUTE_MS * MINUTE_MS]
    assert clocked.telemetry.fold_minutes(DEVICES, "temp", NOW_MS - 3_600_000) == 0
    _check(clocked, data, 10 * MINUTE_MS)
    assert clocked.telemetry.fold_all_minutes() == 0
