"""clientTokens cannot be guessed: the Jobs client acts only on answers carrying the
token of its pending request, so a token anyone could compute (crc32 of the device
id and a counter) let someone on the device's topics answer in the service's name."""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable
from typing import Any

from simulator.ota.jobs import JobsClient

THING = "pump-00001"
EXECUTION = {"jobId": "job-1", "versionNumber": 1, "jobDocument": {"operation": "ota-update"}}


class Listener:
    def __init__(self) -> None:
        self.started: list[dict[str, Any] | None] = []

    def on_notify_next(self, execution: dict[str, Any] | None) -> None:
        pass

    def on_started(self, execution: dict[str, Any] | None) -> None:
        self.started.append(execution)

    def on_report_done(self, job_id: str) -> None:
        pass

    def on_job_gone(self, job_id: str) -> None:
        pass


def _client() -> tuple[JobsClient, Listener, list[dict[str, Any]]]:
    sent: list[dict[str, Any]] = []
    listener = Listener()

    def publish(topic: str, payload: bytes) -> bool:
        sent.append(json.loads(payload))
        return True

    def later(delay: float, action: Callable[[], None]) -> None:
        pass

    return JobsClient(THING, publish, later, listener), listener, sent


def test_tokens_are_unpredictable_and_fit_aws_limit() -> None:
    tokens = []
    for _ in range(2):  # two runs of the same device (a restart): no token repeats
        client, _, sent = _client()
        for _ in range(3):
            client.start_next()
            tokens.append(sent[-1]["clientToken"])
    assert len(set(tokens)) == len(tokens)
    assert all(isinstance(t, str) and len(t.encode()) <= 64 for t in tokens)
    guessable = {f"{zlib.crc32(THING.encode()):08x}-{n}" for n in range(1, 1000)}
    assert not guessable & set(tokens)


def test_a_guessed_token_is_not_acted_on() -> None:
    client, listener, sent = _client()
    client.start_next()
    guess = f"{zlib.crc32(THING.encode()):08x}-1"
    client.on_message(f"$aws/things/{THING}/jobs/start-next/accepted",
                      json.dumps({"clientToken": guess, "execution": EXECUTION}).encode())
    assert listener.started == []
    client.on_message(f"$aws/things/{THING}/jobs/start-next/accepted",
                      json.dumps({"clientToken": sent[-1]["clientToken"],
                                  "execution": EXECUTION}).encode())
    assert listener.started == [EXECUTION]
