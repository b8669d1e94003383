"""The Users page on the aws-local sandbox: the real console signed in through
the sign-in dialog, the page calling the Smart_IOT REST API, the API over
Cognito (moto over HTTP). An admin adds a person, changes the role and
disables them, and the user pool then holds exactly that (groups and the
Enabled flag read with boto3) with the changes in the audit trail; a
technician sees the page closed and the API refuses them anyway.

SMARTIOT_SCREENSHOTS=1 under xvfb-run writes docs/screenshots/aws-users*.png."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import PermissionDenied
from core.model.roles import Role
from core.ports.audit import AuditFilter
from tests.e2e.test_console_on_aws import WAIT, Sandbox, _shot, _texts, sandbox, sign_in

pytestmark = pytest.mark.gui
__all__ = ["sandbox", "sign_in"]  # the fixtures, shared with the console's own walk
NEW = "max.field"
PASSWORD = "Sandbox-Pass-2026!"


def _names(page: Any) -> list[str]:
    return [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())]


def _groups(sandbox: Sandbox, name: str) -> set[str]:
    answer = sandbox.client("cognito-idp").admin_list_groups_for_user(
        UserPoolId=sandbox.info["user_pool_id"], Username=name)
    return {g["GroupName"] for g in answer["Groups"]}


def _enabled(sandbox: Sandbox, name: str) -> bool:
    return bool(sandbox.client("cognito-idp").admin_get_user(
        UserPoolId=sandbox.info["user_pool_id"], Username=name)["Enabled"])


def test_admin_adds_changes_role_and_disables_a_person_in_cognito(
        sandbox: Sandbox, sign_in: Any, qtbot: Any) -> None:
    window = sign_in("admin")
    window.show_page("users")
    page = window.page_widget("users")
    people = {u["username"] for u in sandbox.info["users"]}
    qtbot.waitUntil(lambda: people <= set(_names(page)), timeout=WAIT)
    assert page.add_button.isEnabled() and not page.role_note.isVisible()

    page.add_button.click()
    dialog = page.dialog
    dialog.name.setText(NEW)
    dialog.passwords.password.setText(PASSWORD)
    dialog.passwords.again.setText(PASSWORD)
    _shot(dialog, qtbot, "users-add")
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        dialog.ok_button.click()
    assert _groups(sandbox, NEW) == {"technician"} and _enabled(sandbox, NEW)
    admin = sandbox.user("admin")
    organization = page.selected().organization
    assert page.result_label.text().startswith(f"✓ Added {NEW} as technician")

    page.role_button.click()
    page.dialog.role.setCurrentIndex(list(Role).index(Role.ENGINEER))
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        page.dialog.ok_button.click()
    assert _groups(sandbox, NEW) == {"engineer"}

    with qtbot.waitSignal(page.changed, timeout=WAIT):
        page.disable_button.click()
    assert not _enabled(sandbox, NEW)
    assert page.disable_button.text() == "Enable"
    row = page.model.row_of(NEW)
    assert [page.model.index(row, c).data() for c in (1, 3)] == ["engineer", "disabled"]

    # A refusal in the backend's words: an admin cannot demote themselves.
    page.select(admin["username"])
    with qtbot.waitSignal(page.refused, timeout=WAIT) as refused:
        page.change_role(admin["username"], Role.SUPPORT)
    assert "an admin cannot change their own role" in refused.args[0]
    assert "admin" in _groups(sandbox, admin["username"])
    page.select(NEW)
    _shot(window, qtbot, "users")

    trail = page.context.api.audit.list(AuditFilter(subject=NEW))
    assert [(e.actor, e.action) for e in trail] == [
        (admin["username"], "user.add"), (admin["username"], "user.role"),
        (admin["username"], "user.disable")]
    assert all(e.details.get("organization", organization) == organization for e in trail)


def test_technician_sees_the_users_page_closed_and_the_api_refuses(
        sandbox: Sandbox, sign_in: Any, qtbot: Any) -> None:
    window = sign_in("technician")
    window.show_page("users")
    page = window.page_widget("users")
    qtbot.waitUntil(lambda: any("may not list, add, disable or enable users" in text
                                for text in _texts(page)), timeout=WAIT)
    assert not any(b.isEnabled() for b in (page.add_button, page.role_button,
                                           page.disable_button, page.password_button))
    assert page.model.rowCount() == 0
    _shot(window, qtbot, "users-technician")
    victim = sandbox.user("support")["username"]
    with pytest.raises(PermissionDenied):
        page.context.api.users.set_disabled(victim, True)
    assert _enabled(sandbox, victim)
