"""Alert rules on DynamoDB (``iot-alert-rules-{stage}``).

A fleet has tens of rules, read whole by every alert engine (the Kinesis
consumer on each cold start) and by the Rules page: they live in one
partition (``kind`` = ``rule``, sort key ``rule_id``), so listing them is one
Query, never a Scan. An edit is a Put conditional on the version it started
from, so of two people editing a rule exactly one save lands."""

from __future__ import annotations

import builtins
from typing import Any

from core.errors import ConcurrentModification, NotFound, ValidationError
from core.model.alert import Severity
from core.model.rule import AlertRule, RuleScope
from core.ports.hub import AlertRuleStore
from plugins.aws.dynamodb.codec import (
    Item,
    get_int,
    get_json,
    get_stamps,
    get_str,
    put_json,
    put_num,
    put_str,
    put_time,
)
from plugins.aws.dynamodb.paging import query_items
from plugins.aws.settings import AwsSettings

RULES_PARTITION = "rule"


class DynamoAlertRuleStore(AlertRuleStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("alert-rules")
        self._page = settings.page_size

    def add(self, rule: AlertRule) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=_to_item(rule),
                                  ConditionExpression="attribute_not_exists(rule_id)")
        except self._client.exceptions.ConditionalCheckFailedException:
            raise ValidationError(f"alert rule {rule.rule_id} already exists") from None

    def get(self, rule_id: str) -> AlertRule:
        answer = self._client.get_item(TableName=self._table, Key=_key(rule_id),
                                       ConsistentRead=True)
        if "Item" not in answer:
            raise NotFound(f"alert rule {rule_id!r} does not exist")
        return _to_domain(answer["Item"])

    def save(self, rule: AlertRule) -> None:
        try:
            self._client.put_item(
                TableName=self._table, Item=_to_item(rule),
                ConditionExpression="version = :expected",
                ExpressionAttributeValues={":expected": {"N": str(rule.version - 1)}})
        except self._client.exceptions.ConditionalCheckFailedException:
            answer = self._client.get_item(TableName=self._table, Key=_key(rule.rule_id),
                                           ConsistentRead=True)
            if "Item" not in answer:
                raise NotFound(f"alert rule {rule.rule_id!r} does not exist") from None
            raise ConcurrentModification(
                f"alert rule {rule.name!r} ({rule.rule_id}) was changed in the meantime (it is "
                f"now version {get_int(answer['Item'], 'version')}, the edit was based on "
                f"version {rule.version - 1}); reload it and try again") from None

    def list(self, *, enabled_only: bool = False) -> builtins.list[AlertRule]:
        rules = [_to_domain(item) for item in query_items(
            self._client, self._page, TableName=self._table,
            KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": RULES_PARTITION}}, ConsistentRead=True)]
        if enabled_only:
            rules = [r for r in rules if r.enabled]
        return sorted(rules, key=lambda r: (r.name, r.rule_id))

    def delete(self, rule_id: str) -> None:
        try:
            self._client.delete_item(TableName=self._table, Key=_key(rule_id),
                                     ConditionExpression="attribute_exists(rule_id)")
        except self._client.exceptions.ConditionalCheckFailedException:
            raise NotFound(f"alert rule {rule_id!r} does not exist") from None


def _key(rule_id: str) -> Item:
    return {"kind": {"S": RULES_PARTITION}, "rule_id": {"S": rule_id}}


def _to_item(r: AlertRule) -> Item:
    item = _key(r.rule_id)
    item["name"] = {"S": r.name}
    put_str(item, "rule_type", r.rule_type)
    put_json(item, "params", r.params)
    put_str(item, "severity", r.severity.value)
    put_json(item, "scope", r.scope.as_dict())
    item["enabled"] = {"BOOL": r.enabled}
    item["auto_resolve"] = {"BOOL": r.auto_resolve}
    put_num(item, "escalate_after_s", r.escalate_after_s)
    put_time(item, "created_at", r.created_at)
    put_time(item, "updated_at", r.updated_at)
    put_num(item, "version", r.version)
    return item


def _to_domain(item: Item) -> AlertRule:
    created, updated = get_stamps(item, "rules")
    escalate = item.get("escalate_after_s")
    return AlertRule(
        name=get_str(item, "name") or "",
        rule_type=str(get_str(item, "rule_type")),
        params=get_json(item, "params", {}),
        severity=Severity.parse(str(get_str(item, "severity"))),
        scope=RuleScope.from_dict(get_json(item, "scope", {})),
        enabled=bool(item["enabled"]["BOOL"]),
        auto_resolve=bool(item["auto_resolve"]["BOOL"]),
        escalate_after_s=None if escalate is None else float(escalate["N"]),
        rule_id=str(get_str(item, "rule_id")),
        created_at=created,
        updated_at=updated,
        version=get_int(item, "version", 1),
    )
