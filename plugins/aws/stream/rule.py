"""The IoT rules: devices' telemetry and status into Kinesis, and their
answers to commands into the command-answers table.

Devices publish telemetry on ``dt/{org}/{device}/telemetry`` and their status
(retained, and as Last Will) on ``dt/{org}/{device}/status``
(core.protocol.topics); the local hub ingests both, so both go to the stream.

Their answers to commands (``cmd/{org}/{device}/res``) take a rule of their
own, straight into DynamoDB (the rule's DynamoDBv2 action), where the REST API
that sent the command waits for them (plugins/aws/dynamodb/command_answers.py).
Why not the stream: the consumer's event source gathers records for its batch
window (5 s) and a batch behind a backlog waits longer still, so a technician's
ping answered by the device in 100 ms came back after 4-5 s and, on a loaded
machine, after the command's 10 s timeout. A rule action writes within
milliseconds of the device's publish, whatever the stream's backlog.

The stream's payload travels base64-encoded (``encode(*, 'base64')``) rather
than as ``SELECT *``: the consumer then sees the very bytes the device sent and
judges them with the hub's own decoder — a payload that is not JSON, too big
or half a document is quarantined with the same reason as on the hub instead
of being dropped by the rules engine, which cannot merge a non-JSON payload
with other fields. ``timestamp()`` is when IoT Core received the message
(epoch ms): the hub's ``received`` time.

The stream's record (JSON, UTF-8)::

    {"payload": "<base64 of the MQTT payload>", "topic": "dt/acme/pump-1/telemetry",
     "received_at": 1795000000123}

Partition key: the device id (``${topic(3)}``), so each device's messages stay
in order on one shard — sequence accounting and alert state depend on it.

``rule_record`` builds exactly that record and ``answer_item`` the answers
rule's item, for the sandbox's stand-in rules and the tests; serverless.yml
declares the rules from these constants.
"""

from __future__ import annotations

import base64
import json

from core.protocol.topics import COMMAND_RESPONSE_FILTER, STATUS_FILTER, TELEMETRY_FILTER

#: the topic filters forwarded into the stream
STREAM_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER)

_SELECT = "SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS received_at"
TELEMETRY_RULE_SQL = f"{_SELECT} FROM '{TELEMETRY_FILTER}'"
STATUS_RULE_SQL = f"{_SELECT} FROM '{STATUS_FILTER}'"
#: the stream rules' SQL, one per filter of STREAM_FILTERS (serverless.yml declares each)
STREAM_RULES_SQL = (TELEMETRY_RULE_SQL, STATUS_RULE_SQL)
#: how long an answer is kept (the table's TTL attribute ``expires_at``)
ANSWER_KEEP_S = 24 * 3600
#: the answers rule: each selected field becomes an attribute of the item the
#: DynamoDBv2 action puts; (request_id, device_id) is the table's key and the
#: device id is the topic's, so another device answering the same request id
#: writes an item nobody reads (a device policy naming
#: ``iot:Connection.Thing.ThingName`` keeps each device to its own topics)
ANSWERS_RULE_SQL = (
    "SELECT request_id, topic(3) AS device_id, encode(*, 'base64') AS answer, "
    "timestamp() AS answered_at_ms, "
    f"floor(timestamp() / 1000) + {ANSWER_KEEP_S} AS expires_at "
    f"FROM '{COMMAND_RESPONSE_FILTER}'")
#: the rules' SQL version (the 2016-03-23 engine is the one that has encode())
RULE_SQL_VERSION = "2016-03-23"
#: the Kinesis action's partition key: the topic's third level, the device id
PARTITION_KEY = "${topic(3)}"
#: the stream the rules write to, per stage (serverless.yml names it so)
STREAM_NAME = "iot-telemetry-stream-{stage}"


def stream_name(stage: str) -> str:
    return STREAM_NAME.format(stage=stage)


def rule_record(topic: str, payload: bytes, received_ms: int) -> bytes:
    """The Kinesis record the rules produce for one MQTT message."""
    return json.dumps({"payload": base64.b64encode(payload).decode("ascii"), "topic": topic,
                       "received_at": received_ms}, separators=(",", ":")).encode()


def partition_key(topic: str) -> str:
    """``${topic(3)}`` as IoT Core evaluates it (an empty string past the end)."""
    parts = topic.split("/")
    return parts[2] if len(parts) > 2 else ""


class AnswerNotKept(ValueError):
    """The answers rule's action would fail on this message (IoT Core then runs
    the rule's error action): its payload has no ``request_id`` string to key
    the item by."""


def answer_item(topic: str, payload: bytes, received_ms: int) -> dict[str, dict[str, str]]:
    """The item the answers rule's DynamoDBv2 action puts for one answer, in
    DynamoDB's typed form, as IoT Core evaluates ANSWERS_RULE_SQL."""
    try:
        document = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise AnswerNotKept(f"answer on {topic[:200]}: the payload is not JSON, "
                            "so it has no request_id") from None
    request_id = document.get("request_id") if isinstance(document, dict) else None
    if not isinstance(request_id, str) or not request_id:
        raise AnswerNotKept(f"answer on {topic[:200]}: request_id "
                            f"{request_id!r} is not a non-empty string")
    device_id = partition_key(topic)
    if not device_id:
        raise AnswerNotKept(f"answer on {topic[:200]}: the topic names no device")
    return {"request_id": {"S": request_id}, "device_id": {"S": device_id},
            "answer": {"S": base64.b64encode(payload).decode("ascii")},
            "answered_at_ms": {"N": str(received_ms)},
            "expires_at": {"N": str(received_ms // 1000 + ANSWER_KEEP_S)}}
