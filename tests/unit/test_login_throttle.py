"""Failed sign-ins are counted per person and per address in a sliding window:
the answer says how long to wait, a success clears only the person's count,
and the memory stays bounded however many names an attacker tries."""

from __future__ import annotations

import pytest

from core.services import accounts
from core.services.accounts import LoginThrottle, TooManyAttempts


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_is_until_the_oldest_counted_failure_leaves_the_window() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=3, per_client=100, window_s=60, clock=clock)
    for step in range(3):
        throttle.check("Maria", "10.0.0.1")
        throttle.failed("Maria", "10.0.0.1")
        clock.now += 5 * (step + 1)  # failures at 100, 105, 115; now 130
    with pytest.raises(TooManyAttempts) as refused:
        throttle.check("maria", "10.0.0.2")  # same person, any case, any address
    assert refused.value.retry_after_s == 100 + 60 - clock.now
    clock.now = 160.5  # the first failure has left the window
    throttle.check("maria", "10.0.0.1")


def test_a_success_clears_the_person_but_not_the_address() -> None:
    clock = Clock()
    throttle = LoginThrottle(per_user=2, per_client=3, window_s=60, clock=clock)
    for name in ("a", "b", "c"):
        throttle.failed(name, "10.0.0.9")
    throttle.failed("d", "10.0.0.8")
    throttle.failed("d", "10.0.0.8")
    throttle.succeeded("d")
    throttle.check("d", "10.0.0.8")
    with pytest.raises(TooManyAttempts):
        throttle.check("e", "10.0.0.9")  # this address guessed three names already


def test_old_failures_are_forgotten_when_many_names_were_tried(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "MAX_TRACKED", 50)
    clock = Clock()
    throttle = LoginThrottle(window_s=60, clock=clock)
    for i in range(200):
        clock.now += 1
        throttle.failed(f"guess-{i}", "")
    assert len(throttle._failures) <= 50 + 60
