"""Who hears of an alert: per-organization e-mail subscriptions in DynamoDB.

A support team subscribes addresses per organization (``acme``), or to the
whole fleet (organization ``*``: the on-call desk that serves every
customer), each with a minimum severity and whether it wants raised alerts,
resolved ones, or both. Table ``iot-notification-subscriptions-{stage}``:
hash key ``organization_id``, range key ``email`` (one subscription per
address and organization; adding it again changes it). Finding the
recipients of an alert is two Queries (its organization and ``*``), never a
Scan.

Critical alerts must reach someone: a raised critical alert goes to every
subscriber of its organization and of the fleet, whatever their filters
(nobody can filter out a fire), and one that still finds nobody is logged as
an error and counted by the caller (:attr:`Recipients.critical_unrouted`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import ValidationError
from core.model.alert import Severity
from core.model.timeutil import utcnow
from core.ports.notifications import AlertNotification, NotificationKind
from plugins.aws.dynamodb.paging import query_items

TABLE_ROLE = "notification-subscriptions"
FLEET = "*"  # subscribes to every organization's alerts (and to those of no organization)

# Deliberately plain: SES checks deliverability; this catches typos that would
# otherwise be stored and silently never reached.
_EMAIL = re.compile(r"[^@\s]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)+")
_ORGANIZATION = re.compile(r"[A-Za-z0-9:_.-]{1,128}")


def normalize_email(value: str) -> str:
    address = value.strip()
    if len(address) > 254 or _EMAIL.fullmatch(address) is None:
        raise ValidationError(f"subscription e-mail {value!r} is not an e-mail address "
                              "(name@example.com)")
    local, domain = address.rsplit("@", 1)
    return f"{local}@{domain.lower()}"


def check_organization(value: str) -> str:
    if value != FLEET and _ORGANIZATION.fullmatch(value) is None:
        raise ValidationError(f"subscription organization {value!r} must be an organization id "
                              f"(letters, digits, : _ . -) or {FLEET!r} for the whole fleet")
    return value


@dataclass(frozen=True, slots=True)
class Subscription:
    organization_id: str
    email: str
    min_severity: Severity = Severity.WARNING
    on_raised: bool = True
    on_resolved: bool = True
    created_by: str = ""
    created_at: datetime | None = None

    def __post_init__(self) -> None:
        check_organization(self.organization_id)
        object.__setattr__(self, "email", normalize_email(self.email))
        if not isinstance(self.min_severity, Severity):
            object.__setattr__(self, "min_severity", Severity.parse(str(self.min_severity)))
        if not (self.on_raised or self.on_resolved):
            raise ValidationError(f"subscription of {self.email} to {self.organization_id} "
                                  "must want raised alerts, resolved ones or both")

    def wants(self, notification: AlertNotification) -> bool:
        severity = notification.alert.severity
        if notification.kind is NotificationKind.RAISED and severity is Severity.CRITICAL:
            return True  # critical alerts reach every subscriber, whatever the filters
        wanted_kind = (self.on_raised if notification.kind is NotificationKind.RAISED
                       else self.on_resolved)
        return wanted_kind and severity.rank >= self.min_severity.rank


@dataclass(frozen=True, slots=True)
class Recipients:
    emails: tuple[str, ...]
    subscriptions_read: int

    def critical_unrouted(self, notification: AlertNotification) -> bool:
        """A raised critical alert nobody will hear of."""
        return (not self.emails and notification.kind is NotificationKind.RAISED
                and notification.alert.severity is Severity.CRITICAL)


class SubscriptionStore:
    """The subscriptions table (``client`` is a boto3 DynamoDB client)."""

    def __init__(self, client: Any, table: str, page_size: int = 500) -> None:
        self._db = client
        self.table = table
        self._page = page_size

    def put(self, subscription: Subscription) -> Subscription:
        """Add a subscription, or change the one of that address and organization."""
        s = subscription
        created = s.created_at or utcnow()
        item: dict[str, Any] = {
            "organization_id": {"S": s.organization_id}, "email": {"S": s.email},
            "min_severity": {"S": s.min_severity.value}, "on_raised": {"BOOL": s.on_raised},
            "on_resolved": {"BOOL": s.on_resolved}, "created_at": {"S": created.isoformat()}}
        if s.created_by:
            item["created_by"] = {"S": s.created_by}
        self._db.put_item(TableName=self.table, Item=item)
        return _from_item(item)

    def remove(self, organization_id: str, email: str) -> bool:
        """Remove a subscription; False when there was none."""
        answer = self._db.delete_item(
            TableName=self.table,
            Key={"organization_id": {"S": check_organization(organization_id)},
                 "email": {"S": normalize_email(email)}},
            ReturnValues="ALL_OLD")
        return bool(answer.get("Attributes"))

    def of_organization(self, organization_id: str) -> Iterator[Subscription]:
        """An organization's subscriptions (``*``: the fleet-wide ones), by address."""
        for item in query_items(
                self._db, self._page, TableName=self.table,
                KeyConditionExpression="organization_id = :o",
                ExpressionAttributeValues={":o": {"S": check_organization(organization_id)}}):
            yield _from_item(item)

    def recipients(self, notification: AlertNotification) -> Recipients:
        """The addresses that should get ``notification``: its organization's
        subscribers and the fleet-wide ones whose filters let it through."""
        organizations = [FLEET]
        organization = notification.alert.organization_id
        if organization and organization != FLEET:
            organizations.insert(0, organization)
        emails: dict[str, None] = {}
        read = 0
        for org in organizations:
            for sub in self.of_organization(org):
                read += 1
                if sub.wants(notification):
                    emails[sub.email] = None
        return Recipients(tuple(emails), read)


def _from_item(item: dict[str, Any]) -> Subscription:
    created = item.get("created_at", {}).get("S")
    return Subscription(
        organization_id=item["organization_id"]["S"], email=item["email"]["S"],
        min_severity=Severity.parse(item.get("min_severity", {}).get("S", "warning")),
        on_raised=bool(item.get("on_raised", {}).get("BOOL", True)),
        on_resolved=bool(item.get("on_resolved", {}).get("BOOL", True)),
        created_by=item.get("created_by", {}).get("S", ""),
        created_at=datetime.fromisoformat(created) if created else None)
