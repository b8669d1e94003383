"""Commands waiting for a device's answer, on DynamoDB (``iot-commands-{stage}``):
partition key ``request_id``, TTL ``expires_at`` (a day after sending).

Why a table: on AWS the REST API that sends a command (a Lambda) and the
stream consumer that hears the device's answer (``cmd/{org}/{device}/res``,
forwarded into Kinesis by an IoT rule) are different processes, so the answer
meets the waiting request here. The API writes the request before it
publishes (``expect``); the consumer stores an answer only onto a request of
the same device that has none yet (``answer``, conditional), so an answer
nobody asked for, another device's answer to someone else's request id, or a
second (at-least-once) delivery changes nothing; the API reads the item until
the answer is there or the command's timeout has passed (``find``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from plugins.aws.settings import AwsSettings

KEEP_S = 24 * 3600  # how long a command's record stays (DynamoDB's TTL removes it)


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """A device's answer as it arrived (the protocol's response payload)."""

    request_id: str
    device_id: str
    command: str
    payload: bytes


class DynamoCommandAnswers:
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("commands")

    def expect(self, request_id: str, device_id: str, command: str, *,
               now_s: float | None = None) -> None:
        """The request is about to be sent: its answer will be kept."""
        now = time.time() if now_s is None else now_s
        self._client.put_item(
            TableName=self._table,
            Item={"request_id": {"S": request_id}, "device_id": {"S": device_id},
                  "command": {"S": command}, "sent_at_ms": {"N": str(int(now * 1000))},
                  "expires_at": {"N": str(int(now) + KEEP_S)}},
            ConditionExpression="attribute_not_exists(request_id)")

    def answer(self, request_id: str, device_id: str, payload: bytes) -> bool:
        """Keep ``payload`` as the answer to ``request_id`` from ``device_id``.
        False (and nothing written) when no such request of that device is
        waiting, or it was answered already."""
        try:
            self._client.update_item(
                TableName=self._table, Key={"request_id": {"S": request_id}},
                UpdateExpression="SET answer = :answer, answered_at_ms = :at",
                ConditionExpression="attribute_exists(request_id) AND device_id = :device "
                                    "AND attribute_not_exists(answer)",
                ExpressionAttributeValues={":answer": {"B": payload},
                                           ":device": {"S": device_id},
                                           ":at": {"N": str(int(time.time() * 1000))}})
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def find(self, request_id: str) -> StoredAnswer | None:
        """The answer to ``request_id``, or None while there is none."""
        item = self._client.get_item(TableName=self._table,
                                     Key={"request_id": {"S": request_id}},
                                     ConsistentRead=True).get("Item")
        if item is None or "answer" not in item:
            return None
        return StoredAnswer(request_id, item["device_id"]["S"], item["command"]["S"],
                            bytes(item["answer"]["B"]))
