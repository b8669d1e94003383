"""Readings on their way from ingest to a telemetry store, with their table rows.

Lives with ingest (not in ``core.store``) so a consumer that does not write
to SQL — the AWS stream consumer — can build batches without SQLAlchemy.
"""

from __future__ import annotations

from core.model import Reading

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
