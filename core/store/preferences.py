"""SQL preference store: one JSON document per person, versioned like shadows
(INSERT for the first save, UPDATE ... WHERE version = expected after), so of
two consoles saving at once exactly one wins."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from core.errors import ConcurrentModification
from core.model.timeutil import utcnow
from core.ports.preferences import Preferences, PreferenceStore
from core.store.schema import user_preferences as _prefs


class SqlPreferenceStore(PreferenceStore):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, user: str) -> Preferences:
        with self._engine.connect() as conn:
            row = conn.execute(select(_prefs.c.prefs, _prefs.c.version)
                               .where(_prefs.c.user == user)).first()
        return Preferences(user) if row is None else Preferences(user, dict(row[0]), int(row[1]))

    def save(self, user: str, values: dict[str, Any], *,
             expected_version: int | None = None) -> Preferences:
        current = self.get(user)
        base = current.version if expected_version is None else expected_version
        if expected_version is not None and expected_version != current.version:
            raise _conflict(user, expected_version, current.version)
        new = Preferences(user, dict(values), base + 1)
        with self._engine.begin() as conn:
            if base == 0:
                try:
                    conn.execute(insert(_prefs).values(user=user, prefs=new.values, version=1,
                                                       updated_at=utcnow()))
                except IntegrityError:
                    raise _conflict(user, 0, None) from None
                return new
            result = conn.execute(update(_prefs)
                                  .where(_prefs.c.user == user, _prefs.c.version == base)
                                  .values(prefs=new.values, version=new.version,
                                          updated_at=utcnow()))
            if result.rowcount != 1:
                raise _conflict(user, base, None)
        return new


def _conflict(user: str, expected: int, now: int | None) -> ConcurrentModification:
    where = "" if now is None else f", it is now version {now}"
    return ConcurrentModification(
        f"the preferences of {user} changed in the meantime (expected version {expected}"
        f"{where}); read them again and retry")
