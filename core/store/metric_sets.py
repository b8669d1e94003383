"""Which metric sets a store has written, and the message rows of readings
that did not come with them (core/ingest/batch.py builds them at ingest;
core/store/schema.py says why the table holds a row per message).

Two different sets with one id would mix their values, so a writer checks
each set it has not written before against the stored one and refuses the
batch if they differ (:meth:`SqlTelemetryStore._store_sets`).
"""

from __future__ import annotations

from collections.abc import Sequence

from core.ingest.batch import (
    COLUMNS,
    SET_NAMES,
    MessageRow,
    Row,
    message_rows,
    set_id,
)

__all__ = ["COLUMNS", "MessageRow", "MetricSets", "set_id"]


class MetricSets:
    """The sets this store has written to (or found in) its database, so
    that a batch writes the slot rows only of sets new to it."""

    def __init__(self) -> None:
        self.stored: set[int] = set()
        self._names: dict[int, tuple[str, ...]] = {}

    def names_of(self, metric_set_id: int) -> tuple[str, ...]:
        names = SET_NAMES.get(metric_set_id) or self._names.get(metric_set_id)
        if names is None:
            raise KeyError(f"metric set {metric_set_id} is not known to this process")
        return names

    def prepare(self, messages: list[MessageRow] | None, rows: Sequence[Row]
                ) -> tuple[list[MessageRow], set[int]]:
        """A batch's message rows (built from ``rows`` when it came without
        them) and the sets they use that this store has not written yet, in
        one pass. Messages whose set has names nobody here remembers are
        built again from ``rows`` (which names their sets anew): the ingest's
        registry starts again past its limit, and a batch built before that
        could name such a set. The names of new sets are held here too."""
        if messages is None:
            messages = self.to_messages(rows)
        new = {m[3] for m in messages} - self.stored
        if any(s not in SET_NAMES and s not in self._names for s in new):
            messages = self.to_messages(rows)
            new = {m[3] for m in messages} - self.stored
        for s in new:
            self._names.setdefault(s, self.names_of(s))
        return messages, new

    def slots(self, metric_sets: set[int]) -> list[tuple[str, int, int]]:
        """(metric, set, slot) rows of these sets (from :meth:`prepare`)."""
        return [(name, s, slot) for s in sorted(metric_sets)
                for slot, name in enumerate(self._names[s])]

    @staticmethod
    def to_messages(rows: Sequence[Row]) -> list[MessageRow]:
        """A message's readings arrive one after another (the ingest writes
        them so), so a run of rows with one device and time is one message; a
        run naming a metric twice continues in a message of its own. Rows of
        one device and time that are not adjacent become messages of their own
        too: the table keeps both when their sets differ, and the first when
        they are the same (as it kept the first of two equal readings)."""
        out: list[MessageRow] = []
        metrics: dict[str, float] = {}
        key: tuple[str, int] | None = None
        for device_id, metric, ts, value in rows:
            if key is None or key[0] != device_id or key[1] != ts or metric in metrics:
                if key is not None:
                    out.extend(message_rows(key[0], key[1], metrics))
                key, metrics = (device_id, ts), {}
            metrics[metric] = value
        if key is not None:
            out.extend(message_rows(key[0], key[1], metrics))
        return out
