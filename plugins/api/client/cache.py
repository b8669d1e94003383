"""The last answers to the console's reads, kept in a SQLite file in the data
directory so the pages still show devices, alerts and recent history when the
server cannot be reached, marked as cached with their age.

An entry is the answer to one read (path and query) for one person, so
someone signing in on the same machine never sees another's data. A device's
history is kept per device and metric whatever its time window (its window
moves with every read; offline the last one read is the best there is). The
file holds data, never tokens: sign-in answers are not reads.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

KEEP_S = 7 * 24 * 3600.0  # older answers are dropped
MAX_ROWS = 5000
_NOT_KEPT = ("/audit", "/openapi.json")
_WINDOW_PARAMS = frozenset({"start", "end"})


@dataclass(frozen=True, slots=True)
class Cached:
    data: Any
    headers: dict[str, str]
    fetched_at: datetime


def cache_key(path: str, query: Mapping[str, Any] | None) -> str:
    wanted = {k: str(v) for k, v in (query or {}).items() if v is not None and v != ""}
    if path.startswith("/devices/") and path.endswith("/history"):
        wanted = {k: v for k, v in wanted.items() if k not in _WINDOW_PARAMS}
    return path + ("?" + urlencode(sorted(wanted.items())) if wanted else "")


class OfflineCache:
    def __init__(self, path: Path, user: Callable[[], str], *,
                 clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        self.path = path
        self._user = user
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        os.chmod(path, 0o600)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (user TEXT NOT NULL, "
                         "key TEXT NOT NULL, data TEXT NOT NULL, headers TEXT NOT NULL, "
                         "fetched_at REAL NOT NULL, PRIMARY KEY (user, key))")
        self._db.execute("CREATE TABLE IF NOT EXISTS people (base TEXT PRIMARY KEY, "
                         "actor TEXT NOT NULL)")
        self._writes = 0
        self._closed = False
        #: when a read last reached the server (what the pages show is that old)
        self.last_read: float | None = None
        #: when the pages started showing cached answers (None: online)
        self.offline_since: float | None = None
        self._oldest_shown: float | None = None

    # ------------------------------------------------------------ answers
    def put(self, path: str, query: Mapping[str, Any] | None, data: Any,
            headers: Mapping[str, str]) -> None:
        self.back_online()
        self.last_read = self._clock()
        if path.startswith(_NOT_KEPT) or not self._user() or self._closed:
            return
        kept = {k: v for k, v in headers.items() if k.lower() == "etag"}
        with self._lock:
            if self._closed:
                return
            self._db.execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?)",
                             (self._user(), cache_key(path, query),
                              json.dumps(data, default=str), json.dumps(kept), self._clock()))
            self._writes += 1
            if self._writes % 200 == 0:
                self._trim()

    def get(self, path: str, query: Mapping[str, Any] | None) -> Cached | None:
        if path.startswith(_NOT_KEPT) or not self._user() or self._closed:
            return None
        with self._lock:
            if self._closed:
                return None
            row = self._db.execute("SELECT data, headers, fetched_at FROM answers "
                                   "WHERE user = ? AND key = ?",
                                   (self._user(), cache_key(path, query))).fetchone()
        if row is None:
            return None
        return Cached(json.loads(row[0]), dict(json.loads(row[1])),
                      datetime.fromtimestamp(float(row[2]), UTC))

    def _trim(self) -> None:
        self._db.execute("DELETE FROM answers WHERE fetched_at < ?", (self._clock() - KEEP_S,))
        self._db.execute("DELETE FROM answers WHERE rowid NOT IN (SELECT rowid FROM answers "
                         "ORDER BY fetched_at DESC LIMIT ?)", (MAX_ROWS,))

    # ------------------------------------------------------------ who, offline
    def remember_actor(self, base_url: str, actor: Mapping[str, Any]) -> None:
        """Who was signed in last (user, role, organization; no token), so a
        console started without a connection can show that person's cache."""
        with self._lock:
            if self._closed:
                return
            self._db.execute("INSERT OR REPLACE INTO people VALUES (?, ?)",
                             (base_url, json.dumps(dict(actor), default=str)))

    def last_actor(self, base_url: str) -> dict[str, Any] | None:
        with self._lock:
            if self._closed:
                return None
            row = self._db.execute("SELECT actor FROM people WHERE base = ?",
                                   (base_url,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def went_offline(self, shown: datetime | None) -> None:
        with self._lock:
            if self.offline_since is None:
                self.offline_since = self._clock()
            if shown is not None:
                at = shown.timestamp()
                if self._oldest_shown is None or at < self._oldest_shown:
                    self._oldest_shown = at

    def back_online(self) -> None:
        with self._lock:
            self.offline_since = None
            self._oldest_shown = None

    def offline_view(self) -> tuple[bool, datetime | None]:
        """(offline, when the oldest data shown was read): the oldest cached
        answer served, else the last answer the server gave."""
        with self._lock:
            shown = self._oldest_shown if self._oldest_shown is not None else self.last_read
            return (self.offline_since is not None,
                    None if shown is None else datetime.fromtimestamp(shown, UTC))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()
