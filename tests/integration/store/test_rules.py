from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Severity
from core.model.rule import AlertRule, RuleScope
from core.store import Store

T0 = datetime(2024, 7, 1, 6, 30, 0, 250000, tzinfo=UTC)


def _rule(rule_id: str = "temp-high", name: str = "Temperature high", **kw: object) -> AlertRule:
    base: dict[str, object] = {
        "name": name,
        "rule_type": "threshold",
        "params": {"metric": "temp", "op": ">", "value": 80.5, "for_s": 30},
        "rule_id": rule_id,
        "created_at": T0,
        "updated_at": T0,
    }
    base.update(kw)
    return AlertRule(**base)  # type: ignore[arg-type]


def test_rule_round_trips_every_field(store: Store) -> None:
    rule = _rule(
        severity=Severity.CRITICAL,
        scope=RuleScope(
            device_types=frozenset({"pump", "valve"}),
            groups=frozenset({"north"}),
            tags=frozenset({"lab"}),
            device_ids=frozenset({"d1", "d2"}),
            organizations=frozenset({"acme"}),
        ),
        params={"all": [{"rule_type": "threshold", "metric": "temp"}], "n": None, "ü": 1.25},
        enabled=False,
        auto_resolve=False,
        escalate_after_s=900.0,
    )
    store.rules.add(rule)
    assert store.rules.get(rule.rule_id) == rule
    plain = _rule("no-data", "No data", rule_type="no_data", params={"after_s": 600})
    store.rules.add(plain)
    got = store.rules.get("no-data")
    assert got == plain
    assert got.scope == RuleScope() and got.escalate_after_s is None
    with pytest.raises(ValidationError):
        store.rules.add(plain)
    with pytest.raises(NotFound):
        store.rules.get("missing")


def test_list_orders_by_name_and_filters_enabled(store: Store) -> None:
    store.rules.add(_rule("r1", "Zeta"))
    store.rules.add(_rule("r2", "Alpha", enabled=False))
    store.rules.add(_rule("r3", "Mid"))
    assert [r.rule_id for r in store.rules.list()] == ["r2", "r3", "r1"]
    assert [r.rule_id for r in store.rules.list(enabled_only=True)] == ["r3", "r1"]


def test_save_and_delete(store: Store) -> None:
    rule = _rule()
    store.rules.add(rule)
    edited = dataclasses.replace(
        rule,
        params={**rule.params, "value": 85.0},
        enabled=False,
        version=2,
        updated_at=T0 + timedelta(minutes=5),
    )
    store.rules.save(edited)
    assert store.rules.get(rule.rule_id) == edited
    store.rules.delete(rule.rule_id)
    assert store.rules.list() == []
    with pytest.raises(NotFound):
        store.rules.delete(rule.rule_id)
    with pytest.raises(NotFound):
        store.rules.save(dataclasses.replace(edited, version=3))


def test_stale_rule_save_is_a_conflict(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    a.rules.add(_rule())
    seen_by_a, seen_by_b = a.rules.get("temp-high"), b.rules.get("temp-high")
    mine = dataclasses.replace(seen_by_a, name="Hot (alice)", version=seen_by_a.version + 1)
    theirs = dataclasses.replace(seen_by_b, name="Hot (bob)", version=seen_by_b.version + 1)
    a.rules.save(mine)
    with pytest.raises(ConcurrentModification, match="version 2"):
        b.rules.save(theirs)
    assert b.rules.get("temp-high") == mine
