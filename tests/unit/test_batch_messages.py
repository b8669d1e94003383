"""The ingest's rows per message (core/ingest/batch.py): what the SQL store
writes as ``telemetry_message`` rows, built where the metrics are at hand."""

from __future__ import annotations

from core.ingest.batch import COLUMNS, RowBatch, metric_set, set_id
from core.store.metric_sets import MetricSets


def test_set_ids_are_the_stored_format_and_never_change() -> None:
    """Ids already in users' databases: a change here would orphan their rows."""
    assert set_id(("temperature", "humidity", "pressure", "co2", "battery", "rssi")) \
        == 1_648_624_527_258
    assert set_id(("solo",)) == 31_063_836_911_814
    assert set_id(("a", "b")) != set_id(("b", "a")) != set_id(("a\x1fb",))
    assert 0 <= set_id(("x",)) < 2**48


def test_a_message_is_one_row_padded_to_the_columns() -> None:
    batch = RowBatch()
    batch.add_message("dev-1", 1_000, {"t": 1.5, "h": 40.0})
    assert batch.rows == [("dev-1", "t", 1_000, 1.5), ("dev-1", "h", 1_000, 40.0)]
    assert batch.messages == [(0, "dev-1", 1_000, metric_set(("t", "h")), 1.5, 40.0,
                               *([None] * (COLUMNS - 2)))]
    assert batch.covered == 2


def test_a_wide_message_continues_in_rows_of_their_own() -> None:
    batch = RowBatch()
    metrics = {f"m{i}": float(i) for i in range(COLUMNS * 2 + 1)}
    batch.add_message("dev-2", 5, metrics)
    assert [len([v for v in m[4:] if v is not None]) for m in batch.messages] == [
        COLUMNS, COLUMNS, 1]
    assert batch.covered == len(batch.rows) == len(metrics)


def test_batches_added_together_keep_their_message_rows() -> None:
    one, two = RowBatch(), RowBatch()
    one.add_message("a", 1, {"x": 1.0})
    two.add_message("b", 2, {"x": 2.0, "y": 3.0})
    one.add_batch(two)
    assert one.covered == len(one.rows) == 3 and len(one.messages) == 2
    # rows added another way leave the messages behind: the store rebuilds them
    one.rows.append(("c", "x", 3, 4.0))
    assert one.covered != len(one.rows)


def test_the_stores_own_rebuild_matches_the_ingest() -> None:
    batch = RowBatch()
    for t in range(3):
        for d in ("a", "b"):
            batch.add_message(d, t, {"x": t + 0.5, "y": -t - 0.5})
    assert MetricSets.to_messages(batch.rows) == batch.messages
    # a metric named twice at one time starts a message of its own (the first wins there)
    twice = MetricSets.to_messages([("a", "x", 1, 1.0), ("a", "x", 1, 2.0)])
    assert [m[4] for m in twice] == [1.0, 2.0] and twice[0][3] == twice[1][3]


def test_a_batch_whose_sets_the_registry_forgot_is_built_again_from_its_rows() -> None:
    """Past its limit the ingest's registry starts again: a batch built before
    may name a set nobody remembers, so the store rebuilds its message rows."""
    from core.ingest import batch as registry

    sets = MetricSets()
    built = RowBatch()
    built.add_message("a", 60_000, {"forgotten-metric": 1.0})
    registry.SET_NAMES.clear()
    registry._SET_IDS.clear()
    again, new = sets.prepare(built.messages, built.rows)
    assert again == built.messages and again is not built.messages
    assert sets.slots(new) == [("forgotten-metric", built.messages[0][3], 0)]
    assert sets.prepare(again, built.rows)[0] is again  # known now


def test_rows_built_when_read_keep_the_order_whatever_mix_made_the_batch() -> None:
    """Rows given at the start, messages added, rows read (and added to)
    between messages, another batch added: the rows of readings come out in
    the order everything went in, and the length and view agree throughout."""
    batch = RowBatch([("z", "x", 0, 0.5)])
    batch.add_message("a", 1, {"x": 1.0, "y": 2.0})
    view = batch.rows_view()
    assert len(batch) == len(view) == 3
    assert view[1] == ("a", "x", 1, 1.0) and list(view)[-1] == ("a", "y", 1, 2.0)
    batch.add_message("b", 2, {"x": 3.0})
    batch.rows.append(("c", "x", 3, 4.0))
    other = RowBatch()
    other.add_message("d", 4, {"x": 5.0, "y": 6.0})
    batch.add_batch(other)
    assert len(batch) == len(view) == 7
    assert batch.rows == [("z", "x", 0, 0.5), ("a", "x", 1, 1.0), ("a", "y", 1, 2.0),
                          ("b", "x", 2, 3.0), ("c", "x", 3, 4.0), ("d", "x", 4, 5.0),
                          ("d", "y", 4, 6.0)]
    assert [r.device_id for r in batch] == ["z", "a", "a", "b", "c", "d", "d"]


def test_two_batches_of_messages_alone_add_up_without_their_rows() -> None:
    one, two = RowBatch(), RowBatch()
    for d in range(3):
        one.add_message(f"a{d}", 1, {"x": float(d)})
        two.add_message(f"b{d}", 2, {"x": float(d), "y": 1.0})
    one.add_batch(two)
    assert len(one) == one.covered == 9 and bool(one)
    assert MetricSets.to_messages(one.rows) == one.messages
