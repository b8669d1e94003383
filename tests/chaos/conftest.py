"""Chaos tests: real broker, real database, real simulator, real faults.

Each test injects one fault and asserts what the reliability promise says:
no QoS 1 reading the broker accepted is lost or stored twice, no acknowledged
action is lost or applied twice, work resumes by itself, and the status said
what was happening while it happened. Each prints a ``CHAOS`` line with what it
measured (recovery times), which docs/reliability.md records."""

from __future__ import annotations

import pytest

from tests.chaos.rig import PersistentMosquitto


@pytest.fixture
def broker():
    b = PersistentMosquitto().start()
    yield b
    b.stop()


def report(name: str, **figures: object) -> None:
    print(f"\nCHAOS {name}: " + ", ".join(f"{k}={v}" for k, v in figures.items()), flush=True)
