"""Every IoT Jobs execution state reads back through the deployments port on
AWS as the console shows it: QUEUED, IN_PROGRESS, SUCCEEDED, FAILED,
TIMED_OUT, REJECTED, REMOVED and CANCELED.

moto never moves an execution by itself (it has no Jobs data plane), so each
state is written into moto's job model in this process, as IoT Jobs' data
plane (or the sandbox's stand-in, plugins/aws/sandbox/jobs_data.py) leaves it;
the port then reads it over HTTP with ListJobExecutionsForJob and
DescribeJobExecution, as against AWS."""

# ruff: noqa: F811 - the tests take the imported ``fleet`` fixture by name
from __future__ import annotations

from typing import Any

import pytest

from core.model import DeploymentStatus, ExecutionStatus
from plugins.firmware.widgets.common import STATE_COLOURS, STATES, TERMINAL
from tests.integration.aws.test_iot_jobs_deployments import (  # noqa: F401 - fleet: the fixture
    ACCOUNT,
    JobsFleet,
    a_deployment,
    fleet,
)

ALL = [s.value for s in ExecutionStatus]


def _moto_execution(fleet: JobsFleet, job_id: str, thing: str) -> Any:
    from moto.iot.models import iot_backends

    return iot_backends[ACCOUNT][fleet.aws.region].job_executions[(job_id, thing)]


def test_the_console_has_a_state_for_every_execution_status() -> None:
    assert set(ALL) == {"QUEUED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "TIMED_OUT",
                        "REJECTED", "REMOVED", "CANCELED"}
    assert set(ALL) <= set(STATES) and set(ALL) <= set(STATE_COLOURS)
    assert {s.value for s in ExecutionStatus if s.is_terminal} == TERMINAL


@pytest.mark.parametrize("status", ALL)
def test_each_execution_status_reads_back_and_is_counted(fleet: JobsFleet, status: str
                                                         ) -> None:
    svc = fleet.service
    made = svc.create(a_deployment())
    execution = _moto_execution(fleet, made.deployment_id, "pump-1")
    execution.status = status
    execution.status_details_map = {"reason": "x-test"} if status in (
        "FAILED", "REJECTED", "TIMED_OUT") else {}

    listed = {e.device_id: e for e in svc.executions(made.deployment_id)}
    assert listed["pump-1"].status is ExecutionStatus(status)
    assert {listed[f"pump-{i}"].status for i in (0, 2, 3, 4)} == {ExecutionStatus.QUEUED}
    counts = svc.counts(made.deployment_id)
    assert counts.get(status, 0) == (5 if status == "QUEUED" else 1)
    assert sum(counts.values()) == 5
    assert svc.execution(made.deployment_id, "pump-1").status is ExecutionStatus(status)
    if status in ("FAILED", "REJECTED", "TIMED_OUT"):
        # the device's words, which the listing leaves out, for the monitor's Details
        assert listed["pump-1"].status_details == {"reason": "x-test"}
    # still running: IoT Jobs (moto answers QUEUED for a job) has not ended it
    assert svc.get(made.deployment_id).status is DeploymentStatus.IN_PROGRESS


@pytest.mark.parametrize("status", ALL)
def test_a_canceled_jobs_executions_read_as_iot_jobs_leaves_them(fleet: JobsFleet,
                                                                  status: str) -> None:
    """IoT Jobs cancels a canceled job's queued executions itself; moto leaves
    them QUEUED, so the port reads them as canceled. Finished ones keep their
    verdict, and an in-progress one stays until a force-cancel."""
    svc = fleet.service
    made = svc.create(a_deployment())
    _moto_execution(fleet, made.deployment_id, "pump-1").status = status
    svc.cancel(made.deployment_id, reason="wrong image")

    seen = {e.device_id: e.status for e in svc.executions(made.deployment_id)}
    expected = "CANCELED" if status == "QUEUED" else status
    assert seen["pump-1"] is ExecutionStatus(expected)
    assert {seen[f"pump-{i}"] for i in (0, 2, 3, 4)} == {ExecutionStatus.CANCELED}
    deployment = svc.get(made.deployment_id)
    assert deployment.status is DeploymentStatus.CANCELED
    assert deployment.reason == "wrong image"


def test_a_job_canceled_by_iot_jobs_keeps_its_reason(fleet: JobsFleet) -> None:
    """The abort configuration cancels the job inside IoT Jobs, not through this
    port: the deployment takes the job's comment as its reason."""
    from moto.iot.models import iot_backends

    svc = fleet.service
    made = svc.create(a_deployment())
    job = iot_backends[ACCOUNT][fleet.aws.region].jobs[made.deployment_id]
    job.status = "CANCELED"
    job.comment = "automatic abort: 2 of 4 executed devices (50%) ended FAILED"
    deployment = svc.get(made.deployment_id)
    assert deployment.status is DeploymentStatus.CANCELED
    assert deployment.reason == job.comment
    # and it is kept with the record: a later look needs no job
    fleet.iot_calls.clear()
    assert svc.get(made.deployment_id).reason == job.comment
    assert fleet.iot_calls.named("DescribeJob") == []
