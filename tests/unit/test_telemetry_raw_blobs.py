"""The PostgreSQL raw read's client half (``_raw_pg``) against a hand-written
driver: PostgreSQL does not promise to aggregate a sorted subquery in order, so
an out-of-order answer must come back sorted, and a torn one must be refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.store.telemetry import _raw_pg


class _Cursor:
    def __init__(self, row: tuple[Any, Any]) -> None:
        self.row = row

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: Any) -> _Cursor:
        assert "string_agg(int8send(ts)" in sql and len(params) == 4
        assert "SELECT ts, v0 AS value FROM telemetry_message" in sql, sql
        return self

    def fetchone(self) -> tuple[Any, Any]:
        return self.row


def _blob(items: list[Any] | None, dtype: str) -> bytes | None:
    return None if items is None else np.array(items, dtype=dtype).tobytes()


class _Driver:
    def __init__(self, ts: list[int] | None, values: list[float] | None) -> None:
        self.row = (_blob(ts, ">i8"), _blob(values, ">f8"))

    def cursor(self, binary: bool = False) -> _Cursor:
        assert binary
        return _Cursor(self.row)


PARAMS = ("d", "m", 0, 10)
COLUMN = ("v0", "metric_set = 7")  # the metric's column and its set, as _column_of gives


def test_values_arrive_bit_for_bit_in_native_order() -> None:
    ts, value = _raw_pg(_Driver([1, 2, 3], [0.1 + 0.2, -0.0, 5e-324]), PARAMS, *COLUMN)
    assert ts.dtype == np.int64 and ts.tolist() == [1, 2, 3]
    assert value.dtype == np.float64 and value.dtype.byteorder in "=<"
    assert value.tobytes() == np.array([0.1 + 0.2, -0.0, 5e-324]).tobytes()


def test_an_out_of_order_answer_is_sorted_by_time() -> None:
    ts, value = _raw_pg(_Driver([3, 1, 2], [30.0, 10.0, 20.0]), PARAMS, *COLUMN)
    assert ts.tolist() == [1, 2, 3] and value.tolist() == [10.0, 20.0, 30.0]


def test_no_rows_is_an_empty_series() -> None:
    ts, value = _raw_pg(_Driver(None, None), PARAMS, *COLUMN)
    assert ts.size == value.size == 0 and ts.dtype == np.int64


def test_a_torn_answer_is_refused() -> None:
    with pytest.raises(ValueError, match="2 timestamps but 1 values"):
        _raw_pg(_Driver([1, 2], [1.0]), PARAMS, *COLUMN)
