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

    def usable(self, messages: list[MessageRow], rows: Sequence[Row]) -> list[MessageRow]:
        """``messages`` if every set they use has names this process knows, else
        the messages built again from ``rows`` (which names their sets anew):
        the ingest's registry starts again past its limit, and a batch built
        before that could name a set nobody here remembers."""
        for s in {m[3] for m in messages} - self.stored:
            if s not in SET_NAMES and s not in self._names:
                return self.to_messages(rows)
        return messages

    def new_slots(self, messages: Sequence[MessageRow]) -> tuple[list[tuple[str, int, int]],
                                                                 set[int]]:
        """(metric, set, slot) rows of the sets these messages use that this
        store has not written yet, and those sets."""
        new = {m[3] for m in messages} - self.stored
        for s in new:  # held here too: the ingest's registry may be emptied meanwhile
            self._names.setdefault(s, self.names_of(s))
        return [(name, s, slot) for s in sorted(new)
                for slot, name in enumerate(self._names[s])], new

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
