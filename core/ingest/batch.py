"""Readings on their way from ingest to a telemetry store, with their table rows.

Lives with ingest (not in ``core.store``) so a consumer that does not write
to SQL — the AWS stream consumer — can build batches without SQLAlchemy.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

from core.ingest.fast_records import trusted_reading
from core.model import Reading
from core.model.timeutil import from_epoch_ms

Row = tuple[str, str, int, float]  # device_id, metric, epoch ms, value
#: minute (epoch ms // 60,000), device_id, epoch ms, metric set, then COLUMNS
#: values (None past the set's width): a ``telemetry_message`` row as it is stored
MessageRow = tuple[Any, ...]

# The SQL store keeps a row per message with its values in COLUMNS columns
# and a metric set saying which metric each holds (core/store/schema.py). The
# ingest builds those rows as it decodes each message, where the metrics are
# at hand: rebuilding them from the rows of readings cost the writer more
# than inserting them (docs/benchmarks.md, "A row per message").
COLUMNS = 8
_PAD: tuple[tuple[None, ...], ...] = tuple((None,) * (COLUMNS - n) for n in range(COLUMNS + 1))
_SET_IDS: dict[tuple[str, ...], int] = {}
#: names of every set id handed out since the registry was last emptied
SET_NAMES: dict[int, tuple[str, ...]] = {}
_SET_LIMIT = 65_536  # distinct sets remembered; past it the registry starts again


def set_id(names: Sequence[str]) -> int:
    """48 bits of BLAKE2b over the names joined by a unit separator (which a
    metric name cannot hold), so every process writing a database names a set
    alike without asking the others; a SQLite key stores it in 7 bytes. A
    stored format: never change it."""
    digest = hashlib.blake2b("\x1f".join(names).encode(), digest_size=6).digest()
    return int.from_bytes(digest, "big")


def metric_set(names: tuple[str, ...]) -> int:
    """``set_id``, remembered (with the names, for the store's slot rows)."""
    found = _SET_IDS.get(names)
    if found is None:
        found = set_id(names)
        seen = SET_NAMES.get(found)
        if seen is not None and seen != names:
            raise ValueError(f"metric sets {seen} and {names} share the id {found}")
        if len(_SET_IDS) >= _SET_LIMIT:
            _SET_IDS.clear()
            SET_NAMES.clear()
        _SET_IDS[names], SET_NAMES[found] = found, names
    return found


def message_rows(device_id: str, ts_ms: int, metrics: Mapping[str, float]
                 ) -> list[MessageRow]:
    """One message's rows: one, or one per COLUMNS metrics of a wider message."""
    names, minute = tuple(metrics), ts_ms // 60_000
    if len(names) <= COLUMNS:
        return [(minute, device_id, ts_ms, metric_set(names), *metrics.values(),
                 *_PAD[len(names)])]
    values = tuple(metrics.values())
    return [(minute, device_id, ts_ms, metric_set(names[i:i + COLUMNS]),
             *values[i:i + COLUMNS], *_PAD[len(names[i:i + COLUMNS])])
            for i in range(0, len(names), COLUMNS)]


class ReadingBatch(list[Reading]):
    """Readings whose producer also built their table rows (``rows``, one per
    reading, the same order): the hub has each message's epoch milliseconds at
    hand, and building the rows again here from ``Reading.ts`` was a third of
    ``write_batch`` on the hub's writer thread. Anything else that holds a
    ``Sequence[Reading]`` (a plain list, a slice) is converted as before."""

    __slots__ = ("rows",)

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[Row] = []


class RowBatch(Sequence[Reading]):
    """The ingest's readings as their table rows alone; a ``Reading`` is made
    only for whoever iterates or indexes the batch.

    The store writes the rows and the alert engine reads each message's
    metrics, so on the hub nothing needed the six ``Reading`` objects every
    message used to get: making them was a tenth of the writer thread's CPU at
    20,000 msg/s (docs/benchmarks.md, "The hub stops making what nobody
    reads"). What iterates (a split retry after a failed write, a test, a
    consumer that wants objects) gets readings equal to those it got before.

    The rows of readings (``rows``) are built only when read, for the same
    reason: the SQL store writes the rows per message, and needs the rows of
    readings only for a late batch or another writer's. Building them with
    every message cost the hub's writer about 2 µs a message and six more
    objects for the garbage collector to look at (docs/benchmarks.md, "Fewer
    steps per message")."""

    __slots__ = ("_count", "_rows", "_unbuilt", "covered", "messages")

    def __init__(self, rows: list[Row] | None = None) -> None:
        self._rows: list[Row] = [] if rows is None else rows
        #: messages added (device, time, metrics) whose rows are not built
        #: yet; they come after ``_rows``, and ``_count`` readings they hold
        self._unbuilt: list[tuple[str, int, Mapping[str, float]]] = []
        self._count = 0
        #: the same readings as rows per message (:meth:`add_message`), valid
        #: while ``covered`` (the readings they hold) equals ``len(self)``:
        #: rows added another way leave the store to build them from the rows
        self.messages: list[MessageRow] = []
        self.covered = 0

    @property
    def rows(self) -> list[Row]:
        """The rows of readings (device, metric, epoch ms, value), in the
        order they were added; the list itself, so a caller may add to it."""
        if self._unbuilt:
            self._rows.extend([(device_id, metric, ts_ms, value)
                               for device_id, ts_ms, metrics in self._unbuilt
                               for metric, value in metrics.items()])
            self._unbuilt, self._count = [], 0
        return self._rows

    def rows_view(self) -> Sequence[Row]:
        """``rows`` as a sequence that builds them only if it is read past
        its length: what the store passes along for the paths that may need
        them."""
        return _RowsOf(self)

    def add_message(self, device_id: str, ts_ms: int, metrics: Mapping[str, float]) -> None:
        """A message's readings, as rows per message now and as rows of
        readings when read (``metrics`` must not change afterwards)."""
        self._unbuilt.append((device_id, ts_ms, metrics))
        self._count += len(metrics)
        self.messages.extend(message_rows(device_id, ts_ms, metrics))
        self.covered += len(metrics)

    def add_batch(self, other: RowBatch) -> None:
        """Another batch's readings after these (its message rows too)."""
        if not self._rows and not other._rows:
            self._unbuilt.extend(other._unbuilt)
            self._count += other._count
        else:
            self.rows.extend(other.rows)
        self.messages.extend(other.messages)
        self.covered += other.covered

    def __len__(self) -> int:
        return len(self._rows) + self._count

    @overload
    def __getitem__(self, index: int) -> Reading: ...

    @overload
    def __getitem__(self, index: slice) -> RowBatch: ...

    def __getitem__(self, index: int | slice) -> Reading | RowBatch:
        if isinstance(index, slice):
            return RowBatch(self.rows[index])
        device_id, metric, ts_ms, value = self.rows[index]
        return trusted_reading(device_id, metric, from_epoch_ms(ts_ms), value)

    def __iter__(self) -> Iterator[Reading]:
        at_ms, at = None, None
        for device_id, metric, ts_ms, value in self.rows:
            if ts_ms != at_ms:  # a message's rows share their time
                at_ms, at = ts_ms, from_epoch_ms(ts_ms)
            assert at is not None
            yield trusted_reading(device_id, metric, at, value)

    def __eq__(self, other: object) -> bool:
        """Equal to a batch of the same rows, or to a list or tuple of the same
        readings (as the list of readings it replaced was)."""
        if isinstance(other, RowBatch):
            return self.rows == other.rows
        if isinstance(other, list | tuple):
            return len(other) == len(self.rows) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"RowBatch({len(self)} rows)"


class _RowsOf(Sequence[Row]):
    """:meth:`RowBatch.rows_view`: the batch's length without building its rows."""

    __slots__ = ("_batch",)

    def __init__(self, batch: RowBatch) -> None:
        self._batch = batch

    def __len__(self) -> int:
        return len(self._batch)

    @overload
    def __getitem__(self, index: int) -> Row: ...

    @overload
    def __getitem__(self, index: slice) -> list[Row]: ...

    def __getitem__(self, index: int | slice) -> Row | list[Row]:
        return self._batch.rows[index]

    def __iter__(self) -> Iterator[Row]:
        return iter(self._batch.rows)
