from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from core.errors import IllegalTransition, NotFound, ValidationError
from core.model import Deployment, DeploymentStatus, ExecutionStatus
from core.model.rollout import AbortCriterion, FailureType, JobConfig, RolloutConfig
from core.store import Store

T0 = datetime(2024, 10, 1, tzinfo=UTC)


def _deployment(*targets: str, dep_id: str = "ota-1") -> Deployment:
    return Deployment(
        firmware_id="pump@1.2.0",
        targets=targets,
        deployment_id=dep_id,
        status=DeploymentStatus.SCHEDULED,
        created_by="alice",
        config=JobConfig(
            rollout=RolloutConfig(maximum_per_minute=10),
            abort=(AbortCriterion(FailureType.FAILED, 10, 20),),
            in_progress_timeout_minutes=30,
        ),
        document={"operation": "ota-update", "url": "${aws:iot:s3-presigned-url:firmware/x}"},
        target_spec={"kind": "list"},
        description="spring update",
        created_at=T0,
        updated_at=T0,
    )


def _released(store: Store, *targets: str) -> None:
    store.deployments.create(_deployment(*targets))
    store.deployments.release("ota-1", targets)


def test_create_round_trips_and_release_queues_executions(store: Store) -> None:
    d = _deployment("d1", "d2", "d3")
    assert store.deployments.create(d) == d
    assert store.deployments.get("ota-1") == d
    assert store.deployments.executions("ota-1") == []
    assert store.deployments.counts("ota-1") == {"PENDING": 3}
    first = store.deployments.release("ota-1", ["d2"])
    assert [e.device_id for e in first] == ["d2"]
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS
    again = store.deployments.release("ota-1", ["d1", "d2", "d3"])
    assert [e.device_id for e in again] == ["d1", "d3"], "already released devices are skipped"
    with pytest.raises(ValidationError, match="not a target"):
        store.deployments.release("ota-1", ["d9"])
    assert store.deployments.counts("ota-1") == {"QUEUED": 3, "PENDING": 0}
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
    _released(store, "d1", "d2")
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
    a.deployments.release("ota-1", ["d1"])
    a.deployments.update_execution("ota-1", "d1", ExecutionStatus.IN_PROGRESS, expected_version=1)
    with pytest.raises(IllegalTransition, match="version"):
        b.deployments.update_execution(
            "ota-1", "d1", ExecutionStatus.IN_PROGRESS, expected_version=1
        )


@pytest.mark.parametrize("force", [False, True], ids=["soft", "force"])
def test_cancel(store: Store, force: bool) -> None:
    _released(store, "d1", "d2", "d3")
    store.deployments.update_execution("ota-1", "d1", ExecutionStatus.IN_PROGRESS)
    store.deployments.update_execution("ota-1", "d3", ExecutionStatus.SUCCEEDED)
    canceled = store.deployments.cancel("ota-1", force=force, reason="operator")
    assert canceled.status is DeploymentStatus.CANCELED
    assert canceled.reason == "operator"
    by_device = {e.device_id: e for e in store.deployments.executions("ota-1")}
    assert by_device["d2"].status is ExecutionStatus.CANCELED
    assert by_device["d2"].version_number == 2
    assert by_device["d3"].status is ExecutionStatus.SUCCEEDED
    expected_d1 = ExecutionStatus.CANCELED if force else ExecutionStatus.IN_PROGRESS
    assert by_device["d1"].status is expected_d1
    assert store.deployments.cancel("ota-1") == store.deployments.get("ota-1")


def test_cancel_counts_unreleased_targets_as_canceled(store: Store) -> None:
    """8 targets, 2 released and rejected, then canceled: the 6 nobody will
    ever release are CANCELED, not PENDING forever, and the counts add up."""
    targets = [f"d{i}" for i in range(8)]
    store.deployments.create(_deployment(*targets))
    store.deployments.release("ota-1", targets[:2])
    for device_id in targets[:2]:
        store.deployments.update_execution("ota-1", device_id, ExecutionStatus.REJECTED)
    assert store.deployments.counts("ota-1") == {"REJECTED": 2, "PENDING": 6}
    store.deployments.cancel("ota-1", reason="operator")
    counts = store.deployments.counts("ota-1")
    assert counts == {"REJECTED": 2, "CANCELED": 6, "PENDING": 0}
    assert sum(counts.values()) == len(targets)
    # Nothing is released for them: no device is told about a job it never had.
    assert len(store.deployments.executions("ota-1")) == 2


def test_unreleased_targets_keep_a_deployment_open(store: Store) -> None:
    store.deployments.create(_deployment("d1", "d2"))
    store.deployments.release("ota-1", ["d1"])
    store.deployments.update_execution("ota-1", "d1", ExecutionStatus.SUCCEEDED)
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS
    store.deployments.release("ota-1", ["d2"])
    store.deployments.update_execution("ota-1", "d2", ExecutionStatus.SUCCEEDED)
    assert store.deployments.get("ota-1").status is DeploymentStatus.COMPLETED


def test_requeue_makes_a_new_attempt_of_failed_executions_only(store: Store) -> None:
    _released(store, "d1", "d2", "d3")
    store.deployments.update_execution(
        "ota-1", "d1", ExecutionStatus.FAILED, status_details={"reason": "truncated"}
    )
    store.deployments.update_execution("ota-1", "d2", ExecutionStatus.SUCCEEDED)
    store.deployments.update_execution("ota-1", "d3", ExecutionStatus.TIMED_OUT)
    assert store.deployments.get("ota-1").status is DeploymentStatus.COMPLETED
    retried = store.deployments.requeue("ota-1", ["d1", "d2", "d3"])
    assert sorted(e.device_id for e in retried) == ["d1", "d3"]
    assert all(
        e.status is ExecutionStatus.QUEUED and e.execution_number == 2 and e.version_number == 1
        and e.status_details == {} for e in retried
    )
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS
    assert store.deployments.execution("ota-1", "d2").status is ExecutionStatus.SUCCEEDED


def test_pause_resume_and_rollout_state_survive_reopen(
    open_store: Callable[[], Store],
) -> None:
    a = open_store()
    a.deployments.create(_deployment("d1", "d2"))
    a.deployments.release("ota-1", ["d1"])
    paused = a.deployments.set_status("ota-1", DeploymentStatus.PAUSED, reason="night")
    assert (paused.status, paused.reason) == (DeploymentStatus.PAUSED, "night")
    a.deployments.save_rollout_state("ota-1", {"increases": 2, "tokens": 0.5})
    b = open_store()
    assert b.deployments.get("ota-1").rollout_state == {"increases": 2, "tokens": 0.5}
    assert b.deployments.get("ota-1").config.abort[0].min_executed == 20
    resumed = b.deployments.set_status("ota-1", DeploymentStatus.IN_PROGRESS)
    assert resumed.status is DeploymentStatus.IN_PROGRESS
    with pytest.raises(ValidationError):
        b.deployments.set_status("ota-1", DeploymentStatus.COMPLETED)
    b.deployments.cancel("ota-1")
    with pytest.raises(IllegalTransition, match="CANCELED"):
        b.deployments.set_status("ota-1", DeploymentStatus.IN_PROGRESS)
    with pytest.raises(IllegalTransition):
        b.deployments.release("ota-1", ["d2"])


def test_for_device_lists_oldest_first(store: Store) -> None:
    store.deployments.create(_deployment("d1", dep_id="ota-a"))
    store.deployments.create(_deployment("d1", dep_id="ota-b"))
    store.deployments.release("ota-b", ["d1"])
    store.deployments.release("ota-a", ["d1"])
    assert [e.deployment_id for e in store.deployments.for_device("d1")] == ["ota-b", "ota-a"]
    store.deployments.update_execution("ota-b", "d1", ExecutionStatus.IN_PROGRESS)
    queued = store.deployments.for_device("d1", [ExecutionStatus.QUEUED])
    assert [e.deployment_id for e in queued] == ["ota-a"]
