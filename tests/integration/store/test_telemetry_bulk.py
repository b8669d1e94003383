"""The bulk write path (driver executemany on SQLite, COPY on PostgreSQL) keeps
the port's semantics: duplicates ignored and not counted, the first copy of a
reading wins, every value stored bit for bit, the latest value per metric right
even when a batch arrives out of order."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from core.model import Reading
from core.model.timeutil import from_epoch_ms, to_epoch_ms
from core.store import Store

T0 = datetime(2024, 9, 1, tzinfo=UTC)
T0_MS = to_epoch_ms(T0)
# (-0.0 is left out: SQLite itself stores it as 0.)
AWKWARD = [0.1 + 0.2, 1e-300, 5e-324, 1.7976931348623157e308, -123456.789012345678,
           2.0**53 + 1, 1e16, 1 / 3, 299792458.0]


def _at(ms: int) -> datetime:
    return from_epoch_ms(ms)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_values_round_trip_bit_for_bit(store: Store) -> None:
    batch = [Reading("d-1", "x.y_z", _at(T0_MS + i), v) for i, v in enumerate(AWKWARD)]
    assert store.telemetry.write_batch(batch) == len(AWKWARD)
    s = store.telemetry.query("d-1", "x.y_z", T0, T0 + timedelta(seconds=1))
    assert [_bits(v) for v in s.value.tolist()] == [_bits(v) for v in AWKWARD]
    assert s.ts_ms.tolist() == [T0_MS + i for i in range(len(AWKWARD))]


def test_duplicates_within_and_across_batches_first_copy_wins(store: Store) -> None:
    first = [Reading("dev:1", "temp", _at(T0_MS + i * 1000), float(i)) for i in range(10)]
    assert store.telemetry.write_batch(first) == 10
    # Redelivery of 5 known readings plus new ones, one of them twice in the batch.
    again = [Reading("dev:1", "temp", _at(T0_MS + i * 1000), 100.0 + i) for i in range(5, 12)]
    again.append(Reading("dev:1", "temp", _at(T0_MS + 11_000), 999.0))
    # Several batches in a row take the duplicate path on the same session.
    assert store.telemetry.write_batch(again) == 2
    assert store.telemetry.write_batch(again) == 0
    late = Reading("dev:1", "temp", _at(T0_MS + 50_000), 50.0)
    assert store.telemetry.write_batch([*first[:3], late]) == 1
    s = store.telemetry.query("dev:1", "temp", T0, T0 + timedelta(minutes=1))
    assert s.value.tolist() == [float(i) for i in range(10)] + [110.0, 111.0, 50.0]
    latest = store.telemetry.latest("dev:1")["temp"]
    assert (to_epoch_ms(latest.ts), latest.value) == (T0_MS + 50_000, 50.0)


def test_latest_from_an_out_of_order_batch_with_ties(store: Store) -> None:
    batch = [
        Reading("a", "m", _at(T0_MS + 3000), 3.0),
        Reading("b", "m", _at(T0_MS + 1000), 1.0),
        Reading("a", "m", _at(T0_MS + 5000), 5.0),  # newest of a, first of its ts
        Reading("a", "m", _at(T0_MS + 1000), 1.0),
        Reading("a", "m", _at(T0_MS + 5000), 6.0),  # same key: ignored everywhere
        Reading("a", "n", _at(T0_MS + 2000), 2.0),
    ]
    assert store.telemetry.write_batch(batch) == 5
    a = store.telemetry.latest("a")
    assert {k: (to_epoch_ms(r.ts), r.value) for k, r in a.items()} == {
        "m": (T0_MS + 5000, 5.0), "n": (T0_MS + 2000, 2.0)}
    assert store.telemetry.latest("b")["m"].value == 1.0
    # An older batch afterwards does not move the latest value back.
    assert store.telemetry.write_batch([Reading("a", "m", _at(T0_MS + 4000), 4.0)]) == 1
    assert store.telemetry.latest("a")["m"].value == 5.0
    s = store.telemetry.query("a", "m", T0, T0 + timedelta(seconds=10))
    assert s.value.tolist() == [1.0, 3.0, 4.0, 5.0]


def test_timestamps_in_other_zones_and_sub_millisecond(store: Store) -> None:
    from datetime import timezone
    zone = timezone(timedelta(hours=5, minutes=30))
    t = (T0 + timedelta(microseconds=1500)).astimezone(zone)
    assert store.telemetry.write_batch([Reading("z", "m", t, 1.0)]) == 1
    s = store.telemetry.query("z", "m", T0, T0 + timedelta(seconds=1))
    assert s.ts_ms.tolist() == [to_epoch_ms(t)]
