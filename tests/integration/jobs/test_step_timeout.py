"""stepTimeoutInMinutes: the Jobs host times out an execution whose device went
quiet, resets the timer on a new value, and forgets it once the job ends."""

from __future__ import annotations

import json

import pytest

from core.model import ExecutionStatus
from core.store import Store
from plugins.local.jobs.host import JobsHost
from tests.integration.jobs.conftest import add_firmware, make_deployment


class Rig:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.now = 1_800_000_000.0
        self.sent: list[tuple[str, dict]] = []
        self.finished: list = []
        self.host = JobsHost(store.deployments, lambda t, b: self.sent.append(
            (t, json.loads(b))), lambda s: s, clock=lambda: self.now)
        self.host.on_terminal = self.finished.append

    def request(self, thing: str, tail: str, body: dict) -> tuple[str, dict]:
        topic = f"$aws/things/{thing}/jobs/{tail}"
        self.host.handle(topic, json.dumps(body).encode())
        return next((t.rsplit("/", 1)[1], b) for t, b in reversed(self.sent)
                    if t.startswith(topic + "/"))


@pytest.fixture
def rig(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'jobs.db'}")
    yield Rig(store)
    store.close()


def _start(rig, things):
    firmware, _ = add_firmware(rig.store, size=100)
    job = rig.store.deployments.create(make_deployment(firmware, things)).deployment_id
    rig.host.released(rig.store.deployments.get(job),
                      rig.store.deployments.release(job, things))
    return job


def test_step_timer_times_the_execution_out_and_tells_the_device(rig):
    job = _start(rig, ["pump-st-1"])
    suffix, _ = rig.request("pump-st-1", "start-next", {"stepTimeoutInMinutes": 2})
    assert suffix == "accepted"
    rig.now += 119
    rig.host.tick()
    assert rig.store.deployments.execution(job, "pump-st-1").status is \
        ExecutionStatus.IN_PROGRESS
    rig.now += 1
    rig.host.tick()
    execution = rig.store.deployments.execution(job, "pump-st-1")
    assert execution.status is ExecutionStatus.TIMED_OUT
    assert [e.status for e in rig.finished] == [ExecutionStatus.TIMED_OUT]  # rollout told
    topic, last = rig.sent[-1]
    assert topic.endswith("/notify-next") and "execution" not in last
    suffix, error = rig.request("pump-st-1", f"{job}/update", {"status": "SUCCEEDED"})
    assert suffix == "rejected" and error["code"] == "InvalidStateTransition"
    assert error["executionState"]["status"] == "TIMED_OUT"


def test_a_new_step_timeout_resets_the_timer_and_ending_clears_it(rig):
    job = _start(rig, ["pump-st-2"])
    rig.request("pump-st-2", "start-next", {"stepTimeoutInMinutes": 1})
    rig.now += 50
    assert rig.request("pump-st-2", f"{job}/update",
                       {"status": "IN_PROGRESS", "stepTimeoutInMinutes": 1})[0] == "accepted"
    rig.now += 50  # 100 s after start, 50 s after the reset
    rig.host.tick()
    assert rig.store.deployments.execution(job, "pump-st-2").status is \
        ExecutionStatus.IN_PROGRESS
    # an update without a new value keeps the running timer
    assert rig.request("pump-st-2", f"{job}/update", {"status": "IN_PROGRESS"})[0] == \
        "accepted"
    assert rig.host.snapshot()["step_timers"] == 1
    assert rig.request("pump-st-2", f"{job}/update", {"status": "SUCCEEDED"})[0] == \
        "accepted"
    assert rig.host.snapshot()["step_timers"] == 0
    rig.now += 3600
    rig.host.tick()
    assert rig.store.deployments.execution(job, "pump-st-2").status is \
        ExecutionStatus.SUCCEEDED
