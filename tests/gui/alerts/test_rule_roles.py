"""The rule editor saves and deletes through AlertService with the person's
Actor: a support login cannot change rules (finding 7: rules were edited by a
support user and not audited), an engineer can, and both leave an entry."""

from __future__ import annotations

from typing import Any

from core.model import AlertRule
from core.model.roles import Actor, Role
from core.services.session import LocalFleetApi
from core.services.wiring import build_services


def _editor(qtbot: Any, backend: Any, actor: Actor) -> Any:
    from plugins.alerts.widgets.rule_editor import RuleEditorDialog

    dialog = RuleEditorDialog(LocalFleetApi(build_services(backend), actor))
    qtbot.addWidget(dialog)
    with qtbot.waitSignal(dialog.rules_loaded, timeout=15_000):
        pass
    return dialog


def _fill(dialog: Any) -> None:
    dialog.name.setText("Hot pumps")
    dialog.rule_type.setCurrentIndex(dialog.rule_type.findData("threshold"))
    form = dialog.param_forms["threshold"]
    form.fields["metric"].setText("temperature")
    form.fields["limit"].setText("70")


def test_support_cannot_add_or_delete_rules_and_the_attempts_are_audited(
        qtbot: Any, backend: Any, store: Any) -> None:
    store.rules.add(AlertRule("Cold", "threshold", {"metric": "temp", "op": "below",
                                                    "limit": 0}, rule_id="cold"))
    dialog = _editor(qtbot, backend, Actor("sam", Role.SUPPORT))
    _fill(dialog)
    # greyed out with the reason on the dialog; the service refuses even so
    assert not dialog.save_button.isEnabled() and not dialog.new_button.isEnabled()
    assert "New rule, Save, Delete (engineer or admin)" in dialog.role_note.text()
    dialog.save()
    qtbot.waitUntil(lambda: "may not add, edit or delete alert rules" in dialog.error.text(),
                    timeout=15_000)
    dialog.edit_rule(store.rules.get("cold"))
    dialog.delete_current()
    dialog.delete_current()  # "Really delete?"
    qtbot.waitUntil(lambda: "Not deleted" in dialog.error.text(), timeout=15_000)
    assert [r.rule_id for r in store.rules.list()] == ["cold"]
    assert [(e.actor, e.action, e.details["outcome"]) for e in store.audit.entries()] == [
        ("sam", "rule.add", "denied"), ("sam", "rule.delete", "denied")]


def test_an_engineer_adds_a_rule_under_their_name(qtbot: Any, backend: Any, store: Any) -> None:
    dialog = _editor(qtbot, backend, Actor("erin", Role.ENGINEER))
    _fill(dialog)
    with qtbot.waitSignal(dialog.saved, timeout=15_000):
        dialog.save_button.click()
    [rule] = store.rules.list()
    [entry] = store.audit.entries()
    assert (entry.actor, entry.action, entry.subject) == ("erin", "rule.add", rule.rule_id)
