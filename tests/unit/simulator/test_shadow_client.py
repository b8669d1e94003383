"""The simulated device's shadow client against a scripted clock: unanswered gets
are retried with growing, jittered, seeded delays; only the answer to a get of its
own (by clientToken) is taken, once; and it reports only what the shadow lacks.
10,000 devices asking every 5 s on the dot, each answer bringing an update, kept
a busy hub's request queue from ever settling."""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import Callable
from typing import Any

from simulator.agent import SHADOW_GET_RETRY_MAX_S, DeviceAgent


class Source:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.intervals = {0: 1.0}

    def device_info(self, index: int) -> tuple[str, str, str, str]:
        return ("env-00000", "acme", "env", "1.0.0")

    def interval(self, index: int) -> float:
        return self.intervals[index]

    def set_interval(self, index: int, seconds: float) -> None:
        self.intervals[index] = seconds

    def apply_setpoints(self, index: int, values: dict[str, float]) -> None:
        pass


class Client:
    def subscribe(self, filters: Any) -> None:
        pass


class Session:
    device_id, org, index, connected = "env-00000", "acme", 0, True
    client = Client()


class Runtime:
    """Publishes are recorded; timers run on a simulated clock (no waiting)."""

    speed = 1.0

    def __init__(self, seed: int) -> None:
        self.source = Source(seed)
        self.now = 0.0
        self.sent: list[tuple[float, str, bytes]] = []
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count()

    def publish(self, session: Any, topic: str, payload: bytes, qos: int = 0,
                retain: bool = False) -> bool:
        self.sent.append((self.now, topic, payload))
        return True

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._timers, (self.now + delay_s, next(self._ids), action))

    def sim_now(self) -> float:
        return self.now

    def run_until(self, t: float) -> None:
        while self._timers and self._timers[0][0] <= t:
            self.now, _, action = heapq.heappop(self._timers)
            action()
        self.now = t

    def gets(self) -> list[tuple[float, dict[str, Any]]]:
        return [(t, json.loads(p)) for t, topic, p in self.sent
                if topic == "$aws/things/env-00000/shadow/get"]

    def updates(self) -> list[dict[str, Any]]:
        return [json.loads(p) for _t, topic, p in self.sent
                if topic == "$aws/things/env-00000/shadow/update"]


def connected(seed: int = 7) -> tuple[Runtime, DeviceAgent]:
    runtime = Runtime(seed)
    agent = DeviceAgent(runtime, Session())  # type: ignore[arg-type]
    agent.on_connected(False)
    return runtime, agent


def answer(agent: DeviceAgent, token: str, *, reported: dict[str, Any] | None = None,
           delta: dict[str, Any] | None = None, version: int = 3) -> None:
    state: dict[str, Any] = {"reported": reported or {}}
    if delta:
        state["delta"] = delta
    body = {"state": state, "version": version, "timestamp": 1, "clientToken": token}
    agent.on_message("$aws/things/env-00000/shadow/get/accepted", json.dumps(body).encode())


def test_unanswered_gets_back_off_with_seeded_jitter():
    runtime, _agent = connected(seed=7)
    runtime.run_until(3600.0)
    times = [t for t, _ in runtime.gets()]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # 5 s doubling to 5 min, full jitter: in an hour far fewer than the 720 gets a
    # fixed 5 s retry asks, and every gap under its ceiling
    assert 10 <= len(times) < 60
    ceilings = [min(SHADOW_GET_RETRY_MAX_S, 5.0 * 2 ** (n + 1)) for n in range(len(gaps))]
    assert all(0 <= gap <= ceiling for gap, ceiling in zip(gaps, ceilings, strict=True))
    assert sum(gaps[-5:]) / 5 > 4 * sum(gaps[:3]) / 3  # the intervals grow
    tokens = [body["clientToken"] for _t, body in runtime.gets()]
    assert len(set(tokens)) == len(tokens)  # each get its own token
    # the same seed gives the same schedule and tokens; another seed does not
    again, _ = connected(seed=7)
    again.run_until(3600.0)
    assert again.gets() == runtime.gets()
    other, _ = connected(seed=8)
    other.run_until(3600.0)
    assert [t for t, _ in other.gets()] != times


def test_a_device_answered_twice_reports_once_and_stops_asking():
    runtime, agent = connected()
    runtime.run_until(40.0)  # a few gets went unanswered so far
    tokens = [body["clientToken"] for _t, body in runtime.gets()]
    assert len(tokens) >= 2
    answer(agent, tokens[0])  # the hub answers the old get first...
    answer(agent, tokens[-1])  # ...then the newer one
    answer(agent, tokens[0])  # and a redelivered duplicate
    assert agent.shadow_synced
    assert len(runtime.updates()) == 1
    asked = len(runtime.gets())
    runtime.run_until(4000.0)
    assert len(runtime.gets()) == asked  # synced: no more retries


def test_no_update_when_the_shadow_already_has_the_reported_state():
    runtime, agent = connected()
    token = runtime.gets()[0][1]["clientToken"]
    answer(agent, token, reported={"interval": 1.0, "firmware": "1.0.0"})
    assert agent.shadow_synced and runtime.updates() == []


def test_a_delta_in_the_answer_is_applied_and_reported():
    runtime, agent = connected()
    token = runtime.gets()[0][1]["clientToken"]
    answer(agent, token, reported={"interval": 1.0, "firmware": "1.0.0"},
           delta={"interval": 30})
    assert runtime.source.intervals[0] == 30.0
    assert runtime.updates() == [{"state": {"reported": {"firmware": "1.0.0",
                                                          "interval": 30.0}}}]


def test_answers_to_gets_it_did_not_send_are_ignored():
    runtime, agent = connected()
    answer(agent, "someone-elses-token")
    agent.on_message("$aws/things/env-00000/shadow/get/accepted",
                     json.dumps({"state": {}, "version": 1}).encode())  # no token
    assert not agent.shadow_synced and runtime.updates() == []


def test_reconnect_starts_over_and_old_timers_do_nothing():
    runtime, agent = connected()
    runtime.run_until(100.0)
    before = len(runtime.gets())
    agent.on_connected(False)  # the link came back: one get now, backoff from the start
    assert len(runtime.gets()) == before + 1
    runtime.run_until(110.0)
    gaps_after = [t for t, _ in runtime.gets()[before:]]
    assert all(b - a <= 10.0 for a, b in itertools.pairwise(gaps_after[:2]))
