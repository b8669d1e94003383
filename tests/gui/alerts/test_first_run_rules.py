"""A new database has no alert rules: the Alerts page offers the default set
(finding 4 of the team set-up: nothing ever alerted and nothing said why)."""

from __future__ import annotations

from typing import Any

import pytest

from core.model import AlertRule
from core.model.roles import Actor, Role
from plugins.alerts.widgets.first_run import DefaultRulesBanner

pytestmark = pytest.mark.gui


def _page(qtbot: Any, make_context: Any, backend: Any, actor: Actor) -> Any:
    from plugins.alerts.widgets.alerts_page import AlertsPage

    from .conftest import BackendPlugin

    page = AlertsPage(make_context(("test-backend", BackendPlugin(backend)), actor=actor))
    qtbot.addWidget(page)
    page.resize(1200, 700)
    page.show()
    qtbot.waitUntil(lambda: page.findChild(DefaultRulesBanner) is not None, timeout=15_000)
    return page


def test_an_engineer_adds_the_default_rules_from_the_first_run_banner(
        qtbot: Any, make_context: Any, backend: Any, store: Any) -> None:
    page = _page(qtbot, make_context, backend, Actor("erin", Role.ENGINEER))
    banner = page.findChild(DefaultRulesBanner)
    qtbot.waitUntil(banner.isVisible, timeout=15_000)
    assert "no alert rules" in banner.text.text()
    assert banner.add_button.isEnabled() and not banner.note.isVisible()
    with qtbot.waitSignal(banner.added, timeout=15_000):
        banner.add_button.click()
    assert not banner.isVisible()
    assert {r.rule_id for r in store.rules.list()} >= {"demo-temperature-high", "demo-no-data"}
    entries = store.audit.entries()
    assert entries and {(e.actor, e.action) for e in entries} == {("erin", "rule.add")}


def test_support_sees_the_offer_disabled_with_the_reason_on_the_page(
        qtbot: Any, make_context: Any, backend: Any, store: Any) -> None:
    page = _page(qtbot, make_context, backend, Actor("sam", Role.SUPPORT))
    banner = page.findChild(DefaultRulesBanner)
    qtbot.waitUntil(banner.isVisible, timeout=15_000)
    assert not banner.add_button.isEnabled()
    assert banner.note.isVisible() and "engineer or admin" in banner.note.text()


def test_no_offer_when_the_database_has_rules(
        qtbot: Any, make_context: Any, backend: Any, store: Any) -> None:
    store.rules.add(AlertRule("Silent", "no_data", {"minutes": 5}, rule_id="ours"))
    seen: list[bool] = []
    original = DefaultRulesBanner.__init__

    def spy(self: DefaultRulesBanner, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.checked.connect(seen.append)

    DefaultRulesBanner.__init__ = spy  # type: ignore[method-assign]
    try:
        page = _page(qtbot, make_context, backend, Actor("erin", Role.ENGINEER))
    finally:
        DefaultRulesBanner.__init__ = original  # type: ignore[method-assign]
    qtbot.waitUntil(lambda: seen == [False], timeout=15_000)
    assert not page.findChild(DefaultRulesBanner).isVisible()
