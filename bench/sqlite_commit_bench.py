"""Raw SQLite at fleet scale: what the telemetry table's layout costs per commit.

Not a test (not part of ``make test``); see docs/benchmarks.md, "Hub ingest, sixth
round". Bare ``sqlite3`` on the hub's schema (WITHOUT ROWID, key device, metric,
ts; WAL, synchronous NORMAL), one reading per series per simulated second, written
in commits of a given size: how rows per commit, key order, the page cache, the
page size and the WAL's checkpoint threshold change the insert rate as the table
grows. At 10,000 devices (60,000 series) a commit touches a page per series.

    .venv/bin/python bench/sqlite_commit_bench.py                      # the sixth round's rows
    .venv/bin/python bench/sqlite_commit_bench.py --devices 10000 --rows 120000 \\
        --sorted --cache-kib 131072 --checkpoint 250000 --seconds 300
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import struct
import tempfile
import time
from array import array
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

METRICS = ("temperature", "humidity", "pressure", "co2", "battery", "rssi")
SCHEMA = ("CREATE TABLE telemetry (device_id VARCHAR(128) NOT NULL, metric VARCHAR(64) "
          "NOT NULL, ts BIGINT NOT NULL, value FLOAT NOT NULL, "
          "PRIMARY KEY (device_id, metric, ts)) WITHOUT ROWID")
# The same rows keyed by their minute first: a commit's inserts land in the newest
# minutes' part of the tree, whose size does not grow with the table.
MINUTE_SCHEMA = ("CREATE TABLE telemetry (minute BIGINT NOT NULL, device_id VARCHAR(128) "
                 "NOT NULL, metric VARCHAR(64) NOT NULL, ts BIGINT NOT NULL, value FLOAT "
                 "NOT NULL, PRIMARY KEY (minute, device_id, metric, ts)) WITHOUT ROWID")
# A row per message: 10,000 insertion points instead of 60,000, a sixth of the rows.
MESSAGE_SCHEMA = ("CREATE TABLE telemetry (device_id VARCHAR(128) NOT NULL, ts BIGINT "
                  "NOT NULL, body BLOB NOT NULL, PRIMARY KEY (device_id, ts)) WITHOUT ROWID")
LAYOUTS = {"series": (SCHEMA, "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?)"),
           "minute": (MINUTE_SCHEMA, "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?, ?)"),
           "message": (MESSAGE_SCHEMA, "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?)")}
# Both: a row per message, keyed by its minute first.
MESSAGE_MINUTE_SCHEMA = ("CREATE TABLE telemetry (minute BIGINT NOT NULL, device_id "
                         "VARCHAR(128) NOT NULL, ts BIGINT NOT NULL, body BLOB NOT NULL, "
                         "PRIMARY KEY (minute, device_id, ts)) WITHOUT ROWID")
LAYOUTS["message-minute"] = (MESSAGE_MINUTE_SCHEMA,
                             "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?)")
BODY = struct.pack("<6d", *range(6))
# A row per message with its values in columns of their own, the store's layout
# since migration 0018: which metric each column holds is said by the metric set.
COLUMNS_SCHEMA = ("CREATE TABLE telemetry (minute BIGINT NOT NULL, device_id VARCHAR(128) "
                  "NOT NULL, ts BIGINT NOT NULL, metric_set BIGINT NOT NULL, "
                  + ", ".join(f"v{i} FLOAT" for i in range(8))
                  + ", PRIMARY KEY (minute, device_id, ts, metric_set)) WITHOUT ROWID")
LAYOUTS["columns"] = (COLUMNS_SCHEMA, "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?, "
                      "?, ?, ?, ?, ?, ?, ?, ?)")
VALUES = (0.5, 1.5, 2.5, 3.5, 4.5, 5.5, None, None)
SET_ID = 0x3F2A_9C11_0B7D
# chunked: each minute's rows go to a table of their own, keyed as the store's, so an
# insert never lands in a tree larger than a minute of the fleet; once a minute is
# two minutes old it is packed into a row per series (its times and values as
# arrays) and its table dropped. Readers would union the chunks and the raw minutes.
CHUNK_SCHEMA = ("CREATE TABLE telemetry_chunk (device_id VARCHAR(128) NOT NULL, metric "
                "VARCHAR(64) NOT NULL, minute_start BIGINT NOT NULL, ts BLOB NOT NULL, "
                "value BLOB NOT NULL, PRIMARY KEY (device_id, metric, minute_start)) "
                "WITHOUT ROWID")
LAYOUTS["chunked"] = (CHUNK_SCHEMA, "")


class ChunkedWriter:
    """The chunked layout's writes: minute tables in, chunks out."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.minutes: set[int] = set()
        self.merge_s = 0.0
        self.merged_rows = 0

    def table(self, minute: int) -> str:
        if minute not in self.minutes:
            self.db.execute(SCHEMA.replace("TABLE telemetry", f"TABLE raw_{minute}"))
            self.minutes.add(minute)
        return f"raw_{minute}"

    def insert(self, batch: list[tuple[Any, ...]]) -> None:
        by_minute: dict[int, list[tuple[Any, ...]]] = {}
        for row in batch:
            by_minute.setdefault(row[2] // 60_000, []).append(row)
        for minute, rows in sorted(by_minute.items()):
            self.db.executemany(f"INSERT OR IGNORE INTO {self.table(minute)} "
                                "VALUES (?, ?, ?, ?)", rows)

    def merge(self, newest_ts: int) -> None:
        for minute in sorted(m for m in self.minutes if m < newest_ts // 60_000 - 1):
            started = time.perf_counter()
            self.db.execute("BEGIN")
            rows = self.db.execute(f"SELECT device_id, metric, ts, value FROM raw_{minute}"
                                   ).fetchall()  # in key order: the table's
            chunks = []
            for (device, metric), group in groupby(rows, key=itemgetter(0, 1)):
                series = list(group)
                chunks.append((device, metric, minute * 60_000,
                               array("q", [r[2] for r in series]).tobytes(),
                               array("d", [r[3] for r in series]).tobytes()))
            self.db.executemany("INSERT INTO telemetry_chunk VALUES (?, ?, ?, ?, ?)", chunks)
            self.db.execute(f"DROP TABLE raw_{minute}")
            self.db.execute("COMMIT")
            self.minutes.discard(minute)
            self.merged_rows += len(rows)
            self.merge_s += time.perf_counter() - started


def run(devices: int, rows_per_commit: int, *, seconds: int, key_order: bool,
        cache_kib: int, checkpoint: int, page_size: int, workdir: Path,
        synchronous: str = "NORMAL", mmap_mib: int = 0, layout: str = "series"
        ) -> dict[str, float]:
    path = workdir / "t.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute(f"PRAGMA page_size = {page_size}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    if mmap_mib:
        db.execute(f"PRAGMA mmap_size = {mmap_mib << 20}")
    if cache_kib:
        db.execute(f"PRAGMA cache_size = -{cache_kib}")
    if checkpoint:
        db.execute(f"PRAGMA wal_autocheckpoint = {checkpoint}")
    schema, insert = LAYOUTS[layout]
    db.execute(schema)
    chunked = ChunkedWriter(db) if layout == "chunked" else None
    ids = [f"env-{i:05d}" for i in range(devices)]
    t0_ms = 1_780_000_000_000
    pending: list[tuple[Any, ...]] = []
    per_message = layout.startswith("message") or layout == "columns"
    per_second = len(ids) * (1 if per_message else len(METRICS))
    total, commit_s = 0, 0.0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    mark, mark_rows = wall0, 0
    for second in range(seconds):
        if second and second % 60 == 0:
            now = time.perf_counter()
            print(f"  t={second} s: {(total - mark_rows) / (now - mark):,.0f} rows/s",
                  flush=True)
            mark, mark_rows = now, total
        ts = t0_ms + second * 1000
        if layout == "message":
            pending += [(d, ts, BODY) for d in ids]
        elif layout == "message-minute":
            pending += [(ts // 60_000, d, ts, BODY) for d in ids]
        elif layout == "columns":
            pending += [(ts // 60_000, d, ts, SET_ID, *VALUES) for d in ids]
        elif layout == "minute":
            pending += [(ts // 60_000, d, m, ts, 1.5) for d in ids for m in METRICS]
        else:
            pending += [(d, m, ts, 1.5) for d in ids for m in METRICS]
        # rows_per_commit counts readings; a message row holds six
        commit_rows = rows_per_commit * per_second // (len(ids) * len(METRICS))
        while len(pending) >= commit_rows:
            batch, pending = pending[:commit_rows], pending[commit_rows:]
            if key_order:
                batch.sort()
            db.execute("BEGIN")
            if chunked is not None:
                chunked.insert(batch)
            else:
                db.executemany(insert, batch)
            started = time.perf_counter()
            db.execute("COMMIT")
            commit_s += time.perf_counter() - started
            if chunked is not None:
                chunked.merge(ts)
            total += len(batch) * (len(METRICS) if per_message else 1)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    wal_mb = os.path.getsize(f"{path}-wal") / 1e6
    db.close()
    if chunked is not None:
        print(f"  merged {chunked.merged_rows:,} rows into chunks in {chunked.merge_s:.1f} s "
              f"({chunked.merged_rows / max(chunked.merge_s, 1e-9):,.0f} rows/s), "
              f"file {os.path.getsize(path) / 1e6:,.0f} MB", flush=True)
    return {"rows": total, "rows_per_s": total / wall, "cpu_us_per_msg": cpu / total * 6e6,
            "commit_share": commit_s / wall, "wal_mb": wal_mb}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--devices", type=int, nargs="+", default=[10_000])
    p.add_argument("--rows", type=int, nargs="+", default=[30_000, 120_000],
                   help="rows per commit")
    p.add_argument("--seconds", type=int, default=120, help="simulated seconds written")
    p.add_argument("--sorted", action="store_true", help="each commit in key order")
    p.add_argument("--cache-kib", type=int, default=0)
    p.add_argument("--checkpoint", type=int, default=0, help="wal_autocheckpoint pages")
    p.add_argument("--page-size", type=int, default=4096)
    p.add_argument("--synchronous", default="NORMAL", choices=("OFF", "NORMAL", "FULL"))
    p.add_argument("--mmap-mib", type=int, default=0, help="PRAGMA mmap_size in MiB")
    p.add_argument("--layout", nargs="+", default=["series"], choices=sorted(LAYOUTS),
                   help="series: key (device, metric, ts), the store's; minute: key "
                        "(minute, device, metric, ts); message: a row per message; "
                        "message-minute: a row per message keyed (minute, device, ts); "
                        "chunked: a table per raw minute, packed into a row per series "
                        "and minute once two minutes old")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="sqlite-commit-") as tmp:
        for devices in a.devices:
            for rows, layout in [(r, lay) for r in a.rows for lay in a.layout]:
                r = run(devices, rows, seconds=a.seconds, key_order=a.sorted,
                        cache_kib=a.cache_kib, checkpoint=a.checkpoint,
                        page_size=a.page_size, workdir=Path(tmp),
                        synchronous=a.synchronous, mmap_mib=a.mmap_mib, layout=layout)
                print(f"{layout} layout, {devices:,} devices, {rows:,} readings a commit"
                      f"{', key order' if a.sorted else ''}: {r['rows_per_s']:,.0f} rows/s, "
                      f"{r['cpu_us_per_msg']:.1f} us CPU per message, commit "
                      f"{r['commit_share']:.0%} of the wall, WAL {r['wal_mb']:.0f} MB",
                      flush=True)


if __name__ == "__main__":
    main()
