"""What a row per message keyed (minute, device, ts) costs a history read.

Not a test (not part of ``make test``); see docs/benchmarks.md, "Eighth round".
``sqlite_commit_bench.py --layout message-minute`` shows the layout's insert
rate; this is its other side: one device's day at 1 Hz (86,400 messages of six
metrics) read back as one metric's (ts, value) arrays, one index seek per minute,
against a bare fetch of the same 86,400 points from a table holding only that
series in today's (device, metric, ts) layout, in the same run.

    .venv/bin/python bench/layout_read_bench.py --devices 200
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import struct
import tempfile
import time
from itertools import chain
from pathlib import Path

import numpy as np

DAY_S = 86_400
METRICS = ("temperature", "humidity", "pressure", "co2", "battery", "rssi")
T0_MS = 1_780_000_000_000


def build(path: Path, devices: int) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = OFF")
    db.execute("CREATE TABLE telemetry_msg (minute BIGINT NOT NULL, device_id VARCHAR(128) "
               "NOT NULL, ts BIGINT NOT NULL, body BLOB NOT NULL, PRIMARY KEY (minute, "
               "device_id, ts)) WITHOUT ROWID")
    db.execute("CREATE TABLE telemetry (device_id VARCHAR(128) NOT NULL, metric VARCHAR(64) "
               "NOT NULL, ts BIGINT NOT NULL, value FLOAT NOT NULL, PRIMARY KEY (device_id, "
               "metric, ts)) WITHOUT ROWID")
    ids = [f"env-{i:05d}" for i in range(devices)]
    for minute in range(DAY_S // 60):
        rows = []
        for second in range(60):
            ts = T0_MS + (minute * 60 + second) * 1000
            body = struct.pack("<6d", *(ts / 1e9 + k for k in range(6)))
            rows += [(ts // 60_000, d, ts, body) for d in ids]
        rows.sort()
        db.execute("BEGIN")
        db.executemany("INSERT INTO telemetry_msg VALUES (?, ?, ?, ?)", rows)
        db.executemany("INSERT INTO telemetry VALUES (?, ?, ?, ?)",
                       [(ids[0], "humidity", r[2], r[2] / 1e9 + 1) for r in rows
                        if r[1] == ids[0]])
        db.execute("COMMIT")
    db.close()


def read_messages(db: sqlite3.Connection, device: str, metric_index: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = T0_MS, T0_MS + DAY_S * 1000
    minutes = list(range(lo // 60_000, (hi - 1) // 60_000 + 1))
    cursor = db.execute(
        "SELECT ts, body FROM telemetry_msg WHERE minute IN (SELECT value FROM json_each(?))"
        " AND device_id = ? AND ts >= ? AND ts < ? ORDER BY minute, ts",
        (str(minutes), device, lo, hi))
    rows = cursor.fetchall()
    ts = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    values = np.frombuffer(b"".join(r[1] for r in rows), dtype="<f8").reshape(-1, 6)
    return ts, values[:, metric_index].copy()


def read_series(db: sqlite3.Connection, device: str) -> tuple[np.ndarray, np.ndarray]:
    cursor = db.execute("SELECT ts, value FROM telemetry WHERE device_id = ? AND metric = ?"
                        " AND ts >= ? AND ts < ? ORDER BY ts",
                        (device, "humidity", T0_MS, T0_MS + DAY_S * 1000))
    flat = np.fromiter(chain.from_iterable(cursor), dtype=np.float64)
    return flat[0::2].astype(np.int64), flat[1::2].copy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, default=200)
    p.add_argument("--repeat", type=int, default=7)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="layout-read-") as tmp:
        path = Path(tmp) / "t.db"
        started = time.perf_counter()
        build(path, a.devices)
        print(f"built {a.devices} devices x {DAY_S:,} s in {time.perf_counter() - started:.0f} s,"
              f" {path.stat().st_size / 1e6:,.0f} MB", flush=True)
        db = sqlite3.connect(path)
        device = f"env-{0:05d}"
        ts_m, v_m = read_messages(db, device, METRICS.index("humidity"))
        ts_s, v_s = read_series(db, device)
        assert len(ts_m) == DAY_S and np.array_equal(ts_m, ts_s) and np.array_equal(v_m, v_s)
        times: dict[str, list[float]] = {"message": [], "series": []}
        for _ in range(a.repeat):
            for name, fn in (("message", lambda: read_messages(db, device, 1)),
                             ("series", lambda: read_series(db, device))):
                t = time.perf_counter()
                fn()
                times[name].append((time.perf_counter() - t) * 1000)
        m, s = statistics.median(times["message"]), statistics.median(times["series"])
        print(f"one device's day (86,400 points), median of {a.repeat}: row per message "
              f"(minute, device, ts), a seek per minute: {m:.1f} ms; bare fetch of the same "
              f"series, today's layout: {s:.1f} ms; ratio {m / s:.2f}x", flush=True)


if __name__ == "__main__":
    main()
