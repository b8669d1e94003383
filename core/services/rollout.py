"""The rollout engine: who hears about a deployment when, and when to give up.

It does what AWS IoT Jobs does server-side for a job with rollout, abort,
timeout and retry configs, for backends that have no IoT Jobs of their own
(the local hub). Everything it knows lives in the store (executions, plus a
small ``rollout_state`` on the deployment), so a hub restarted mid-rollout
picks up where it was.

Two promises the firmware engineers rely on:

- **Abort is immediate.** The abort criteria are checked on every terminal
  execution update (``execution_updated``) as well as on every tick, under the
  same lock as releasing. Once a threshold is crossed no further device is
  released, so at most the devices of the step already in flight are notified
  after the crossing.
- **Rates are in rollout time.** ``speed`` scales the clock for rates and
  timeouts (like the simulator's ``--speed``) so QA can run a day-long staged
  rollout in minutes; production uses 1.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from core.errors import IllegalTransition, NotFound
from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.rollout import JobConfig
from core.model.timeutil import utcnow
from core.ports.deployments import DeploymentService

log = logging.getLogger(__name__)

_EXECUTED = ("SUCCEEDED", "FAILED", "REJECTED", "TIMED_OUT")
_ACTIVE = (DeploymentStatus.SCHEDULED, DeploymentStatus.IN_PROGRESS, DeploymentStatus.PAUSED)


class JobNotifier(Protocol):
    """How released and canceled executions reach devices (MQTT on the local hub)."""

    def released(self, deployment: Deployment, executions: list[Execution]) -> None: ...

    def canceled(self, deployment: Deployment, device_ids: list[str]) -> None:
        """Executions ended by the service (canceled, or timed out): tell the devices."""


@dataclass
class RolloutState:
    """The engine's bookkeeping for one deployment, persisted as a JSON object.

    ``tokens`` is a token bucket of devices that may be released; ``increases``
    counts exponential rate steps; the ``*_at_increase`` counters are the
    notified/succeeded totals when the rate last went up (AWS counts the
    increase criteria from the previous increase).
    """

    tokens: float = 1.0
    increases: int = 0
    notified_at_increase: int = 0
    succeeded_at_increase: int = 0
    last_tick: str | None = None
    cancel_notified: bool = False
    steps: int = 0
    # Newest ``queued_at`` already announced to devices. Announcing whatever is
    # QUEUED and newer covers the engine's own releases and retries as well as
    # a "retry failed" clicked in a console that shares the database.
    announced_through: str | None = None

    @classmethod
    def load(cls, raw: Mapping[str, Any]) -> RolloutState:
        known = {k: raw[k] for k in cls.__dataclass_fields__ if k in raw}
        return cls(**known)

    def dump(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def abort_reason(config: JobConfig, counts: Mapping[str, int]) -> str | None:
    """The first abort criterion the counts cross, described for people, or None."""
    executed = sum(counts.get(s, 0) for s in _EXECUTED)
    for criterion in config.abort:
        failures = sum(n for s, n in counts.items() if criterion.failure_type.counts(s))
        if criterion.crossed(executed, failures):
            pct = 100.0 * failures / executed
            return (
                f"automatic abort: {failures} of {executed} executed devices "
                f"({pct:.0f}%) ended {criterion.failure_type.value}, threshold "
                f"{criterion.threshold_percentage:g}% after {criterion.min_executed}"
            )
    return None


class RolloutEngine:
    def __init__(
        self,
        deployments: DeploymentService,
        notifier: JobNotifier,
        *,
        speed: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"rollout speed must be positive, got {speed}")
        self._deployments = deployments
        self._notifier = notifier
        self._speed = speed
        self._clock = clock
        self._lock = threading.RLock()

    # ------------------------------------------------------------ entry points
    def tick(self) -> None:
        """Advance every active deployment; cheap when nothing is running."""
        with self._lock:
            now = self._clock()
            for deployment in self._deployments.list():
                try:
                    if deployment.status in _ACTIVE:
                        self._advance(deployment, now)
                    elif deployment.status is DeploymentStatus.CANCELED:
                        self._announce_cancel(deployment)
                except (IllegalTransition, NotFound) as exc:
                    # Someone (a console, another hub) changed it under us; next tick re-reads.
                    log.info("rollout of %s skipped this tick: %s", deployment.deployment_id, exc)

    def execution_updated(self, execution: Execution) -> None:
        """Call after a device's update; a terminal failure may trip the abort now."""
        if not execution.status.is_terminal:
            return
        with self._lock:
            deployment = self._deployments.get(execution.deployment_id)
            if deployment.status in _ACTIVE:
                counts = self._deployments.counts(deployment.deployment_id)
                self._abort_if_crossed(deployment, counts)

    # ------------------------------------------------------------ one deployment
    def _advance(self, d: Deployment, now: datetime) -> None:
        state = RolloutState.load(d.rollout_state)
        elapsed_s = 0.0
        if state.last_tick is not None:
            elapsed_s = max(0.0, (now - datetime.fromisoformat(state.last_tick)).total_seconds())
        state.last_tick = now.isoformat()

        self._time_out(d, now)
        counts = self._deployments.counts(d.deployment_id)
        if self._abort_if_crossed(d, counts):
            return
        self._retry(d)
        if d.status is DeploymentStatus.PAUSED:
            self._deployments.save_rollout_state(d.deployment_id, state.dump())
            return  # paused: no tokens accrue, nothing is released
        counts = self._deployments.counts(d.deployment_id)
        self._raise_rate(d.config, counts, state)
        rate = d.config.rollout.rate_per_minute(state.increases)
        pending = counts.get("PENDING", 0)
        if math.isinf(rate):
            allowed = pending
        else:
            state.tokens = min(state.tokens + rate / 60.0 * elapsed_s * self._speed,
                               max(rate, 1.0))
            allowed = min(pending, int(state.tokens))
        if allowed > 0:
            start = len(d.targets) - pending
            self._deployments.release(d.deployment_id, d.targets[start : start + allowed])
            if not math.isinf(rate):
                state.tokens -= allowed
            state.steps += 1
        self._announce(d, state)
        self._deployments.save_rollout_state(d.deployment_id, state.dump())

    def _announce(self, d: Deployment, state: RolloutState) -> None:
        through = (
            datetime.fromisoformat(state.announced_through) if state.announced_through else None
        )
        fresh = [
            e
            for e in self._deployments.executions(d.deployment_id)
            if e.status is ExecutionStatus.QUEUED and (through is None or e.queued_at > through)
        ]
        if not fresh:
            return
        order = {device_id: i for i, device_id in enumerate(d.targets)}
        fresh.sort(key=lambda e: (e.queued_at, order.get(e.device_id, 0)))
        state.announced_through = max(e.queued_at for e in fresh).isoformat()
        self._notifier.released(self._deployments.get(d.deployment_id), fresh)

    def _raise_rate(
        self, config: JobConfig, counts: Mapping[str, int], state: RolloutState
    ) -> None:
        exp = config.rollout.exponential
        if exp is None:
            return
        notified = sum(n for s, n in counts.items() if s != "PENDING")
        succeeded = counts.get("SUCCEEDED", 0)
        while True:
            if exp.notified is not None and notified - state.notified_at_increase >= exp.notified:
                state.notified_at_increase += exp.notified
            elif (
                exp.succeeded is not None
                and succeeded - state.succeeded_at_increase >= exp.succeeded
            ):
                state.succeeded_at_increase += exp.succeeded
            else:
                return
            state.increases += 1

    def _abort_if_crossed(self, d: Deployment, counts: Mapping[str, int]) -> bool:
        reason = abort_reason(d.config, counts)
        if reason is None:
            return False
        queued = [
            e.device_id
            for e in self._deployments.executions(d.deployment_id)
            if e.status is ExecutionStatus.QUEUED
        ]
        canceled = self._deployments.cancel(d.deployment_id, reason=reason)
        log.warning("deployment %s canceled: %s", d.deployment_id, reason)
        self._notify_cancel(canceled, queued)
        return True

    def _announce_cancel(self, d: Deployment) -> None:
        """A cancel made elsewhere (a console, the CLI) still has to reach devices."""
        state = RolloutState.load(d.rollout_state)
        if state.cancel_notified:
            return
        canceled = [
            e.device_id
            for e in self._deployments.executions(d.deployment_id)
            if e.status is ExecutionStatus.CANCELED
        ]
        self._notify_cancel(d, canceled)

    def _notify_cancel(self, d: Deployment, device_ids: list[str]) -> None:
        state = RolloutState.load(self._deployments.get(d.deployment_id).rollout_state)
        state.cancel_notified = True
        self._deployments.save_rollout_state(d.deployment_id, state.dump())
        if device_ids:
            self._notifier.canceled(d, device_ids)

    def _time_out(self, d: Deployment, now: datetime) -> None:
        minutes = d.config.in_progress_timeout_minutes
        if minutes is None:
            return
        limit = timedelta(minutes=minutes / self._speed)
        ended: list[str] = []
        for e in self._deployments.executions(d.deployment_id):
            if (
                e.status is ExecutionStatus.IN_PROGRESS
                and e.started_at is not None
                and now - e.started_at >= limit
            ):
                try:
                    self._deployments.update_execution(
                        d.deployment_id,
                        e.device_id,
                        ExecutionStatus.TIMED_OUT,
                        status_details={"message": f"no update within {minutes} min"},
                        expected_version=e.version_number,
                    )
                except IllegalTransition:
                    continue  # the device answered in the meantime
                ended.append(e.device_id)
        if ended:
            # The device must hear that this job is over for it (notify-next
            # names its next job, or none), as when a job is canceled.
            self._notifier.canceled(d, ended)

    def _retry(self, d: Deployment) -> None:
        if not d.config.retries:
            return
        again = [
            e.device_id
            for e in self._deployments.executions(d.deployment_id)
            if e.status.is_terminal
            and e.execution_number <= d.config.retries_for(e.status.value)
        ]
        if again:
            self._deployments.requeue(d.deployment_id, again)  # announced with the releases
