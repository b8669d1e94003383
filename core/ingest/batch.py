"""Readings on their way from ingest to a telemetry store, with their table rows.

Lives with ingest (not in ``core.store``) so a consumer that does not write
to SQL — the AWS stream consumer — can build batches without SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

from core.ingest.fast_records import trusted_reading
from core.model import Reading
from core.model.timeutil import from_epoch_ms

Row = tuple[str, str, int, float]  # device_id, metric, epoch ms, value


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
    consumer that wants objects) gets readings equal to those it got before."""

    __slots__ = ("rows",)

    def __init__(self, rows: list[Row] | None = None) -> None:
        self.rows: list[Row] = [] if rows is None else rows

    def __len__(self) -> int:
        return len(self.rows)

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
        return f"RowBatch({len(self.rows)} rows)"
