"""The Users page with real widgets over a real SQLite store: an admin adds a
person (with a password they can sign in with), changes the role, disables
and enables them, resets the password, and each change is in the directory
and the audit trail before the page says it is done; refusals are shown in
the backend's words; a technician sees why the page is closed to them."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from sqlalchemy import text

from console.shortcuts import assign_shortcuts
from console.theme import apply_theme
from core.context import AppContext
from core.crypto.passwords import verify_password
from core.hookspecs import hookimpl
from core.model.roles import Actor, Role
from core.model.users import UserAccount
from core.plugins import PluginManager
from core.ports.audit import AuditFilter
from core.ports.backend import Backend
from core.registrations import BackendSpec
from core.store import Store

SHOTS = Path(__file__).resolve().parents[3] / "docs" / "screenshots"
ADMIN = Actor("ada", Role.ADMIN)
TECH = Actor("tess", Role.TECHNICIAN)
WAIT = 15_000


class BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "test store", lambda _ctx: self.backend))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'fleet.db'}")
    s.users.add(UserAccount("ada", Role.ADMIN, created_by="setup"))
    s.users.add(UserAccount("tess", Role.TECHNICIAN, created_by="setup"))
    yield s
    s.close()


@pytest.fixture
def make_page(qtbot: Any, make_context: Callable[..., AppContext], store: Store
              ) -> Callable[[Actor], Any]:
    from plugins.users.widgets.users_page import UsersPage

    backend = Backend(name="local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, audit=store.audit, users=store.users,
                      accounts=store.accounts)

    def make(actor: Actor = ADMIN) -> UsersPage:
        context = make_context(("test-backend", BackendPlugin(backend)), actor=actor)
        page = UsersPage(context)
        qtbot.addWidget(page)
        return page

    return make


def _names(page: Any) -> list[str]:
    return [page.proxy.index(r, 0).data() for r in range(page.proxy.rowCount())]


def _row(page: Any, name: str) -> tuple[str, ...]:
    row = page.model.row_of(name)
    return tuple(page.model.index(row, c).data() for c in range(page.model.columnCount()))


def _user(store: Store, name: str) -> UserAccount:
    account = store.users.get(name)
    assert account is not None, name
    return account


def _actions(store: Store, subject: str) -> list[tuple[str, str, str]]:
    return [(e.actor, e.action, str(e.details.get("outcome", "done")))
            for e in store.audit.search(AuditFilter(subject=subject))]


def test_admin_adds_a_person_changes_role_disables_and_resets_password(
        qtbot: Any, make_page: Any, store: Store) -> None:
    page = make_page()
    qtbot.waitUntil(lambda: _names(page) == ["ada", "tess"], timeout=WAIT)
    assert page.add_button.isEnabled() and not page.role_button.isEnabled()
    assert not page.role_note.isVisible() and "2 people" in page.status.text()

    page.add_button.click()
    dialog = page.dialog
    assert dialog is not None and dialog.chosen_role() is Role.TECHNICIAN  # least privilege
    dialog.name.setText("max.field")
    dialog.passwords.password.setText("correct horse battery")
    dialog.passwords.again.setText("correct horse batterY")
    assert not dialog.ok_button.isEnabled() and "differ" in dialog.problem.text()
    dialog.passwords.again.setText("correct horse battery")
    assert dialog.ok_button.isEnabled()
    with qtbot.waitSignal(page.changed, timeout=WAIT) as added:
        dialog.ok_button.click()
    assert added.args[0] == "add"
    # Persisted before the page said so: the directory and the password are there.
    assert store.users.get("max.field") == added.args[1]
    assert verify_password(store.accounts.password_hash("max.field") or "",
                           "correct horse battery")
    assert page.result_label.text().startswith("✓ Added max.field as technician")
    assert _row(page, "max.field")[1:4] == ("technician", "—", "enabled")
    assert page.status.text().endswith("3 people")
    selected = page.selected()
    assert selected is not None and selected.name == "max.field"

    page.role_button.click()
    role_dialog = page.dialog
    assert not role_dialog.ok_button.isEnabled()  # the current role changes nothing
    role_dialog.role.setCurrentIndex(list(Role).index(Role.ENGINEER))
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        role_dialog.ok_button.click()
    assert _user(store, "max.field").role is Role.ENGINEER
    assert _row(page, "max.field")[1] == "engineer"
    assert page.result_label.text() == "✓ max.field is now engineer."

    assert page.disable_button.text() == "Disable"
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        page.disable_button.click()
    assert _user(store, "max.field").disabled
    assert _row(page, "max.field")[3] == "disabled"
    assert page.status.text().endswith("3 people, 1 disabled")
    assert page.disable_button.text() == "Enable"
    assert page.model.index(page.model.row_of("max.field"), 0).data(
        Qt.ItemDataRole.ForegroundRole) is not None  # greyed

    with qtbot.waitSignal(page.changed, timeout=WAIT):
        page.disable_button.click()
    assert not _user(store, "max.field").disabled
    assert page.status.text().endswith("3 people")

    page.password_button.click()
    pw = page.dialog
    pw.passwords.password.setText("a brand new secret")
    pw.passwords.again.setText("a brand new secret")
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        pw.ok_button.click()
    assert verify_password(store.accounts.password_hash("max.field") or "",
                           "a brand new secret")

    assert [a for _, a, _ in _actions(store, "max.field")] == [
        "user.add", "user.role", "user.disable", "user.enable", "user.password"]
    assert {who for who, _, _ in _actions(store, "max.field")} == {"ada"}
    _screenshots(qtbot, page)


def _screenshots(qtbot: Any, page: Any) -> None:
    """SMARTIOT_SCREENSHOTS=1 under xvfb-run: docs/screenshots/users-{light,dark}.png."""
    if not os.environ.get("SMARTIOT_SCREENSHOTS"):
        return
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    page.resize(1180, 520)
    page.show()
    page.set_disabled("tess", True)
    qtbot.waitUntil(lambda: _row(page, "tess")[3] == "disabled", timeout=WAIT)
    page.select("max.field")
    for theme in ("dark", "light"):
        apply_theme(app, theme)
        qtbot.wait(300)
        page.grab().save(str(SHOTS / f"users-{theme}.png"))


def test_refusals_are_shown_in_the_backends_words(qtbot: Any, make_page: Any,
                                                  store: Store) -> None:
    page = make_page()
    qtbot.waitUntil(lambda: _names(page) == ["ada", "tess"], timeout=WAIT)
    page.select("ada")
    with qtbot.waitSignal(page.refused, timeout=WAIT) as refused:
        page.change_role("ada", Role.SUPPORT)
    assert refused.args[0] == "Could not change the role of ada: an admin cannot change " \
        "their own role"
    assert page.result_label.property("role") == "error"
    assert _user(store, "ada").role is Role.ADMIN and _row(page, "ada")[1] == "admin"

    with qtbot.waitSignal(page.refused, timeout=WAIT) as weak:
        page.add_person("shorty", Role.SUPPORT, "", "abc")
    assert "Could not add shorty: password" in weak.args[0]
    assert store.users.get("shorty") is None  # a weak password adds nobody

    with qtbot.waitSignal(page.refused, timeout=WAIT) as taken:
        page.add_person("tess", Role.SUPPORT)
    assert "tess" in taken.args[0] and _user(store, "tess").role is Role.TECHNICIAN


def test_search_filters_by_any_column_and_ctrl_f_focuses_it(qtbot: Any, make_page: Any,
                                                           store: Store) -> None:
    store.users.add(UserAccount("olga", Role.SUPPORT, "north"))
    page = make_page()
    page.show()
    qtbot.waitExposed(page)
    qtbot.waitUntil(lambda: len(_names(page)) == 3, timeout=WAIT)
    qtbot.keyClick(page.table, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(page.search.hasFocus)
    qtbot.keyClicks(page.search, "NORTH")
    assert _names(page) == ["olga"]
    page.search.clear()
    page.search.setText("technician")
    assert _names(page) == ["tess"]


def test_a_technician_sees_why_and_cannot_change_anyone(qtbot: Any, make_page: Any,
                                                        store: Store) -> None:
    page = make_page(TECH)
    page.show()
    qtbot.waitExposed(page)
    for button in (page.add_button, page.role_button, page.disable_button,
                   page.password_button, page.refresh_button):
        assert not button.isEnabled()
    assert page.role_note.isVisible()
    assert "Add person" in page.role_note.text() and "(admin)" in page.role_note.text()
    assert page.status.text() == ("tess (technician) may not list, add, disable or enable "
                                  "users and change their roles; admins may")
    assert page.model.rowCount() == 0
    # Even called directly, nothing reaches the directory.
    with qtbot.waitSignal(page.refused, timeout=WAIT):
        page.set_disabled("ada", True)
    assert not _user(store, "ada").disabled


def test_a_technician_is_refused_by_the_service_even_past_the_page(
        qtbot: Any, make_page: Any, store: Store) -> None:
    """The page greys out; the use case decides (and records the attempt)."""
    page = make_page(TECH)
    page.allowed = True  # as if the UI were wrong about the role
    with qtbot.waitSignal(page.refused, timeout=WAIT) as refused:
        page.set_disabled("ada", True)
    assert refused.args[0].startswith("Could not disable ada: not allowed:")
    assert not _user(store, "ada").disabled
    assert ("tess", "user.disable", "denied") in _actions(store, "ada")


def test_users_page_is_a_builtin_page_with_the_next_ctrl_number() -> None:
    manager = PluginManager(entry_points=False, blocked=())
    specs = manager.pages()
    assert [s.page_id for s in specs][-1] == "users"
    shortcuts = assign_shortcuts(specs)
    assert shortcuts["audit"] == "Ctrl+6" and shortcuts["users"] == "Ctrl+7"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_dialogs_show_all_their_text(qtbot: Any, theme: str) -> None:
    """Wrapped notes in a form: the window must be as tall as they wrap."""
    from plugins.users.widgets.dialogs import PasswordDialog, PersonDialog, RoleDialog
    from tests.gui.firmware.test_import_dialog_layout import _cut, _overlapping

    app = QApplication.instance()
    assert isinstance(app, QApplication)
    apply_theme(app, theme)
    try:
        for dialog in (PersonDialog("north"), RoleDialog("max", Role.SUPPORT),
                       PasswordDialog("max")):
            qtbot.addWidget(dialog)
            dialog.open()
            qtbot.waitExposed(dialog)
            qtbot.waitUntil(lambda d=dialog: _cut(d) == [] and _overlapping(d) == [],
                            timeout=5_000)
            dialog.close()
    finally:
        apply_theme(app, "light")


def test_an_empty_directory_says_how_to_start(qtbot: Any, make_page: Any,
                                              store: Store) -> None:
    with store.engine.begin() as conn:
        conn.execute(text("DELETE FROM users"))
    page = make_page()
    qtbot.waitUntil(lambda: "nobody is in the directory yet" in page.status.text(),
                    timeout=WAIT)
    assert page.add_button.isEnabled()


def test_a_list_read_before_a_change_is_read_again_and_the_person_stays_selected(
        qtbot: Any, make_page: Any, store: Store) -> None:
    """A slow directory (Cognito under load) can answer a list asked before a
    change after the change's own answer: shown, it would drop the new person
    and the selection, and the next button would act on nobody."""
    page = make_page()
    qtbot.waitUntil(lambda: _names(page) == ["ada", "tess"], timeout=WAIT)
    stale = list(page.model.rows)  # what a list read now will say
    asked_after = page._changes
    page.add_button.click()
    page.dialog.name.setText("max.field")
    page.dialog.passwords.password.setText("correct horse battery")
    page.dialog.passwords.again.setText("correct horse battery")
    with qtbot.waitSignal(page.changed, timeout=WAIT):
        page.dialog.ok_button.click()
    assert page.selected().name == "max.field"

    with qtbot.waitSignal(page.loaded, timeout=WAIT) as again:  # read again, not shown
        page._loaded(stale, asked_after)
        assert "max.field" in _names(page)
    assert again.args == [3] and "max.field" in _names(page)
    assert page.selected() is not None and page.selected().name == "max.field"
    assert page.disable_button.isEnabled()

    page._loaded(list(page.model.rows))  # a refresh of the same list keeps the choice
    assert page.selected().name == "max.field"
