"""The code-signing public keys the team trusts, on DynamoDB
(``iot-trusted-keys-{stage}``): the AWS backend's ``TrustedKeyStore``.

Only public keys live here; each engineer's private key stays on their own
machine (the console's code-signing key, its passphrase in their secret
store), so the API can check that a firmware image or a deployment's
manifest was signed by someone the team trusts without ever being able to
sign one itself.

A team trusts a handful of keys, read whole on every check: they live in one
partition (``kind`` = ``key``, sort key ``key_id``), so listing them is one
Query, never a Scan. Adding is conditional on the id being new (a revoked key
is not quietly trusted again) and revoking is conditional on the key being
active, so of two admins revoking at once exactly one is recorded.
"""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from core.errors import NotFound, ValidationError
from core.ports.signing_keys import TrustedKey, TrustedKeyStore
from plugins.aws.dynamodb.codec import Item, get_str, get_time, put_str, put_time
from plugins.aws.dynamodb.paging import query_items
from plugins.aws.settings import AwsSettings

KEYS_PARTITION = "key"


class DynamoTrustedKeyStore(TrustedKeyStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("trusted-keys")
        self._page = settings.page_size

    def add(self, key: TrustedKey) -> None:
        try:
            self._client.put_item(TableName=self._table, Item=_to_item(key),
                                  ConditionExpression="attribute_not_exists(key_id)")
        except self._client.exceptions.ConditionalCheckFailedException:
            current = self.get(key.key_id)
            state = "revoked" if not current.active else "trusted"
            raise ValidationError(
                f"key {key.key_id} is already in the trust list ({state}, owner "
                f"{current.owner}); a revoked key is not trusted again") from None

    def get(self, key_id: str) -> TrustedKey:
        answer = self._client.get_item(TableName=self._table, Key=_key(key_id),
                                       ConsistentRead=True)
        if "Item" not in answer:
            raise NotFound(f"key {key_id!r} is not in the trust list")
        return _to_domain(answer["Item"])

    def list(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]:
        keys = [_to_domain(item) for item in query_items(
            self._client, self._page, TableName=self._table,
            KeyConditionExpression="kind = :k",
            ExpressionAttributeValues={":k": {"S": KEYS_PARTITION}}, ConsistentRead=True)]
        if not include_revoked:
            keys = [k for k in keys if k.active]
        return sorted(keys, key=lambda k: (k.owner, k.key_id))

    def revoke(self, key_id: str, by: str, at: datetime) -> TrustedKey:
        item: Item = {}
        put_time(item, "revoked_at", at)
        try:
            self._client.update_item(
                TableName=self._table, Key=_key(key_id),
                UpdateExpression="SET revoked_by = :by, revoked_at = :at",
                ConditionExpression="attribute_exists(key_id) AND attribute_not_exists(revoked_at)",
                ExpressionAttributeValues={":by": {"S": by}, ":at": item["revoked_at"]})
        except self._client.exceptions.ConditionalCheckFailedException:
            key = self.get(key_id)  # NotFound for an unknown id
            raise ValidationError(f"key {key_id} was already revoked by {key.revoked_by}"
                                  ) from None
        return self.get(key_id)


def _key(key_id: str) -> Item:
    return {"kind": {"S": KEYS_PARTITION}, "key_id": {"S": key_id}}


def _to_item(key: TrustedKey) -> Item:
    item: Item = {**_key(key.key_id), "owner": {"S": key.owner},
                  "public_pem": {"S": key.public_pem.decode("ascii")},
                  "added_by": {"S": key.added_by}}
    put_time(item, "added_at", key.added_at)
    put_str(item, "revoked_by", key.revoked_by)
    put_time(item, "revoked_at", key.revoked_at)
    put_str(item, "note", key.note)
    return item


def _to_domain(item: Item) -> TrustedKey:
    added_at = get_time(item, "added_at")
    assert added_at is not None, "trusted keys are stored with the time they were added"
    return TrustedKey(key_id=get_str(item, "key_id") or "", owner=get_str(item, "owner") or "",
                      public_pem=(get_str(item, "public_pem") or "").encode("ascii"),
                      added_by=get_str(item, "added_by") or "", added_at=added_at,
                      revoked_by=get_str(item, "revoked_by"),
                      revoked_at=get_time(item, "revoked_at"), note=get_str(item, "note") or "")
