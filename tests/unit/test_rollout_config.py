"""IoT Jobs configuration shapes: validation, rates, abort maths, AWS round trip."""

from __future__ import annotations

import math

import pytest

from core.errors import ValidationError
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.services.rollout import abort_reason

FULL = JobConfig(
    RolloutConfig(maximum_per_minute=400,
                  exponential=ExponentialRate(20, 1.5, succeeded=30)),
    abort=(AbortCriterion(FailureType.FAILED, 10, 20), AbortCriterion(FailureType.ALL, 25, 50)),
    in_progress_timeout_minutes=45,
    retries=(RetryCriterion(FailureType.TIMED_OUT, 2), RetryCriterion(FailureType.ALL, 1)),
)


def test_round_trips_through_the_aws_shape() -> None:
    aws = FULL.to_aws()
    assert aws["jobExecutionsRolloutConfig"]["exponentialRate"]["rateIncreaseCriteria"] == {
        "numberOfSucceededThings": 30}
    assert aws["abortConfig"]["criteriaList"][1] == {
        "failureType": "ALL", "action": "CANCEL", "thresholdPercentage": 25,
        "minNumberOfExecutedThings": 50}
    assert aws["timeoutConfig"] == {"inProgressTimeoutInMinutes": 45}
    assert JobConfig.from_aws(aws) == FULL
    assert JobConfig.from_aws({}) == JobConfig()


def test_rates() -> None:
    assert math.isinf(RolloutConfig().rate_per_minute(0))
    assert RolloutConfig(maximum_per_minute=30).rate_per_minute(5) == 30
    exp = RolloutConfig(maximum_per_minute=100, exponential=ExponentialRate(10, 2, notified=5))
    assert [exp.rate_per_minute(k) for k in range(5)] == [10, 20, 40, 80, 100]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: RolloutConfig(maximum_per_minute=0), "maximum per minute"),
    (lambda: ExponentialRate(10, 6.0, notified=5), "increment factor"),
    (lambda: ExponentialRate(10, 2.0), "exactly one rate-increase criterion"),
    (lambda: ExponentialRate(10, 2.0, notified=5, succeeded=5), "exactly one"),
    (lambda: RolloutConfig(maximum_per_minute=5, exponential=ExponentialRate(10, 2, notified=1)),
     "below the exponential base rate"),
    (lambda: AbortCriterion(FailureType.FAILED, 0, 10), "threshold percentage"),
    (lambda: AbortCriterion(FailureType.FAILED, 10, 0), "minimum executed"),
    (lambda: RetryCriterion(FailureType.REJECTED, 1), "cannot be retried"),
    (lambda: JobConfig(in_progress_timeout_minutes=0), "timeout"),
    (lambda: JobConfig.from_aws({"abortConfig": {"criteriaList": [{"failureType": "FAILED"}]}}),
     "malformed"),
])
def test_validation_names_the_field(build, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        build()


def test_abort_maths_counts_the_right_failures() -> None:
    config = JobConfig(abort=(AbortCriterion(FailureType.REJECTED, 10, 20),))
    # 19 executed: below the minimum whatever the share.
    assert abort_reason(config, {"REJECTED": 19}) is None
    assert abort_reason(config, {"SUCCEEDED": 18, "REJECTED": 2}) is not None  # 10% of 20
    assert abort_reason(config, {"SUCCEEDED": 19, "REJECTED": 1, "FAILED": 10}) is None
    everything = JobConfig(abort=(AbortCriterion(FailureType.ALL, 50, 4),))
    reason = abort_reason(everything, {"FAILED": 1, "TIMED_OUT": 1, "SUCCEEDED": 2,
                                       "QUEUED": 90, "PENDING": 5})
    assert reason is not None and "2 of 4 executed" in reason and "(50%)" in reason


def test_retries_for_takes_the_largest_matching_and_never_rejections() -> None:
    assert FULL.retries_for("TIMED_OUT") == 2
    assert FULL.retries_for("FAILED") == 1
    assert FULL.retries_for("REJECTED") == 0
    assert FULL.retries_for("SUCCEEDED") == 0
