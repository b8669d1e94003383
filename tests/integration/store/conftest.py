"""Store fixtures: every test runs against a real SQLite file and, when
SMARTIOT_TEST_PG_URL is set, a real PostgreSQL in a throw-away schema."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from core.store import Store, create_store_engine

PG_ENV = "SMARTIOT_TEST_PG_URL"
PG_SKIP_REASON = "SMARTIOT_TEST_PG_URL not set: PostgreSQL variant of the store tests skipped"

# store_url -> connect_args (the PostgreSQL schema travels in search_path).
_CONNECT_ARGS: dict[str, dict[str, Any]] = {}


def connect_args_for(url: str) -> dict[str, Any]:
    return dict(_CONNECT_ARGS.get(url, {}))


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param(
            "postgresql",
            id="postgresql",
            marks=[
                pytest.mark.postgres,
                pytest.mark.skipif(not os.environ.get(PG_ENV), reason=PG_SKIP_REASON),
            ],
        ),
    ]
)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'db' / 'store.db'}"
        return
    base = os.environ[PG_ENV]
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_store_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Each test gets its own URL object identity via a fragment-free query key.
    url = f"{base}{'&' if '?' in base else '?'}application_name={schema}"
    _CONNECT_ARGS[url] = {"options": f"-csearch_path={schema}"}
    try:
        yield url
    finally:
        _CONNECT_ARGS.pop(url, None)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def open_store(store_url: str) -> Iterator[Callable[[], Store]]:
    """Factory for extra Store instances on the same database (think: a second
    console); all are closed before the database is dropped."""
    opened: list[Store] = []

    def _open() -> Store:
        store = Store.open(store_url, connect_args=connect_args_for(store_url))
        opened.append(store)
        return store

    yield _open
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()


@pytest.fixture
def bare_engine(store_url: str) -> Iterator[Engine]:
    """An engine on an empty (unmigrated) database."""
    engine = create_store_engine(store_url, connect_args=connect_args_for(store_url))
    yield engine
    engine.dispose()
