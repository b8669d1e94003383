"""The alert store on DynamoDB (``iot-alerts-{stage}``, history in
``iot-alert-events-{stage}``).

Indexes follow the console's queries, each sorted by ``created_at`` so the
newest come first and a page needs only the first items:

- ``DeviceIndex`` (``device_id``): a device's alerts (device page, the engine's
  open alert of a rule on a device);
- ``OrganizationStateIndex`` (``org_state`` = ``"{organization}#{state}"``):
  an organization's open, acknowledged or resolved alerts (the Alerts page);
- ``StateIndex`` (``state``): the same across organizations (the one-person
  console, fleet counts).

The organization is copied onto the alert when it is raised (from the device
registry), as the SQL store joins it: alerts of unregistered devices belong to
no organization and stay out of ``OrganizationStateIndex`` (a sparse index).

A change is one TransactWriteItems: the alert Put conditional on the stored
``version`` being the one the change started from, plus its history events.
Of two simultaneous acknowledgements exactly one transaction passes; the
other gets ConcurrentModification naming who won and the state they left.
"""

from __future__ import annotations

import builtins
import heapq
import time
from collections.abc import Iterator
from typing import Any

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model import Alert, AlertEvent, AlertEventKind, AlertState, Severity, history_of
from core.ports.alerts import AlertQuery, AlertStore
from plugins.aws.dynamodb.codec import (
    Item,
    get_int,
    get_json,
    get_num,
    get_stamps,
    get_str,
    get_time,
    iso,
    put_json,
    put_num,
    put_str,
    put_time,
)
from plugins.aws.dynamodb.paging import query_items
from plugins.aws.dynamodb.tables import (
    ALERTS_BY_DEVICE,
    ALERTS_BY_ORGANIZATION_STATE,
    ALERTS_BY_STATE,
)
from plugins.aws.settings import AwsSettings

_OPEN_STATES = (AlertState.ACTIVE, AlertState.ACKNOWLEDGED)
_CONFLICT_RETRIES = 4


class DynamoAlertStore(AlertStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("alerts")
        self._events = settings.table("alert-events")
        self._devices = settings.table("devices")
        self._page = settings.page_size

    # -- writes ---------------------------------------------------------------

    def add(self, alert: Alert) -> None:
        item = _to_item(alert, self._organization_of(alert.device_id))
        try:
            self._client.transact_write_items(TransactItems=[
                {"Put": {"TableName": self._table, "Item": item,
                         "ConditionExpression": "attribute_not_exists(alert_id)"}},
                *self._event_puts(history_of(None, alert)),
            ])
        except self._client.exceptions.TransactionCanceledException:
            raise ValidationError(f"alert {alert.alert_id} already exists") from None

    def save(self, alert: Alert) -> None:
        expected = alert.version - 1
        before = self._item(alert.alert_id)
        if before is None:
            raise NotFound(f"alert {alert.alert_id!r} does not exist")
        if get_int(before, "version") != expected:
            raise _conflict(alert.alert_id, before)
        old = _to_domain(before)
        # an alert raised before its device was registered joins the device's
        # organization with its next change
        organization = (get_str(before, "organization_id")
                        or self._organization_of(alert.device_id))
        item = _to_item(alert, organization)
        request = [
            {"Put": {"TableName": self._table, "Item": item,
                     "ConditionExpression": "version = :expected",
                     "ExpressionAttributeValues": {":expected": {"N": str(expected)}}}},
            *self._event_puts(history_of(old, alert)),
        ]
        for attempt in range(_CONFLICT_RETRIES):
            try:
                self._client.transact_write_items(TransactItems=request)
                return
            except self._client.exceptions.TransactionCanceledException as exc:
                if not _in_flight(exc) or attempt == _CONFLICT_RETRIES - 1:
                    break
                # Another transaction on this alert is still in flight: once it
                # commits, the retry's condition decides (refused if it won).
                time.sleep(0.02 * 2 ** attempt)
        current = self._item(alert.alert_id)
        if current is None:
            raise NotFound(f"alert {alert.alert_id!r} does not exist")
        raise _conflict(alert.alert_id, current)

    # -- reads ----------------------------------------------------------------

    def get(self, alert_id: str) -> Alert:
        item = self._item(alert_id)
        if item is None:
            raise NotFound(f"alert {alert_id!r} does not exist")
        return _to_domain(item)

    def list(self, query: AlertQuery | None = None) -> builtins.list[Alert]:
        q = query or AlertQuery()
        out: builtins.list[Alert] = []
        skipped = 0
        for alert in self._newest_first(q):
            if skipped < q.offset:
                skipped += 1
                continue
            if q.limit is not None and len(out) >= q.limit:
                break
            out.append(alert)
        return out

    def open_alert_for(self, device_id: str, rule_id: str) -> Alert | None:
        items = query_items(
            self._client, self._page, TableName=self._table, IndexName=ALERTS_BY_DEVICE,
            KeyConditionExpression="device_id = :d", ScanIndexForward=False,
            FilterExpression="rule_id = :r AND #s <> :resolved",
            ExpressionAttributeNames={"#s": "state"},
            ExpressionAttributeValues={":d": {"S": device_id}, ":r": {"S": rule_id},
                                       ":resolved": {"S": AlertState.RESOLVED.value}})
        first = next(items, None)
        return None if first is None else _to_domain(first)

    def counts_by_severity(self, *, open_only: bool = True) -> dict[Severity, int]:
        counts = dict.fromkeys(Severity, 0)
        states = _OPEN_STATES if open_only else tuple(AlertState)
        for state in states:
            for item in self._by_state(state, projection="severity"):
                counts[Severity.parse(str(get_str(item, "severity")))] += 1
        return counts

    def open_counts_by_device(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in _OPEN_STATES:
            for item in self._by_state(state, projection="device_id"):
                device_id = str(get_str(item, "device_id"))
                counts[device_id] = counts.get(device_id, 0) + 1
        return counts

    def history(self, alert_id: str) -> builtins.list[AlertEvent]:
        return [_event_domain(item) for item in query_items(
            self._client, self._page, TableName=self._events,
            KeyConditionExpression="alert_id = :a",
            ExpressionAttributeValues={":a": {"S": alert_id}}, ConsistentRead=True)]

    # -- helpers --------------------------------------------------------------

    def _item(self, alert_id: str) -> Item | None:
        answer = self._client.get_item(TableName=self._table, Key={"alert_id": {"S": alert_id}},
                                       ConsistentRead=True)
        item: Item | None = answer.get("Item")
        return item

    def _organization_of(self, device_id: str) -> str:
        answer = self._client.get_item(TableName=self._devices,
                                       Key={"device_id": {"S": device_id}},
                                       ProjectionExpression="organization_id",
                                       ConsistentRead=True)  # a device registered just now
        return get_str(answer.get("Item", {}), "organization_id") or ""

    def _event_puts(self, events: builtins.list[AlertEvent]) -> builtins.list[dict[str, Any]]:
        return [{"Put": {"TableName": self._events, "Item": _event_item(e, i),
                         "ConditionExpression": "attribute_not_exists(event_key)"}}
                for i, e in enumerate(events)]

    def _by_state(self, state: AlertState, *, projection: str) -> Iterator[Item]:
        return query_items(self._client, self._page, TableName=self._table,
                           IndexName=ALERTS_BY_STATE, KeyConditionExpression="#s = :s",
                           ProjectionExpression=f"{projection}, alert_id",
                           ExpressionAttributeNames={"#s": "state"},
                           ExpressionAttributeValues={":s": {"S": state.value}})

    def _newest_first(self, q: AlertQuery) -> Iterator[Alert]:
        """One Query per index partition the filter names (a device; or each
        state of an organization, or of the whole fleet), newest first, merged
        lazily; the remaining filters are applied to the items read."""
        states = sorted(q.states) if q.states else builtins.list(AlertState)
        since: dict[str, Any] = {}
        condition = ""
        if q.since is not None:
            condition = " AND created_at >= :since"
            since = {":since": {"S": iso(q.since)}}
        if q.device_id:
            requests = [{"IndexName": ALERTS_BY_DEVICE,
                         "KeyConditionExpression": "device_id = :k" + condition,
                         "ExpressionAttributeValues": {":k": {"S": q.device_id}, **since}}]
        elif q.organization:
            requests = [{"IndexName": ALERTS_BY_ORGANIZATION_STATE,
                         "KeyConditionExpression": "org_state = :k" + condition,
                         "ExpressionAttributeValues": {
                             ":k": {"S": f"{q.organization}#{s.value}"}, **since}}
                        for s in states]
        else:
            requests = [{"IndexName": ALERTS_BY_STATE,
                         "KeyConditionExpression": "#s = :k" + condition,
                         "ExpressionAttributeNames": {"#s": "state"},
                         "ExpressionAttributeValues": {":k": {"S": s.value}, **since}}
                        for s in states]
        streams = [query_items(self._client, self._page, TableName=self._table,
                               ScanIndexForward=False, **r) for r in requests]
        merged = heapq.merge(*streams, key=lambda i: str(get_str(i, "created_at")),
                             reverse=True)
        for item in merged:
            if q.organization and get_str(item, "organization_id") != q.organization:
                continue
            if q.device_ids and get_str(item, "device_id") not in q.device_ids:
                continue  # before decoding: a page's devices among the fleet's alerts
            alert = _to_domain(item)
            if q.states and alert.state not in q.states:
                continue
            if q.severities and alert.severity not in q.severities:
                continue
            if q.changed_since is not None and alert.updated_at < q.changed_since:
                continue
            yield alert


def _in_flight(exc: Exception) -> bool:
    """DynamoDB cancels a transaction with ``TransactionConflict`` when another
    one on the same item is in progress: nothing is decided yet, unlike
    ``ConditionalCheckFailed`` (someone else's change is stored)."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or []
    codes = {reason.get("Code") for reason in reasons}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def _conflict(alert_id: str, current: Item) -> ConcurrentModification:
    """The same message and ``changed_by`` as the SQL store: the service turns it
    into 409 over REST, with the state the winner left."""
    state = get_str(current, "state") or ""
    acknowledged_by = get_str(current, "acknowledged_by")
    resolved_by = get_str(current, "resolved_by")
    who = None
    if state == AlertState.RESOLVED.value:
        who = resolved_by or acknowledged_by
    elif state == AlertState.ACKNOWLEDGED.value:
        who = acknowledged_by
    by = f" by {who}" if who else ""
    return ConcurrentModification(
        f"alert {alert_id} was changed{by} in the meantime (it is now {state}, version "
        f"{get_int(current, 'version')}); reload it and try again", changed_by=who)


def _to_item(a: Alert, organization: str) -> Item:
    item: Item = {"alert_id": {"S": a.alert_id}}
    put_str(item, "device_id", a.device_id)
    put_str(item, "organization_id", organization)
    if organization:
        item["org_state"] = {"S": f"{organization}#{a.state.value}"}
    put_str(item, "rule_id", a.rule_id)
    put_str(item, "severity", a.severity.value)
    item["message"] = {"S": a.message}
    put_num(item, "value", a.value)
    put_str(item, "state", a.state.value)
    put_time(item, "created_at", a.created_at)
    put_time(item, "updated_at", a.updated_at)
    put_time(item, "acknowledged_at", a.acknowledged_at)
    put_str(item, "acknowledged_by", a.acknowledged_by)
    put_str(item, "ack_comment", a.ack_comment)
    put_time(item, "resolved_at", a.resolved_at)
    put_str(item, "resolved_by", a.resolved_by)
    put_str(item, "resolve_comment", a.resolve_comment)
    put_time(item, "snoozed_until", a.snoozed_until)
    put_num(item, "version", a.version)
    return item


def _to_domain(item: Item) -> Alert:
    created, updated = get_stamps(item, "alerts")
    return Alert(
        alert_id=str(get_str(item, "alert_id")),
        device_id=str(get_str(item, "device_id")),
        rule_id=str(get_str(item, "rule_id")),
        severity=Severity.parse(str(get_str(item, "severity"))),
        message=get_str(item, "message") or "",
        value=get_num(item, "value"),
        state=AlertState.parse(str(get_str(item, "state"))),
        created_at=created,
        updated_at=updated,
        acknowledged_at=get_time(item, "acknowledged_at"),
        acknowledged_by=get_str(item, "acknowledged_by"),
        ack_comment=get_str(item, "ack_comment"),
        resolved_at=get_time(item, "resolved_at"),
        resolved_by=get_str(item, "resolved_by"),
        snoozed_until=get_time(item, "snoozed_until"),
        version=get_int(item, "version", 1),
        resolve_comment=get_str(item, "resolve_comment"),
    )


def _event_item(e: AlertEvent, index: int) -> Item:
    # version, then the order within one change: the history reads back in order
    item: Item = {"alert_id": {"S": e.alert_id},
                  "event_key": {"S": f"{e.version:010d}#{index:02d}"}}
    put_time(item, "at", e.at)
    put_str(item, "kind", e.kind.value)
    put_str(item, "actor", e.actor)
    put_str(item, "comment", e.comment)
    put_json(item, "details", e.details)
    put_num(item, "version", e.version)
    return item


def _event_domain(item: Item) -> AlertEvent:
    at = get_time(item, "at")
    assert at is not None, "events are stored with their time"
    return AlertEvent(str(get_str(item, "alert_id")), at,
                      AlertEventKind(str(get_str(item, "kind"))), get_str(item, "actor") or "",
                      get_str(item, "comment") or "", get_json(item, "details", {}),
                      get_int(item, "version", 1))
