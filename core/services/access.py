"""The one place a use case asks "may this person do that?" and leaves a trace.

Every mutating use case calls :func:`authorize` before it touches anything
and :func:`record_action` once the change is stored. A refusal is written to
the audit trail too: an auditor looking for who tried to change a rule needs
the attempts that were stopped as much as the ones that went through.
"""

from __future__ import annotations

import logging
from typing import Any

from core.errors import PermissionDenied
from core.model.roles import Actor, Permission
from core.ports.hub import AuditTrail

log = logging.getLogger(__name__)

DENIED = "denied"


def authorize(audit: AuditTrail | None, actor: Actor, permission: Permission, action: str,
              subject: str, details: dict[str, Any] | None = None) -> None:
    """Return if ``actor`` holds ``permission``; otherwise audit the refusal
    (``outcome: denied`` with the reason) and raise PermissionDenied."""
    if actor.can(permission):
        return
    reason = actor.denial(permission)
    if audit is not None:
        try:
            audit.append(actor.user, action, subject, {
                **actor.audit_details(), **(details or {}),
                "outcome": DENIED, "reason": reason, "permission": permission.value,
            })
        except Exception:
            # The refusal stands whether or not it could be written down.
            log.exception("could not audit the refused %s on %s by %s", action, subject,
                          actor.user)
    raise PermissionDenied(reason)


def record_action(audit: AuditTrail | None, actor: Actor, action: str, subject: str,
                  details: dict[str, Any] | None = None) -> None:
    """One audit entry per action that was carried out, with the role that
    allowed it (and the name the person claimed, if any)."""
    if audit is not None:
        audit.append(actor.user, action, subject, {**actor.audit_details(), **(details or {})})
