"""The IoT rules that forward what devices publish into Kinesis, and the record
they produce.

Devices publish telemetry on ``dt/{org}/{device}/telemetry`` and their status
(retained, and as Last Will) on ``dt/{org}/{device}/status``
(core.protocol.topics); the local hub ingests both, so both go to the stream.
Their answers to commands (``cmd/{org}/{device}/res``) go there too: the
consumer keeps each for the REST API that sent the command and waits for it
(plugins/aws/dynamodb/command_answers.py) — on the hub the broker hands them
to the waiting console directly, on AWS the API is a Lambda no MQTT message
reaches.
The payload travels base64-encoded (``encode(*, 'base64')``) rather than as
``SELECT *``: the consumer then sees the very bytes the device sent and
judges them with the hub's own decoder — a payload that is not JSON, too big
or half a document is quarantined with the same reason as on the hub instead
of being dropped by the rules engine, which cannot merge a non-JSON payload
with other fields. ``timestamp()`` is when IoT Core received the message
(epoch ms): the hub's ``received`` time.

The record (JSON, UTF-8)::

    {"payload": "<base64 of the MQTT payload>", "topic": "dt/acme/pump-1/telemetry",
     "received_at": 1795000000123}

Partition key: the device id (``${topic(3)}``), so each device's messages stay
in order on one shard — sequence accounting and alert state depend on it.

``rule_record`` builds exactly that record, for the sandbox's stand-in rule
and the tests; serverless.yml declares the rules from these constants.
"""

from __future__ import annotations

import base64
import json

from core.protocol.topics import COMMAND_RESPONSE_FILTER, STATUS_FILTER, TELEMETRY_FILTER

#: the topic filters forwarded (the hub subscribes to the same three)
TOPIC_FILTERS = (TELEMETRY_FILTER, STATUS_FILTER, COMMAND_RESPONSE_FILTER)

_SELECT = "SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS received_at"
TELEMETRY_RULE_SQL = f"{_SELECT} FROM '{TELEMETRY_FILTER}'"
STATUS_RULE_SQL = f"{_SELECT} FROM '{STATUS_FILTER}'"
COMMAND_RESPONSE_RULE_SQL = f"{_SELECT} FROM '{COMMAND_RESPONSE_FILTER}'"
#: every rule's SQL, one per filter of TOPIC_FILTERS (serverless.yml declares each)
RULES_SQL = (TELEMETRY_RULE_SQL, STATUS_RULE_SQL, COMMAND_RESPONSE_RULE_SQL)
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
