"""Commands sent and the devices' answers, on DynamoDB.

- ``iot-commands-{stage}`` (partition key ``request_id``): each command as it
  is sent, written before the publish (``expect``), so a command the person
  was told about is on record even when no answer ever comes.
- ``iot-command-answers-{stage}`` (key ``request_id``, ``device_id``): each
  answer, put by the answers IoT rule's DynamoDBv2 action the moment the
  device publishes it (plugins/aws/stream/rule.py, ``ANSWERS_RULE_SQL``).

Why a table: on AWS the REST API that sends a command is a Lambda no MQTT
message reaches, so the answer meets the waiting request here; the API reads
the item until the answer is there or the command's timeout has passed
(``find``). The device id (the answer topic's) is part of the key: another
device answering the same request id writes another item, which nobody reads.
A second (at-least-once) delivery puts the same answer again. Both tables
expire items after a day (TTL ``expires_at``).
"""

from __future__ import annotations

import base64
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
    payload: bytes


class DynamoCommandAnswers:
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self._client = client
        self._table = settings.table("commands")
        self._answers = settings.table("command-answers")

    def expect(self, request_id: str, device_id: str, command: str, *,
               now_s: float | None = None) -> None:
        """The request is about to be sent: on record before the device can answer."""
        now = time.time() if now_s is None else now_s
        self._client.put_item(
            TableName=self._table,
            Item={"request_id": {"S": request_id}, "device_id": {"S": device_id},
                  "command": {"S": command}, "sent_at_ms": {"N": str(int(now * 1000))},
                  "expires_at": {"N": str(int(now) + KEEP_S)}},
            ConditionExpression="attribute_not_exists(request_id)")

    def find(self, request_id: str, device_id: str) -> StoredAnswer | None:
        """``device_id``'s answer to ``request_id``, or None while there is none."""
        item = self._client.get_item(TableName=self._answers,
                                     Key={"request_id": {"S": request_id},
                                          "device_id": {"S": device_id}},
                                     ConsistentRead=True).get("Item")
        if item is None or "answer" not in item:
            return None
        return StoredAnswer(request_id, device_id, base64.b64decode(item["answer"]["S"]))
