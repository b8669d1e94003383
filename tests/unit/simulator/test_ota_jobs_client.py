"""The device's Jobs client acts only on answers to requests it sent and is still
waiting for (matched by clientToken); anything else is ignored and logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest

from simulator.ota.jobs import JobsClient

THING = "pump-00001"
BASE = f"$aws/things/{THING}/jobs"


class Listener:
    def __init__(self) -> None:
        self.started: list[dict[str, Any] | None] = []
        self.done: list[str] = []

    def on_notify_next(self, execution: dict[str, Any] | None) -> None:
        pass

    def on_started(self, execution: dict[str, Any] | None) -> None:
        self.started.append(execution)

    def on_report_done(self, job_id: str) -> None:
        self.done.append(job_id)

    def on_job_gone(self, job_id: str) -> None:
        pass


@pytest.fixture
def rig() -> tuple[JobsClient, Listener, list[tuple[str, dict[str, Any]]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    listener = Listener()

    def publish(topic: str, payload: bytes) -> bool:
        sent.append((topic, json.loads(payload)))
        return True

    def later(delay: float, action: Callable[[], None]) -> None:
        pass

    return JobsClient(THING, publish, later, listener), listener, sent


def answer(client: JobsClient, tail: str, **body: Any) -> None:
    client.on_message(f"{BASE}/{tail}", json.dumps(body).encode())


EXECUTION = {"jobId": "job-1", "versionNumber": 1, "jobDocument": {"operation": "ota-update"}}


def test_start_next_answers_need_the_token_of_the_pending_request(rig, caplog) -> None:
    client, listener, sent = rig
    caplog.set_level(logging.WARNING, logger="simulator.ota.jobs")
    answer(client, "start-next/accepted", execution=EXECUTION)  # nothing was asked
    assert listener.started == []
    client.start_next()
    token = sent[-1][1]["clientToken"]
    answer(client, "start-next/accepted", execution=EXECUTION)  # no token
    answer(client, "start-next/accepted", clientToken="forged", execution=EXECUTION)
    assert listener.started == []
    answer(client, "start-next/accepted", clientToken=token, execution=EXECUTION)
    assert listener.started == [EXECUTION]
    answer(client, "start-next/accepted", clientToken=token, execution=EXECUTION)  # replayed
    assert listener.started == [EXECUTION]
    assert "not a request this device is waiting for" in caplog.text


def test_get_and_update_answers_need_their_tokens(rig) -> None:
    client, listener, sent = rig
    got: list[dict[str, Any] | None] = []
    client.describe("job-1", got.append)
    token = sent[-1][1]["clientToken"]
    answer(client, "job-1/get/accepted", clientToken="forged", execution=EXECUTION)
    assert got == []
    answer(client, "job-1/get/accepted", clientToken=token, execution=EXECUTION)
    assert got == [EXECUTION]
    client.update("job-1", "REJECTED", {"reason": "bad-document"})
    update_token = sent[-1][1]["clientToken"]
    answer(client, "job-1/update/accepted", clientToken="forged",
           executionState={"versionNumber": 5})
    assert listener.done == []
    answer(client, "job-1/update/accepted", clientToken=update_token,
           executionState={"versionNumber": 5})
    assert listener.done == ["job-1"]


class Gone(Listener):
    def __init__(self) -> None:
        super().__init__()
        self.gone: list[str] = []

    def on_job_gone(self, job_id: str) -> None:
        self.gone.append(job_id)


def test_internal_error_on_update_and_get_is_retried_not_taken_as_job_gone() -> None:
    """The service's database away answers InternalError: the device sends the
    same update again after a pause instead of giving the job up."""
    sent: list[tuple[str, dict[str, Any]]] = []
    timers: list[tuple[float, Callable[[], None]]] = []
    listener = Gone()

    def publish(topic: str, payload: bytes) -> bool:
        sent.append((topic, json.loads(payload)))
        return True

    client = JobsClient(THING, publish, lambda d, a: timers.append((d, a)), listener)
    client.update("job-1", "IN_PROGRESS", {"progress": "50"})
    token = sent[-1][1]["clientToken"]
    timers.clear()
    answer(client, "job-1/update/rejected", code="InternalError", clientToken=token,
           message="the request could not be processed")
    assert [t for t, _ in sent] == [f"{BASE}/job-1/update"]  # no get: not a verdict
    assert len(timers) == 1 and timers[0][0] > 0
    timers.pop()[1]()
    assert sent[-1] == (f"{BASE}/job-1/update", sent[0][1])
    # a get refused with InternalError is asked again, the job is kept
    client.describe("job-1", lambda execution: None)
    get_token = sent[-1][1]["clientToken"]
    answer(client, "job-1/get/rejected", code="InternalError", clientToken=get_token)
    delays = [d for d, _ in timers]
    assert delays and all(d > 0 for d in delays)
    for _, action in list(timers):
        action()
    assert sent[-1][0] == f"{BASE}/job-1/get"
    assert listener.gone == []
