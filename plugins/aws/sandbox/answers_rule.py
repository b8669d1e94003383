"""The answers rule's stand-in: each device's answer to a command, from the
sandbox's broker into the command-answers table, as the rule's DynamoDBv2
action puts it on AWS (the item is plugins.aws.stream.rule.answer_item, the
rule's SQL evaluated the way IoT Core does).

One PutItem per answer, as soon as it arrives: answers are few and someone
is waiting for each (the REST API that sent the command reads the table until
the answer is there). An answer the action would refuse (no ``request_id``
string) is logged and counted, as IoT Core hands it to the rule's error
action; a PutItem that fails is tried again a few times, then counted."""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.protocol.topics import COMMAND_RESPONSE_FILTER
from plugins.aws.stream.rule import AnswerNotKept, answer_item

log = logging.getLogger(__name__)

ATTEMPTS = 5


@dataclass
class AnswersRuleStats:
    received: int = 0
    kept: int = 0
    refused: int = 0  # the action would fail on the message itself (error action on AWS)
    failed: int = 0  # PutItem failed every attempt
    last_error: str = ""


class CommandAnswersRule:
    def __init__(self, dynamodb: Any, table: str, broker: tuple[str, int]) -> None:
        self.dynamodb = dynamodb
        self.table = table
        self.broker = broker
        self.stats = AnswersRuleStats()
        self._inbox: queue.Queue[tuple[str, bytes, int] | None] = queue.Queue()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"sandbox-answers-rule-{uuid.uuid4().hex[:8]}")
        self._client.on_connect = (
            lambda c, u, f, r, p: c.subscribe(COMMAND_RESPONSE_FILTER, 1))  # again on reconnect
        self._client.on_subscribe = lambda *a: self._subscribed.set()
        self._client.on_message = self._on_message
        # PutItem over HTTP stays off paho's network thread
        self._thread = threading.Thread(target=self._put_loop, name="sandbox-answers-rule",
                                        daemon=True)

    def start(self, timeout_s: float = 10.0) -> CommandAnswersRule:
        self._client.connect(*self.broker, keepalive=30)
        self._client.loop_start()
        self._thread.start()
        if not self._subscribed.wait(timeout_s):
            self.stop()
            raise RuntimeError(f"the answers rule stand-in could not subscribe to "
                               f"{COMMAND_RESPONSE_FILTER} on {self.broker[0]}:{self.broker[1]}")
        return self

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.stats.received += 1
        self._inbox.put((message.topic, bytes(message.payload), int(time.time() * 1000)))

    def _put_loop(self) -> None:
        while (work := self._inbox.get()) is not None:
            topic, payload, received_ms = work
            try:
                item = answer_item(topic, payload, received_ms)
            except AnswerNotKept as exc:
                self.stats.refused += 1
                self.stats.last_error = str(exc)
                log.warning("answers rule: %s", exc)
                continue
            self._put(topic, item)

    def _put(self, topic: str, item: dict[str, dict[str, str]]) -> None:
        delay = 0.05
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self.dynamodb.put_item(TableName=self.table, Item=item)
            except Exception as exc:  # noqa: BLE001 - the endpoint is away: try again
                if attempt == ATTEMPTS:
                    self.stats.failed += 1
                    self.stats.last_error = f"answer on {topic[:200]}: {exc}"
                    log.error("answers rule: the answer on %s was not kept after %d "
                              "attempts: %s", topic[:200], ATTEMPTS, exc)
                    return
                time.sleep(delay)
                delay *= 2
            else:
                self.stats.kept += 1
                return

    def stop(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self._inbox.put(None)  # what arrived before the stop is still put
        if self._thread.is_alive():
            self._thread.join(timeout=10)
