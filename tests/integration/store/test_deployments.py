from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, ExecutionStatus
from core.store import Store

T0 = datetime(2024, 10, 1, tzinfo=UTC)


def _deployment(*targets: str, dep_id: str = "ota-1") -> Deployment:
    return Deployment(
        firmware_id="pump@1.2.0",
        targets=targets,
        deployment_id=dep_id,
        status=DeploymentStatus.IN_PROGRESS,
        created_by="alice",
        rollout={"maximumPerMinute": 10},
        abort={"criteria": [{"failureType": "FAILED", "thresholdPercentage": 10}]},
        description="spring update",
        created_at=T0,
        updated_at=T0,
    )


def test_create_round_trips_and_queues_executions(store: Store) -> None:
    d = _deployment("d1", "d2", "d3")
    assert store.deployments.create(d) == d
    assert store.deployments.get("ota-1") == d
    execs = store.deployments.executions("ota-1")
    assert [e.device_id for e in execs] == ["d1", "d2", "d3"]
    assert all(e.status is ExecutionStatus.QUEUED and e.version_number == 1 for e in execs)
    with pytest.raises(ValidationError):
        store.deployments.create(d)
    later = datetime(2024, 10, 2, tzinfo=UTC)
    store.deployments.create(
        Deployment("pump@1.3.0", ("d1",), "ota-2", created_at=later, updated_at=later)
    )
    assert [x.deployment_id for x in store.deployments.list()] == ["ota-2", "ota-1"]
    with pytest.raises(NotFound):
        store.deployments.get("nope")


def test_execution_transitions_and_version_checks(store: Store) -> None:
    store.deployments.create(_deployment("d1", "d2"))
    e = store.deployments.update_execution(
        "ota-1",
        "d1",
        ExecutionStatus.IN_PROGRESS,
        status_details={"step": "download"},
        expected_version=1,
    )
    assert (e.status, e.version_number, e.status_details) == (
        ExecutionStatus.IN_PROGRESS,
        2,
        {"step": "download"},
    )
    assert e.started_at is not None
    with pytest.raises(IllegalTransition, match="expected version 1"):
        store.deployments.update_execution(
            "ota-1", "d1", ExecutionStatus.SUCCEEDED, expected_version=1
        )
    done = store.deployments.update_execution(
        "ota-1",
        "d1",
        ExecutionStatus.SUCCEEDED,
        status_details={"step": "done"},
        expected_version=2,
    )
    assert done.status_details == {"step": "done"}
    stored = {x.device_id: x for x in store.deployments.executions("ota-1")}
    assert stored["d1"] == done
    with pytest.raises(IllegalTransition, match="finished"):
        store.deployments.update_execution("ota-1", "d1", ExecutionStatus.IN_PROGRESS)
    with pytest.raises(NotFound):
        store.deployments.update_execution("ota-1", "zz", ExecutionStatus.IN_PROGRESS)
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS

    store.deployments.update_execution("ota-1", "d2", ExecutionStatus.FAILED)
    assert store.deployments.get("ota-1").status is DeploymentStatus.COMPLETED
    with pytest.raises(IllegalTransition):
        store.deployments.cancel("ota-1")


def test_two_services_racing_on_one_version(open_store: Callable[[], Store]) -> None:
    a, b = open_store(), open_store()
    a.deployments.create(_deployment("d1"))
    a.deployments.update_execution("ota-1", "d1", ExecutionStatus.IN_PROGRESS, expected_version=1)
    with pytest.raises(IllegalTransition, match="version"):
        b.deployments.update_execution(
            "ota-1", "d1", ExecutionStatus.IN_PROGRESS, expected_version=1
        )


@pytest.mark.parametrize("force", [False, True], ids=["soft", "force"])
def test_cancel(store: Store, force: bool) -> None:
    store.deployments.create(_deployment("d1", "d2", "d3"))
    store.deployments.update_execution("ota-1", "d1", ExecutionStatus.IN_PROGRESS)
    store.deployments.update_execution("ota-1", "d3", ExecutionStatus.SUCCEEDED)
    canceled = store.deployments.cancel("ota-1", force=force)
    assert canceled.status is DeploymentStatus.CANCELED
    by_device = {e.device_id: e for e in store.deployments.executions("ota-1")}
    assert by_device["d2"].status is ExecutionStatus.CANCELED
    assert by_device["d2"].version_number == 2
    assert by_device["d3"].status is ExecutionStatus.SUCCEEDED
    expected_d1 = ExecutionStatus.CANCELED if force else ExecutionStatus.IN_PROGRESS
    assert by_device["d1"].status is expected_d1
    assert store.deployments.cancel("ota-1") == store.deployments.get("ota-1")
