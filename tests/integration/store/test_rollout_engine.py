"""The rollout engine against the real store: rates, abort, timeouts, retries,
pause, and resuming after a restart (a new engine on the same database)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.model.timeutil import utcnow
from core.services.rollout import RolloutEngine
from core.store import Store

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


class Clock:
    """Starts at the real time because the store stamps device updates with it."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    """Collects what would be published to devices."""

    def __init__(self) -> None:
        self.released: list[list[str]] = []
        self.canceled: list[str] = []

    def released_devices(self) -> list[str]:
        return [d for batch in self.released for d in batch]

    def released_fn(self, deployment: Deployment, executions: list[Execution]) -> None:
        self.released.append([e.device_id for e in executions])

    def canceled_fn(self, deployment: Deployment, device_ids: list[str]) -> None:
        self.canceled.extend(device_ids)


class Notifier:
    def __init__(self, recorder: Recorder) -> None:
        self.r = recorder

    def released(self, deployment: Deployment, executions: list[Execution]) -> None:
        self.r.released_fn(deployment, executions)

    def canceled(self, deployment: Deployment, device_ids: list[str]) -> None:
        self.r.canceled_fn(deployment, device_ids)


def _targets(n: int) -> tuple[str, ...]:
    return tuple(f"dev-{i:04d}" for i in range(n))


def _setup(store: Store, config: JobConfig, n: int = 100) -> tuple[RolloutEngine, Clock, Recorder]:
    store.deployments.create(
        Deployment("pump@2.0.0", _targets(n), "ota-1", config=config, created_at=T0,
                   updated_at=T0)
    )
    clock, rec = Clock(), Recorder()
    return RolloutEngine(store.deployments, Notifier(rec), clock=clock), clock, rec


def _finish(store: Store, device_ids: list[str], status: ExecutionStatus,
            engine: RolloutEngine) -> None:
    for device_id in device_ids:
        e = store.deployments.update_execution("ota-1", device_id, status)
        engine.execution_updated(e)


def test_constant_rate_releases_per_minute_in_target_order(store: Store) -> None:
    engine, clock, rec = _setup(store, JobConfig(RolloutConfig(maximum_per_minute=30)))
    engine.tick()
    assert rec.released == [["dev-0000"]], "the first tick releases one device at once"
    for _ in range(60):
        clock.advance(1)
        engine.tick()
    released = rec.released_devices()
    # 1 at start + 30 over the minute; never more than the rate allows.
    assert len(released) == 31
    assert released == list(_targets(31))
    assert store.deployments.counts("ota-1")["PENDING"] == 69
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS


def test_no_rollout_config_releases_everything_at_once(store: Store) -> None:
    engine, _, rec = _setup(store, JobConfig(), n=250)
    engine.tick()
    assert len(rec.released_devices()) == 250


def test_exponential_rate_grows_after_notified_criterion(store: Store) -> None:
    config = JobConfig(RolloutConfig(exponential=ExponentialRate(10, 2.0, notified=10)))
    engine, clock, rec = _setup(store, config, n=1000)
    per_minute = []
    for _minute in range(3):
        before = len(rec.released_devices())
        for _ in range(60):
            clock.advance(1)
            engine.tick()
        per_minute.append(len(rec.released_devices()) - before)
    # The rate doubles each time 10 more devices were notified, so each minute
    # releases clearly more than the one before (10/min at first).
    assert per_minute[0] >= 10
    assert all(b > a for a, b in itertools.pairwise(per_minute))
    state = store.deployments.get("ota-1").rollout_state
    assert state["increases"] >= 4


def test_abort_cancels_at_the_crossing_and_releases_nothing_after(store: Store) -> None:
    config = JobConfig(
        RolloutConfig(maximum_per_minute=600),
        abort=(AbortCriterion(FailureType.FAILED, 10, 20),),
    )
    engine, clock, rec = _setup(store, config, n=200)
    crossed_at: int | None = None
    for _step in range(60):
        clock.advance(1)
        engine.tick()
        # Devices finish: every third fails (33% > 10%).
        for i, device_id in enumerate(rec.released_devices()):
            e = store.deployments.execution("ota-1", device_id)
            if e.status is ExecutionStatus.QUEUED:
                status = ExecutionStatus.FAILED if i % 3 == 0 else ExecutionStatus.SUCCEEDED
                engine.execution_updated(
                    store.deployments.update_execution("ota-1", device_id, status)
                )
                if crossed_at is None and store.deployments.get("ota-1").status is (
                    DeploymentStatus.CANCELED
                ):
                    crossed_at = len(rec.released_devices())
        if crossed_at is not None:
            break
    assert crossed_at is not None
    d = store.deployments.get("ota-1")
    assert d.status is DeploymentStatus.CANCELED
    assert "FAILED" in d.reason and "threshold 10%" in d.reason
    for _ in range(30):
        clock.advance(1)
        engine.tick()
    assert len(rec.released_devices()) == crossed_at, "nothing is released after the abort"
    counts = store.deployments.counts("ota-1")
    assert counts["PENDING"] == 0, "unreleased targets of a canceled job are not pending"
    assert counts["CANCELED"] >= 200 - crossed_at
    assert sum(counts.values()) == 200
    executed = counts.get("FAILED", 0) + counts.get("SUCCEEDED", 0)
    assert executed >= 20


def test_abort_waits_for_minimum_executed(store: Store) -> None:
    config = JobConfig(abort=(AbortCriterion(FailureType.ALL, 50, 10),))
    engine, _, rec = _setup(store, config, n=20)
    engine.tick()
    _finish(store, list(_targets(9)), ExecutionStatus.REJECTED, engine)
    assert store.deployments.get("ota-1").status is DeploymentStatus.IN_PROGRESS
    _finish(store, ["dev-0009"], ExecutionStatus.TIMED_OUT, engine)
    d = store.deployments.get("ota-1")
    assert d.status is DeploymentStatus.CANCELED
    assert sorted(rec.canceled) == [f"dev-{i:04d}" for i in range(10, 20)]


def test_in_progress_timeout_and_retry(store: Store) -> None:
    config = JobConfig(
        in_progress_timeout_minutes=5,
        retries=(RetryCriterion(FailureType.TIMED_OUT, 1),),
    )
    engine, clock, rec = _setup(store, config, n=2)
    engine.tick()
    store.deployments.update_execution("ota-1", "dev-0000", ExecutionStatus.IN_PROGRESS)
    clock.advance(4 * 60)
    engine.tick()
    assert store.deployments.execution("ota-1", "dev-0000").status is ExecutionStatus.IN_PROGRESS
    clock.advance(61)
    engine.tick()
    retried = store.deployments.execution("ota-1", "dev-0000")
    assert (retried.status, retried.execution_number) == (ExecutionStatus.QUEUED, 2)
    assert rec.canceled == ["dev-0000"], "the timed-out device is told its job ended"
    assert rec.released[-1] == ["dev-0000"], "the retry is announced to the device"
    store.deployments.update_execution("ota-1", "dev-0000", ExecutionStatus.IN_PROGRESS)
    clock.advance(6 * 60)
    engine.tick()
    final = store.deployments.execution("ota-1", "dev-0000")
    assert (final.status, final.execution_number) == (ExecutionStatus.TIMED_OUT, 2)


def test_pause_stops_releases_and_resume_continues(store: Store) -> None:
    engine, clock, rec = _setup(store, JobConfig(RolloutConfig(maximum_per_minute=60)))
    engine.tick()
    store.deployments.set_status("ota-1", DeploymentStatus.PAUSED)
    for _ in range(30):
        clock.advance(1)
        engine.tick()
    assert len(rec.released_devices()) == 1
    store.deployments.set_status("ota-1", DeploymentStatus.IN_PROGRESS)
    for _ in range(10):
        clock.advance(1)
        engine.tick()
    assert len(rec.released_devices()) == 11, "no burst for the paused time"


def test_a_new_engine_resumes_a_rollout(open_store: Callable[[], Store]) -> None:
    first = open_store()
    engine, clock, rec = _setup(first, JobConfig(RolloutConfig(maximum_per_minute=60)))
    for _ in range(10):
        clock.advance(1)
        engine.tick()
    released_before = len(rec.released_devices())
    # The hub restarts: a new engine over a new connection to the same database.
    rec2 = Recorder()
    engine2 = RolloutEngine(open_store().deployments, Notifier(rec2), clock=clock)
    for _ in range(10):
        clock.advance(1)
        engine2.tick()
    assert len(rec2.released_devices()) == 10
    assert set(rec2.released_devices()).isdisjoint(rec.released_devices())
    assert first.deployments.counts("ota-1")["PENDING"] == 100 - released_before - 10


def test_cancel_from_elsewhere_is_announced_once(store: Store) -> None:
    engine, _, rec = _setup(store, JobConfig(), n=3)
    engine.tick()
    store.deployments.cancel("ota-1", reason="operator")
    engine.tick()
    engine.tick()
    assert sorted(rec.canceled) == ["dev-0000", "dev-0001", "dev-0002"]


def test_speed_scales_rates(store: Store) -> None:
    store.deployments.create(
        Deployment("pump@2.0.0", _targets(100), "ota-1",
                   config=JobConfig(RolloutConfig(maximum_per_minute=60)))
    )
    clock, rec = Clock(), Recorder()
    engine = RolloutEngine(store.deployments, Notifier(rec), clock=clock, speed=10)
    engine.tick()
    for _ in range(6):
        clock.advance(1)
        engine.tick()
    assert len(rec.released_devices()) == 61


def test_speed_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="positive"):
        RolloutEngine(store.deployments, Notifier(Recorder()), speed=0)
