"""The alert store on DynamoDB, through moto's server over HTTP: the console's
queries (by organization and state, by device, fleet counts) are Queries on
their indexes followed page by page, never a Scan; acknowledging is a
conditional write on the version, so of two people exactly one wins and the
other learns who and the state they left."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Alert, AlertEventKind, AlertState, Device, Severity
from core.model.timeutil import utcnow
from core.ports.alerts import AlertQuery
from plugins.aws.dynamodb.tables import (
    ALERTS_BY_DEVICE,
    ALERTS_BY_ORGANIZATION_STATE,
    ALERTS_BY_STATE,
)
from tests.integration.aws.conftest import PAGE, DynamoFleet

START = utcnow() - timedelta(hours=1)


def _raise_many(dynamo: DynamoFleet) -> None:
    """Five alerts on an acme pump, three on a globex meter, one on an unknown
    device, a minute apart (acme-0 oldest)."""
    dynamo.backend.registry.upsert_many([Device("pump-1", organization="acme"),
                                         Device("meter-9", organization="globex")])
    alerts = dynamo.backend.alerts
    for i in range(5):
        alerts.add(Alert("pump-1", "hot", Severity.CRITICAL if i % 2 else Severity.WARNING,
                         f"hot {i}", 80.0 + i, alert_id=f"acme-{i}",
                         created_at=START + timedelta(minutes=i)))
    for i in range(3):
        alerts.add(Alert("meter-9", "leak", Severity.INFO, f"leak {i}", alert_id=f"globex-{i}",
                         created_at=START + timedelta(minutes=i, seconds=30)))
    alerts.add(Alert("stray-1", "hot", Severity.INFO, "unregistered", alert_id="stray",
                     created_at=START + timedelta(minutes=10)))


def _paged(queries: list[dict[str, Any]]) -> bool:
    return len(queries) >= 2 and any("ExclusiveStartKey" in q for q in queries) \
        and all(q["Limit"] == PAGE for q in queries)


def test_every_listing_is_a_paged_query_on_its_index_and_never_a_scan(
        dynamo: DynamoFleet) -> None:
    _raise_many(dynamo)
    alerts = dynamo.backend.alerts
    alerts.save(alerts.get("acme-1").acknowledge("ada"))
    alerts.save(alerts.get("acme-0").acknowledge("ada"))
    alerts.save(alerts.get("acme-0").resolve("ada", "fixed"))

    checks = [
        (lambda: [a.alert_id for a in alerts.list(AlertQuery(organization="acme"))],
         ["acme-4", "acme-3", "acme-2", "acme-1", "acme-0"], ALERTS_BY_ORGANIZATION_STATE),
        (lambda: [a.alert_id for a in alerts.list(AlertQuery(
            organization="acme", states=frozenset({AlertState.ACTIVE})))],
         ["acme-4", "acme-3", "acme-2"], ALERTS_BY_ORGANIZATION_STATE),
        (lambda: [a.alert_id for a in alerts.list(AlertQuery(device_id="meter-9"))],
         ["globex-2", "globex-1", "globex-0"], ALERTS_BY_DEVICE),
        (lambda: [a.alert_id for a in alerts.list()],
         ["stray", "acme-4", "acme-3", "globex-2", "acme-2", "globex-1", "acme-1", "globex-0",
          "acme-0"], ALERTS_BY_STATE),
        (lambda: alerts.counts_by_severity(),
         {Severity.INFO: 4, Severity.WARNING: 2, Severity.CRITICAL: 2}, ALERTS_BY_STATE),
        (lambda: alerts.open_counts_by_device(),
         {"pump-1": 4, "meter-9": 3, "stray-1": 1}, ALERTS_BY_STATE),
    ]
    for run, expected, index in checks:
        dynamo.calls.clear()
        assert run() == expected
        queries = dynamo.calls.named("Query")
        assert {q["IndexName"] for q in queries} == {index}
        assert _paged(queries), f"{index}: {len(queries)} requests"
        assert "Scan" not in dynamo.calls.operations

    dynamo.calls.clear()
    history = alerts.history("acme-0")  # three events at two a page
    assert [e.kind for e in history] == [AlertEventKind.RAISED, AlertEventKind.ACKNOWLEDGED,
                                         AlertEventKind.RESOLVED]
    assert _paged(dynamo.calls.named("Query"))
    assert "Scan" not in dynamo.calls.operations


def test_filters_and_pages_match_the_sql_store(dynamo: DynamoFleet) -> None:
    _raise_many(dynamo)
    alerts = dynamo.backend.alerts
    page = alerts.list(AlertQuery(organization="acme", limit=2, offset=1))
    assert [a.alert_id for a in page] == ["acme-3", "acme-2"]
    assert [a.alert_id for a in alerts.list(AlertQuery(
        severities=frozenset({Severity.CRITICAL})))] == ["acme-3", "acme-1"]
    assert [a.alert_id for a in alerts.list(AlertQuery(
        since=START + timedelta(minutes=2, seconds=10)))] == ["stray", "acme-4", "acme-3",
                                                              "globex-2"]
    # an organization's listing leaves out devices it does not have (and unregistered ones)
    assert {a.alert_id for a in alerts.list(AlertQuery(organization="globex"))} == {
        "globex-0", "globex-1", "globex-2"}
    assert alerts.list(AlertQuery(organization="acme", device_id="meter-9")) == []
    assert alerts.open_alert_for("pump-1", "hot") == alerts.get("acme-4")
    assert alerts.open_alert_for("pump-1", "leak") is None
    with pytest.raises(ValidationError, match="acme-0 already exists"):
        alerts.add(Alert("pump-1", "hot", Severity.INFO, "again", alert_id="acme-0"))
    with pytest.raises(NotFound, match="'nope' does not exist"):
        alerts.get("nope")


def test_of_two_acknowledgements_from_the_same_version_one_wins_the_other_learns_who(
        dynamo: DynamoFleet) -> None:
    _raise_many(dynamo)
    stores = [dynamo.backend.alerts, dynamo.second_backend().alerts]
    seen = [s.get("acme-4") for s in stores]  # both consoles show it active, version 1
    stores[1].save(seen[1].acknowledge("bob", "bob is on it"))
    with pytest.raises(ConcurrentModification,
                       match=r"changed by bob in the meantime \(it is now acknowledged, "
                             r"version 2\)") as caught:
        stores[0].save(seen[0].acknowledge("ada", "ada is on it"))
    assert caught.value.changed_by == "bob"
    current = stores[0].get("acme-4")
    assert (current.state, current.acknowledged_by, current.version) == (
        AlertState.ACKNOWLEDGED, "bob", 2)
    assert [(e.kind, e.actor) for e in stores[0].history("acme-4")] == [
        (AlertEventKind.RAISED, "system"), (AlertEventKind.ACKNOWLEDGED, "bob")]


def test_the_conditional_write_itself_refuses_a_change_that_lost_the_race(
        dynamo: DynamoFleet) -> None:
    """The competing acknowledgement lands between this console's read and its
    write (injected just before the TransactWriteItems is sent): DynamoDB's
    condition on the version refuses it, and nothing of it is stored. The race
    is injected rather than left to threads because moto's transactions are not
    isolated from each other (docs/aws.md, "Gaps")."""
    _raise_many(dynamo)
    other = dynamo.second_backend().alerts
    alert = dynamo.backend.alerts.get("acme-3")
    raced: list[bool] = []

    def bob_first(**_: Any) -> None:
        if not raced:
            raced.append(True)
            other.save(other.get("acme-3").acknowledge("bob"))

    events = dynamo.backend.clients.dynamodb.meta.events
    events.register("before-parameter-build.dynamodb.TransactWriteItems", bob_first)
    try:
        with pytest.raises(ConcurrentModification, match="changed by bob") as caught:
            dynamo.backend.alerts.save(alert.acknowledge("ada", "mine"))
    finally:
        events.unregister("before-parameter-build.dynamodb.TransactWriteItems", bob_first)
    assert caught.value.changed_by == "bob" and raced == [True]
    current = dynamo.backend.alerts.get("acme-3")
    assert (current.acknowledged_by, current.ack_comment, current.version) == ("bob", None, 2)
    assert [e.actor for e in dynamo.backend.alerts.history("acme-3")] == ["system", "bob"]


def test_resolving_and_reopening_move_the_alert_between_state_indexes(
        dynamo: DynamoFleet) -> None:
    _raise_many(dynamo)
    alerts = dynamo.backend.alerts
    resolved = alerts.get("globex-1").resolve("gus", "valve closed")
    alerts.save(resolved)
    open_ids = {a.alert_id for a in alerts.list(AlertQuery(
        organization="globex", states=frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})))}
    assert open_ids == {"globex-0", "globex-2"}
    alerts.save(resolved.reopen(3.0, "leaking again"))
    assert alerts.open_alert_for("meter-9", "leak") == alerts.get("globex-2")  # newest first
    assert {a.alert_id for a in alerts.list(AlertQuery(
        organization="globex", states=frozenset({AlertState.ACTIVE})))} == {
        "globex-0", "globex-1", "globex-2"}
    history = alerts.history("globex-1")
    assert [e.kind for e in history] == [AlertEventKind.RAISED, AlertEventKind.RESOLVED,
                                         AlertEventKind.REOPENED]
    assert history[-1].details["previous_comment"] == "valve closed"


def test_an_alert_raised_before_its_device_was_registered_joins_its_organization(
        dynamo: DynamoFleet) -> None:
    _raise_many(dynamo)
    alerts = dynamo.backend.alerts
    assert "stray" not in {a.alert_id for a in alerts.list(AlertQuery(organization="acme"))}
    dynamo.backend.registry.upsert(Device("stray-1", organization="acme"))
    alerts.save(alerts.get("stray").acknowledge("ada"))
    assert [a.alert_id for a in alerts.list(AlertQuery(
        organization="acme", states=frozenset({AlertState.ACKNOWLEDGED})))] == ["stray"]
