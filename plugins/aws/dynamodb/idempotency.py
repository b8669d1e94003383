"""Idempotency keys on DynamoDB (``iot-idempotency-{stage}``,
core.ports.idempotency): partition key ``caller``, sort key ``idem_key``.

The claim is one PutItem conditional on the key being free, expired or
abandoned, so of two Lambda containers handling the same retry exactly one
runs it. DynamoDB's TTL (``expires_at_s``) removes old answers within a day or
two of expiry; until it does, the condition treats an expired item as free.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from typing import Any

from core.ports.idempotency import IdempotencyRecord, IdempotencyStore
from plugins.aws.settings import AwsSettings

_FREE = ("attribute_not_exists(caller) OR expires_at_s <= :now "
         "OR (attribute_not_exists(#status) AND locked_until_s <= :now)")


class DynamoIdempotencyStore(IdempotencyStore):
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("idempotency")

    def claim(self, record: IdempotencyRecord, now: datetime) -> IdempotencyRecord | None:
        item = {"caller": {"S": record.caller}, "idem_key": {"S": record.key},
                "request": {"S": record.request}, "body_hash": {"S": record.body_hash},
                "created_at": {"S": record.created_at.isoformat()},
                "expires_at_s": {"N": str(_epoch(record.expires_at))},
                "locked_until_s": {"N": str(_epoch(record.locked_until))}}
        for _ in range(3):
            try:
                self._client.put_item(TableName=self._table, Item=item,
                                      ConditionExpression=_FREE,
                                      ExpressionAttributeNames={"#status": "status"},
                                      ExpressionAttributeValues={
                                          ":now": {"N": str(_epoch(now))}})
                return None
            except self._client.exceptions.ConditionalCheckFailedException:
                held = self.get(record.caller, record.key)
                if held is not None:
                    return held
        return record  # claimed and released over and over: tell the caller to retry

    def complete(self, caller: str, key: str, status: int, response: str) -> None:
        self._client.update_item(
            TableName=self._table, Key=_key(caller, key),
            UpdateExpression="SET #status = :status, #response = :response",
            ExpressionAttributeNames={"#status": "status", "#response": "response"},
            ExpressionAttributeValues={":status": {"N": str(status)},
                                       ":response": {"S": response}})

    def release(self, caller: str, key: str) -> None:
        # Answered meanwhile (a takeover finished): that answer is kept.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(TableName=self._table, Key=_key(caller, key),
                                     ConditionExpression="attribute_not_exists(#status)",
                                     ExpressionAttributeNames={"#status": "status"})

    def get(self, caller: str, key: str) -> IdempotencyRecord | None:
        answer = self._client.get_item(TableName=self._table, Key=_key(caller, key),
                                       ConsistentRead=True)
        item = answer.get("Item")
        if item is None:
            return None
        status = item.get("status", {}).get("N")
        return IdempotencyRecord(
            caller=item["caller"]["S"], key=item["idem_key"]["S"],
            request=item["request"]["S"], body_hash=item["body_hash"]["S"],
            created_at=datetime.fromisoformat(item["created_at"]["S"]),
            expires_at=datetime.fromtimestamp(int(item["expires_at_s"]["N"]), UTC),
            locked_until=datetime.fromtimestamp(int(item["locked_until_s"]["N"]), UTC),
            status=None if status is None else int(status),
            response=item.get("response", {}).get("S", ""))


def _key(caller: str, key: str) -> dict[str, Any]:
    return {"caller": {"S": caller}, "idem_key": {"S": key}}


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())
