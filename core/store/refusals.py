"""Telling "the database refused these rows" from "the database is away".

The hub keeps a batch that fails and retries it, because an outage must not
lose what devices sent. But a value the database cannot hold (an integer too
large for its column, a constraint) fails on every retry: if that batch holds
one device's readings only, retrying it for ever would hold back the whole
fleet behind it. Only a database that answered can refuse rows; anything about
reaching it (connection, lock, pool, timeout) is an outage and is retried.
"""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

# What a driver raises for a value it cannot store, before or after the
# database saw it; never what it raises for a connection or a lock.
_VALUE_ERRORS = (OverflowError, ValueError, TypeError)


def rows_refused(error: BaseException) -> bool:
    """True when ``error`` says the rows themselves were refused."""
    if isinstance(error, sa_exc.DataError | sa_exc.IntegrityError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return False  # operational, interface, internal: the database is away or busy
    if isinstance(error, sa_exc.StatementError):
        inner = error.orig
        return isinstance(inner, _VALUE_ERRORS)
    return isinstance(error, _VALUE_ERRORS)
