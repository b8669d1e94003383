"""The data behind a chart as CSV or JSON, raw or aggregated.

One long table (a row per device, metric and time) rather than one column per
series: series rarely share timestamps, and spreadsheets, pandas and Grafana's
CSV source all pivot long tables easily. Times are UTC ISO-8601 plus epoch
milliseconds, so nothing depends on the exporting machine's zone.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from typing import IO, Any

import numpy as np

from core.ports.telemetry import Series

RAW_HEADER = ("device_id", "metric", "time", "ts_ms", "value")
BUCKET_HEADER = ("device_id", "metric", "bucket_start", "ts_ms", "min", "avg", "max", "count")
FORMATS = ("csv", "json")


def iso_times(ts_ms: np.ndarray[Any, np.dtype[np.int64]]) -> list[str]:
    """Vectorised ISO-8601 (millisecond precision, ``Z``) for a column of epoch ms."""
    text = np.datetime_as_string(ts_ms.astype("datetime64[ms]"), unit="ms")
    return [t + "Z" for t in text.tolist()]


def _is_aggregated(series: Sequence[Series]) -> bool:
    kinds = {s.bucket_ms is not None for s in series}
    if len(kinds) > 1:
        raise ValueError("cannot export raw and aggregated series into one table")
    return kinds == {True}


def header_for(series: Sequence[Series]) -> tuple[str, ...]:
    return BUCKET_HEADER if _is_aggregated(series) else RAW_HEADER


def rows(series: Sequence[Series]) -> Iterator[tuple[Any, ...]]:
    """Table rows in :func:`header_for`'s order. Values keep full float
    precision (``repr``), so re-importing gives the stored numbers back."""
    aggregated = _is_aggregated(series)
    for s in series:
        times = iso_times(s.ts_ms)
        ts = s.ts_ms.tolist()
        if aggregated:
            assert s.minimum is not None and s.maximum is not None and s.count is not None
            yield from zip([s.device_id] * len(s), [s.metric] * len(s), times, ts,
                           s.minimum.tolist(), s.value.tolist(), s.maximum.tolist(),
                           s.count.tolist(), strict=True)
        else:
            yield from zip([s.device_id] * len(s), [s.metric] * len(s), times, ts,
                           s.value.tolist(), strict=True)


def write_csv(series: Sequence[Series], out: IO[str]) -> int:
    """Returns the number of data rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header_for(series))
    written = 0
    for row in rows(series):
        writer.writerow(row)
        written += 1
    return written


def write_json(series: Sequence[Series], out: IO[str]) -> int:
    """A list of objects with the CSV's column names; non-finite values become null."""
    header = header_for(series)
    records = [
        {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
         for k, v in zip(header, row, strict=True)}
        for row in rows(series)
    ]
    json.dump(records, out, indent=1)
    out.write("\n")
    return len(records)


def write(series: Sequence[Series], out: IO[str], fmt: str = "csv") -> int:
    if fmt == "csv":
        return write_csv(series, out)
    if fmt == "json":
        return write_json(series, out)
    raise ValueError(f"export format {fmt!r} is not one of: {', '.join(FORMATS)}")
