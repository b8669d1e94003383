"""The PostgreSQL pool asks the server whether a connection is alive only
when it has sat idle (core/store/engine.py): a connection that died in the
pool (a server restart) is replaced without an error, and the hub's writer,
which takes a connection ten times a second, pays no round trip for it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text

from core.store import create_store_engine
from core.store import engine as engine_module
from tests.integration.store.conftest import PG_ENV, PG_SKIP_REASON

pytestmark = [pytest.mark.postgres,
              pytest.mark.skipif(not os.environ.get(PG_ENV), reason=PG_SKIP_REASON)]


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_store_engine(os.environ[PG_ENV], pool_size=1, max_overflow=0)
    yield engine
    engine.dispose()


@pytest.fixture
def pings(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    made: list[float] = []
    real = engine_module.ping

    def counted(dbapi_connection: object) -> None:
        made.append(time.monotonic())
        real(dbapi_connection)

    monkeypatch.setattr(engine_module, "ping", counted)
    return made


def _backend(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_back_from_a_busy_writer_is_not_pinged(engine, pings) -> None:
    first = _backend(engine)
    for _ in range(20):
        assert _backend(engine) == first  # the same pooled connection each time
    assert pings == []


def test_a_connection_that_died_while_idle_is_replaced_without_an_error(
        engine, pings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_S", 0.2)
    first = _backend(engine)
    admin = create_store_engine(os.environ[PG_ENV])
    try:
        with admin.begin() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": first})
    finally:
        admin.dispose()
    time.sleep(0.3)
    second = _backend(engine)  # no OperationalError: the pool replaced it
    assert second != first
    assert len(pings) == 1
