from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Column, Engine, Integer, MetaData, Table, insert, select, text

from core.store import create_store_engine, default_sqlite_url
from core.store.types import UTCDateTime


def test_sqlite_engine_creates_parent_dir_and_sets_pragmas(tmp_path: Path) -> None:
    url = default_sqlite_url(tmp_path / "nested" / "data")
    assert url.endswith("/nested/data/smartiot.db")
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
            assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
            assert (conn.execute(text("PRAGMA busy_timeout")).scalar() or 0) >= 1000
        assert (tmp_path / "nested" / "data" / "smartiot.db").exists()
    finally:
        engine.dispose()


def test_plain_postgresql_url_uses_psycopg3() -> None:
    engine = create_store_engine("postgresql://user@127.0.0.1:1/nowhere")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_utc_datetime_round_trips_aware_utc(bare_engine: Engine) -> None:
    table = Table(
        "tz_probe",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", UTCDateTime()),
    )
    table.create(bare_engine)
    local = datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    with bare_engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=local))
        with pytest.raises(Exception, match="naive"):
            conn.execute(insert(table).values(id=2, at=datetime(2024, 1, 1)))
    with bare_engine.connect() as conn:
        back = conn.execute(select(table.c.at)).scalar_one()
    assert back == local
    assert back.tzinfo is UTC
    assert back.hour == 7
