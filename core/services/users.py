"""What people ask about themselves: who the backend takes them for (user, role,
organization and what that role allows) and their stored preferences.

Every role may read and change its own preferences and nobody else's: the
user comes from the Actor, never from the request. Changes are audited like
any other action, so an auditor sees when someone's settings changed.
"""

from __future__ import annotations

import json
from typing import Any

from core.errors import NotFound, ValidationError
from core.model.roles import GRANTS, Actor
from core.ports.hub import AuditTrail
from core.ports.preferences import Preferences, PreferenceStore
from core.services.access import record_action

MAX_PREFERENCES_BYTES = 16 * 1024


class UserService:
    def __init__(self, preferences: PreferenceStore | None,
                 audit: AuditTrail | None = None) -> None:
        self._preferences = preferences
        self._audit = audit

    def me(self, actor: Actor) -> dict[str, Any]:
        return {"user": actor.user, "role": actor.role.value,
                "organization": actor.organization,
                "permissions": sorted(p.value for p in GRANTS[actor.role])}

    def preferences(self, actor: Actor) -> Preferences:
        return self._store().get(actor.user)

    def set_preferences(self, actor: Actor, values: dict[str, Any], *,
                        expected_version: int | None = None) -> Preferences:
        size = len(json.dumps(values, ensure_ascii=False).encode())
        if size > MAX_PREFERENCES_BYTES:
            raise ValidationError(f"preferences: {size} bytes is more than "
                                  f"{MAX_PREFERENCES_BYTES}")
        saved = self._store().save(actor.user, values, expected_version=expected_version)
        record_action(self._audit, actor, "user.preferences", actor.user,
                      {"keys": sorted(values), "version": saved.version})
        return saved

    def _store(self) -> PreferenceStore:
        if self._preferences is None:
            raise NotFound("this backend keeps no preferences")
        return self._preferences
