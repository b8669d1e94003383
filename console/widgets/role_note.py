"""A small note on a page saying which of its actions the person's role does
not allow, and who may do them.

A greyed-out button alone leaves people guessing (a tooltip is found only by
hovering), so every page with role-gated actions shows this line beside them.
Roles are decided in the service layer; the note and the disabled buttons
only reflect ``actor.can(permission)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtWidgets import QLabel, QWidget

from core.model.roles import GRANTS, Actor, Permission


def roles_for(permission: Permission) -> str:
    """"technician, engineer or admin": the roles that hold ``permission``."""
    roles = [r.value for r, grants in GRANTS.items() if permission in grants]
    return roles[0] if len(roles) == 1 else ", ".join(roles[:-1]) + " or " + roles[-1]


def role_note_text(actor: Actor, actions: Iterable[tuple[str, Permission]]) -> str:
    """``""`` when the role allows every action; else one sentence naming the
    greyed-out actions, grouped by the roles that may do them."""
    missing: dict[str, list[str]] = {}
    for label, permission in actions:
        if not actor.can(permission):
            names = missing.setdefault(roles_for(permission), [])
            if label not in names:
                names.append(label)
    if not missing:
        return ""
    parts = [f"{', '.join(labels)} ({roles})" for roles, labels in missing.items()]
    return (f"Signed in as {actor.user} ({actor.role.value}), so these are greyed out; "
            f"they need another role: {'; '.join(parts)}.")


class RoleNote(QLabel):
    """Hidden when the role allows everything listed."""

    def __init__(self, actor: Actor, actions: Iterable[tuple[str, Permission]],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("RoleNote")
        self.setProperty("role", "secondary")
        self.setWordWrap(True)
        self.set_actor(actor, actions)

    def set_actor(self, actor: Actor, actions: Iterable[tuple[str, Permission]]) -> None:
        text = role_note_text(actor, actions)
        self.setText(text)
        self.setVisible(bool(text))
