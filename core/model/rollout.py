"""How fast a deployment reaches devices, when it gives up, and what it retries.

The shapes and limits are AWS IoT Jobs' (``jobExecutionsRolloutConfig``,
``abortConfig``, ``timeoutConfig``, ``jobExecutionsRetryConfig``) so a
deployment planned against the local hub means the same thing on AWS, and
``to_aws()`` can be handed to ``CreateJob`` unchanged.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from core.errors import ValidationError


class FailureType(enum.StrEnum):
    FAILED = "FAILED"
    REJECTED = "REJECTED"
    TIMED_OUT = "TIMED_OUT"
    ALL = "ALL"

    def counts(self, status: str) -> bool:
        """Whether an execution that ended in ``status`` is this kind of failure."""
        if self is FailureType.ALL:
            return status in _FAILURES
        return status == self.value

    @classmethod
    def parse(cls, value: Any, where: str) -> FailureType:
        try:
            return cls(str(value))
        except ValueError:
            allowed = ", ".join(f.value for f in cls)
            raise ValidationError(
                f"{where}: failure type {value!r} is not one of {allowed}"
            ) from None


_FAILURES = frozenset({"FAILED", "REJECTED", "TIMED_OUT"})


def _int_in(value: Any, low: int, high: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{where} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _float_in(value: Any, low: float, high: float, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ValidationError(f"{where} must be a number from {low} to {high}, got {value!r}")
    return float(value)


@dataclass(frozen=True, slots=True)
class ExponentialRate:
    """Start at ``base_rate_per_minute`` and multiply by ``increment_factor``
    each time ``notified`` more devices were notified or ``succeeded`` more
    succeeded since the last increase (whichever criterion is given)."""

    base_rate_per_minute: int
    increment_factor: float
    notified: int | None = None
    succeeded: int | None = None

    def __post_init__(self) -> None:
        _int_in(self.base_rate_per_minute, 1, 1000, "exponential base rate per minute")
        _float_in(self.increment_factor, 1.1, 5.0, "exponential increment factor")
        if (self.notified is None) == (self.succeeded is None):
            raise ValidationError(
                "exponential rollout needs exactly one rate-increase criterion: "
                "number of notified devices or number of succeeded devices"
            )
        if self.notified is not None:
            _int_in(self.notified, 1, 1_000_000, "rate increase after notified devices")
        if self.succeeded is not None:
            _int_in(self.succeeded, 1, 1_000_000, "rate increase after succeeded devices")


@dataclass(frozen=True, slots=True)
class RolloutConfig:
    """Constant (``maximum_per_minute``) or exponential; neither means "all at once"."""

    maximum_per_minute: int | None = None
    exponential: ExponentialRate | None = None

    def __post_init__(self) -> None:
        if self.maximum_per_minute is not None:
            _int_in(self.maximum_per_minute, 1, 1000, "maximum per minute")
        if (
            self.exponential is not None
            and self.maximum_per_minute is not None
            and self.maximum_per_minute < self.exponential.base_rate_per_minute
        ):
                raise ValidationError(
                    "maximum per minute must not be below the exponential base rate"
                )

    def rate_per_minute(self, increases: int) -> float:
        """The release rate after ``increases`` exponential steps (inf = unlimited)."""
        if self.exponential is not None:
            rate = self.exponential.base_rate_per_minute * (
                self.exponential.increment_factor ** increases
            )
            cap = self.maximum_per_minute or 1000
            return float(min(rate, cap))
        if self.maximum_per_minute is not None:
            return float(self.maximum_per_minute)
        return math.inf


@dataclass(frozen=True, slots=True)
class AbortCriterion:
    failure_type: FailureType
    threshold_percentage: float
    min_executed: int
    action: str = "CANCEL"

    def __post_init__(self) -> None:
        _float_in(self.threshold_percentage, 0.0001, 100.0, "abort threshold percentage")
        _int_in(self.min_executed, 1, 1_000_000, "abort minimum executed devices")
        if self.action != "CANCEL":
            raise ValidationError(f"abort action {self.action!r} is not CANCEL")

    def crossed(self, executed: int, failures: int) -> bool:
        return executed >= self.min_executed and failures * 100.0 >= (
            self.threshold_percentage * executed
        )

    def describe(self) -> str:
        return (
            f"{self.failure_type.value} ≥ {self.threshold_percentage:g}% "
            f"(after {self.min_executed} executed)"
        )


@dataclass(frozen=True, slots=True)
class RetryCriterion:
    failure_type: FailureType
    number_of_retries: int

    def __post_init__(self) -> None:
        if self.failure_type is FailureType.REJECTED:
            # IoT Jobs: a rejection is the device's verdict on the document; retrying
            # the same document cannot change it.
            raise ValidationError("REJECTED executions cannot be retried; use FAILED or TIMED_OUT")
        _int_in(self.number_of_retries, 0, 10, "number of retries")


@dataclass(frozen=True, slots=True)
class JobConfig:
    rollout: RolloutConfig = field(default_factory=RolloutConfig)
    abort: tuple[AbortCriterion, ...] = ()
    in_progress_timeout_minutes: int | None = None
    retries: tuple[RetryCriterion, ...] = ()

    def __post_init__(self) -> None:
        if self.in_progress_timeout_minutes is not None:
            _int_in(self.in_progress_timeout_minutes, 1, 10080, "in-progress timeout (minutes)")

    def retries_for(self, status: str) -> int:
        """How many retries an execution ending in ``status`` gets (the largest
        matching criterion wins, as a device can match FAILED and ALL). A
        rejection is never retried: it is the device's verdict on the document."""
        if status == FailureType.REJECTED.value:
            return 0
        return max(
            (c.number_of_retries for c in self.retries if c.failure_type.counts(status)),
            default=0,
        )

    # ------------------------------------------------------------ AWS shape
    def to_aws(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        r = self.rollout
        rollout: dict[str, Any] = {}
        if r.maximum_per_minute is not None:
            rollout["maximumPerMinute"] = r.maximum_per_minute
        if r.exponential is not None:
            e = r.exponential
            criteria = (
                {"numberOfNotifiedThings": e.notified}
                if e.notified is not None
                else {"numberOfSucceededThings": e.succeeded}
            )
            rollout["exponentialRate"] = {
                "baseRatePerMinute": e.base_rate_per_minute,
                "incrementFactor": e.increment_factor,
                "rateIncreaseCriteria": criteria,
            }
        if rollout:
            out["jobExecutionsRolloutConfig"] = rollout
        if self.abort:
            out["abortConfig"] = {
                "criteriaList": [
                    {
                        "failureType": c.failure_type.value,
                        "action": c.action,
                        "thresholdPercentage": c.threshold_percentage,
                        "minNumberOfExecutedThings": c.min_executed,
                    }
                    for c in self.abort
                ]
            }
        if self.in_progress_timeout_minutes is not None:
            out["timeoutConfig"] = {"inProgressTimeoutInMinutes": self.in_progress_timeout_minutes}
        if self.retries:
            out["jobExecutionsRetryConfig"] = {
                "criteriaList": [
                    {"failureType": c.failure_type.value, "numberOfRetries": c.number_of_retries}
                    for c in self.retries
                ]
            }
        return out

    @classmethod
    def from_aws(cls, data: dict[str, Any]) -> JobConfig:
        """Parse the AWS shape; every error names the key that is wrong."""
        try:
            return cls._from_aws(data)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValidationError(f"job configuration is malformed: missing or bad {exc}") from None

    @classmethod
    def _from_aws(cls, data: dict[str, Any]) -> JobConfig:
        rollout = RolloutConfig()
        raw = data.get("jobExecutionsRolloutConfig")
        if raw:
            exp = None
            if "exponentialRate" in raw:
                e = raw["exponentialRate"]
                crit = e.get("rateIncreaseCriteria", {})
                exp = ExponentialRate(
                    base_rate_per_minute=e["baseRatePerMinute"],
                    increment_factor=e["incrementFactor"],
                    notified=crit.get("numberOfNotifiedThings"),
                    succeeded=crit.get("numberOfSucceededThings"),
                )
            rollout = RolloutConfig(raw.get("maximumPerMinute"), exp)
        abort = tuple(
            AbortCriterion(
                failure_type=FailureType.parse(c["failureType"], "abort criterion"),
                threshold_percentage=c["thresholdPercentage"],
                min_executed=c["minNumberOfExecutedThings"],
                action=c.get("action", "CANCEL"),
            )
            for c in (data.get("abortConfig") or {}).get("criteriaList", [])
        )
        timeout = (data.get("timeoutConfig") or {}).get("inProgressTimeoutInMinutes")
        retries = tuple(
            RetryCriterion(FailureType.parse(c["failureType"], "retry criterion"),
                           c["numberOfRetries"])
            for c in (data.get("jobExecutionsRetryConfig") or {}).get("criteriaList", [])
        )
        return cls(rollout, abort, timeout, retries)
