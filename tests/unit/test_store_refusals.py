"""Which database errors mean "these rows are refused" (drop and count them)
and which mean "the database is away" (keep and retry): the hub drops data
only on the first kind, so an outage never loses what devices sent."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from core.store.refusals import rows_refused


@pytest.mark.parametrize("error", [
    OverflowError("Python int too large to convert to SQLite INTEGER"),
    sa_exc.StatementError("bad value", "INSERT", {}, OverflowError("too large")),
    sa_exc.DataError("INSERT", {}, Exception("numeric field overflow")),
    sa_exc.IntegrityError("INSERT", {}, Exception("CHECK constraint failed")),
])
def test_a_value_the_database_cannot_hold_is_a_refusal(error: BaseException) -> None:
    assert rows_refused(error)


@pytest.mark.parametrize("error", [
    sa_exc.OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked")),
    sa_exc.OperationalError("connect", {}, Exception("connection refused")),
    sa_exc.InterfaceError("INSERT", {}, Exception("connection already closed")),
    sa_exc.TimeoutError("QueuePool limit reached"),
    ConnectionError("reset by peer"),
    sa_exc.StatementError("lost", "INSERT", {}, ConnectionError("reset")),
])
def test_anything_about_reaching_the_database_is_an_outage(error: BaseException) -> None:
    assert not rows_refused(error)
