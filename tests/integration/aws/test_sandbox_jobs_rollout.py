"""The sandbox's IoT Jobs stand-in releases a job's executions at its
``jobExecutionsRolloutConfig`` rate, on moto's own IoT model: the test
process's moto server runs in this process, as the sandbox's does, and every
request goes to it over HTTP (the stand-in's MQTT side is exercised end to
end in tests/e2e/test_sandbox_jobs.py). Time is moved by telling the rollout
when it last ticked, so no test waits for minutes."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from plugins.aws.sandbox.jobs_data import JobsDataPlane
from tests.integration.aws.conftest import AwsSandbox

COUNT = 12


@dataclass
class Rig:
    stand_in: JobsDataPlane
    iot: Any
    stage: str

    def create(self, name: str, **config: Any) -> str:
        """A job for the twelve things of this test; its id."""
        arns = [self.iot.describe_thing(thingName=f"{self.stage}-{i}")["thingArn"]
                for i in range(COUNT)]
        job_id = f"{self.stage}-{name}"
        self.iot.create_job(jobId=job_id, targets=arns, document=json.dumps({"url": "x"}),
                            **config)
        return job_id

    def listed(self, job_id: str) -> list[str]:
        return [e["jobExecutionSummary"]["status"] for e in
                self.iot.list_job_executions_for_job(jobId=job_id)["executionSummaries"]]

    def job(self, job_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.iot.describe_job(jobId=job_id)["job"]
        return found

    def later(self, job_id: str, minutes: float = 1.0) -> None:
        """A tick ``minutes`` after the rollout's last one."""
        for rollout in self.stand_in._rollouts.values():
            if rollout.job_id == job_id:
                rollout.last_tick = time.monotonic() - 60 * minutes
        self.stand_in.tick()

    def finish(self, job_id: str, status: str = "SUCCEEDED") -> None:
        """What devices' updates do to the released executions."""
        for rollout in self.stand_in._rollouts.values():
            for execution in self.stand_in._executions(rollout.backend, job_id):
                if execution.status == "QUEUED":
                    self.stand_in._set_status(execution, status)


@pytest.fixture
def rig(aws: AwsSandbox) -> Iterator[Rig]:
    iot = aws.client("iot")
    stand_in = JobsDataPlane(("127.0.0.1", 9), aws.endpoint_url, aws.region)
    stand_in._patch_moto()  # the control plane's hooks; no broker needed here
    for i in range(COUNT):
        iot.create_thing(thingName=f"{aws.stage}-{i}")
    try:
        yield Rig(stand_in, iot, aws.stage)
    finally:
        stand_in.stop()


def test_a_constant_rate_releases_that_many_a_minute(rig: Rig) -> None:
    job = rig.create("steady", jobExecutionsRolloutConfig={"maximumPerMinute": 5})
    assert rig.listed(job) == []  # IoT Jobs lists released things only
    assert rig.job(job)["status"] == "IN_PROGRESS"
    rig.stand_in.tick()
    assert rig.listed(job) == ["QUEUED"]  # the first at once
    rig.later(job)
    assert len(rig.listed(job)) == 6
    rig.later(job, 0.5)
    assert len(rig.listed(job)) == 8  # half a minute: 2 of the 5
    rig.later(job)
    assert len(rig.listed(job)) == 12
    rig.finish(job)
    rig.stand_in.tick()
    assert rig.job(job)["status"] == "COMPLETED"
    assert rig.job(job)["jobProcessDetails"]["numberOfSucceededThings"] == 12


def test_an_exponential_rate_grows_after_each_batch_of_notified_things(rig: Rig) -> None:
    job = rig.create("growing", jobExecutionsRolloutConfig={"exponentialRate": {
        "baseRatePerMinute": 2, "incrementFactor": 2.0,
        "rateIncreaseCriteria": {"numberOfNotifiedThings": 2}}})
    rig.stand_in.tick()
    assert len(rig.listed(job)) == 1
    rig.later(job)  # 2 a minute (the bucket holds at most a minute's worth)
    assert len(rig.listed(job)) == 3
    rig.later(job)  # 3 notified: one increase, 4 a minute
    assert len(rig.listed(job)) == 7
    rig.later(job)  # 7 notified: three increases, 16 a minute
    assert len(rig.listed(job)) == 12


def test_cancel_job_cancels_queued_executions_and_releases_no_more(rig: Rig) -> None:
    job = rig.create("stopped", jobExecutionsRolloutConfig={"maximumPerMinute": 1})
    rig.stand_in.tick()
    rig.iot.cancel_job(jobId=job, comment="wrong image")
    assert rig.listed(job) == ["CANCELED"]  # moto alone leaves it QUEUED
    rig.later(job, 10)
    assert rig.listed(job) == ["CANCELED"]
    assert rig.job(job)["jobProcessDetails"]["numberOfCanceledThings"] == 1


def test_the_abort_configuration_cancels_the_job_with_its_criterion(rig: Rig) -> None:
    job = rig.create("bad", jobExecutionsRolloutConfig={"maximumPerMinute": 3},
                     abortConfig={"criteriaList": [{
                         "failureType": "FAILED", "action": "CANCEL",
                         "thresholdPercentage": 50, "minNumberOfExecutedThings": 3}]})
    rig.stand_in.tick()
    rig.later(job)
    rig.finish(job, "FAILED")  # 1 at once and 3 a minute later: 4 executed, failed
    rig.stand_in.tick()
    described = rig.job(job)
    assert described["status"] == "CANCELED"
    assert described["comment"] == ("automatic abort: 4 of 4 executed devices (100%) ended "
                                    "FAILED, threshold 50% after 3")
    assert rig.listed(job) == ["FAILED"] * 4  # eight never released
    rig.later(job, 10)
    assert len(rig.listed(job)) == 4
