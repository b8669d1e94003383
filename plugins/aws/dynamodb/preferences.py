"""Per-person preferences on AWS (``iot-preferences-{stage}``): one item per
person, keyed by the user name (unique in the stage's Cognito pool), the
values as JSON text and a version, so a technician finds their theme, default
page and alert filters on any console, as on the hub.

Saves are conditional on the version (``attribute_not_exists`` for the first),
so of two consoles saving at once exactly one wins and the other is told to
read them again (409), as the SQL store does."""

from __future__ import annotations

import json
from typing import Any

from core.errors import ConcurrentModification
from core.model.timeutil import utcnow
from core.ports.preferences import Preferences, PreferenceStore
from plugins.aws.dynamodb.codec import iso
from plugins.aws.settings import AwsSettings

ROLE = "preferences"  # iot-preferences-<stage>
KEY = "user_name"  # "user" is a DynamoDB reserved word


class DynamoPreferenceStore(PreferenceStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._db = client
        self.table = settings.table(ROLE)

    def get(self, user: str) -> Preferences:
        item = self._db.get_item(TableName=self.table, Key={KEY: {"S": user}},
                                 ConsistentRead=True).get("Item")
        if item is None:
            return Preferences(user)
        return Preferences(user, dict(json.loads(item["prefs"]["S"])),
                           int(item["version"]["N"]))

    def save(self, user: str, values: dict[str, Any], *,
             expected_version: int | None = None) -> Preferences:
        base = self.get(user).version if expected_version is None else expected_version
        new = Preferences(user, dict(values), base + 1)
        condition: dict[str, Any] = (
            {"ConditionExpression": "attribute_not_exists(#k)",
             "ExpressionAttributeNames": {"#k": KEY}} if base == 0 else
            {"ConditionExpression": "version = :base",
             "ExpressionAttributeValues": {":base": {"N": str(base)}}})
        try:
            self._db.put_item(TableName=self.table, Item={
                KEY: {"S": user}, "prefs": {"S": json.dumps(new.values, sort_keys=True)},
                "version": {"N": str(new.version)}, "updated_at": {"S": iso(utcnow())}},
                **condition)
        except self._db.exceptions.ConditionalCheckFailedException:
            now = self.get(user).version
            raise ConcurrentModification(
                f"the preferences of {user} changed in the meantime (expected version {base}, "
                f"it is now version {now}); read them again and retry") from None
        return new
