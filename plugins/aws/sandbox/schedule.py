"""EventBridge's schedules, run locally: a function whose template events
include ``schedule: rate(...)`` is invoked at that rate, on a thread of its
own, with the event EventBridge sends (``"detail-type": "Scheduled Event"``).

On AWS the ``alertTicker`` is what marks silent devices offline and lets
"Device silent" fire; without it a sandbox device that stops publishing
would stay online for ever. ``every_s`` overrides the template's rate (the
tests tick in a fraction of a second rather than once a minute). Only
``rate()`` expressions are understood; a ``cron()`` one is refused by name.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from plugins.aws.sandbox.event_sources import Handler, LambdaContext

log = logging.getLogger(__name__)

ACCOUNT = "123456789012"  # the account moto reports
_UNITS = {"minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|hour|day)s?\s*\)")


class ScheduleError(ValueError):
    """A schedule expression the sandbox cannot run; names it and the function."""


def rate_seconds(expression: str, function: str = "") -> float:
    """``rate(1 minute)`` -> 60.0; EventBridge's rate units only."""
    found = _RATE.fullmatch(expression.strip())
    if found is None or int(found.group(1)) < 1:
        where = f"functions.{function}: " if function else ""
        raise ScheduleError(f"{where}schedule {expression!r} is not a rate(N minute|hour|day) "
                            "expression (the sandbox runs rate() schedules only)")
    return int(found.group(1)) * _UNITS[found.group(2)]


def schedules_of(events: Iterable[dict[str, Any]], function: str = "") -> list[str]:
    """The schedule expressions among a function's template events (the
    short form ``schedule: rate(...)`` and the long ``schedule: {rate: ...}``,
    whose ``rate`` may be a list), enabled ones only."""
    found: list[str] = []
    for event in events:
        schedule = event.get("schedule")
        if isinstance(schedule, str):
            found.append(schedule)
        elif isinstance(schedule, dict) and schedule.get("enabled", True):
            rates = schedule.get("rate")
            found += [str(r) for r in (rates if isinstance(rates, list) else [rates]) if r]
        elif schedule is not None:
            raise ScheduleError(f"functions.{function}: schedule {schedule!r} is neither an "
                                "expression nor a mapping")
    return found


def scheduled_event(region: str, rule_arn: str, at: float | None = None) -> dict[str, Any]:
    """The event EventBridge hands a function on a schedule."""
    when = time.gmtime(time.time() if at is None else at)
    return {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": ACCOUNT,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", when), "region": region,
            "resources": [rule_arn], "detail": {}}


@dataclass
class ScheduleStats:
    invocations: int = 0
    errors: int = 0
    last_error: str = ""
    last_result: Any = None


@dataclass
class ScheduledFunction:
    """Invokes ``handler`` every ``period_s`` (the first time one period after
    ``start``, as a new EventBridge rule does) until stopped. An invocation
    that raises is logged and counted; the next one comes on time (EventBridge
    retries an asynchronous invocation, but a missed tick is made up by the
    next one anyway)."""

    name: str
    handler: Handler
    period_s: float
    region: str
    rule_arn: str
    stats: ScheduleStats = field(default_factory=ScheduleStats)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> ScheduledFunction:
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"schedule-{self.name}")
        self._thread.start()
        return self

    def _run(self) -> None:
        due = time.monotonic() + self.period_s
        while not self._stopping.wait(max(0.0, due - time.monotonic())):
            due += self.period_s
            self.invoke()

    def invoke(self) -> None:
        try:
            result = self.handler(scheduled_event(self.region, self.rule_arn),
                                  LambdaContext(self.name, self.region))
        except Exception as exc:  # a failed tick must not end the schedule
            log.exception("%s failed on its scheduled invocation", self.name)
            self.stats.errors += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
        else:
            self.stats.last_result = result
        self.stats.invocations += 1

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=15)


def start_schedules(functions: dict[str, Any], *, stage: str, region: str,
                    resolve: Callable[[str], Handler | None],
                    every_s: float | None = None) -> list[ScheduledFunction]:
    """One running ``ScheduledFunction`` per schedule of each template
    function (``LambdaSpec``s by name); ``resolve`` turns a spec's handler
    (``module:attribute``) into the callable, None when this build lacks it."""
    started: list[ScheduledFunction] = []
    try:
        for name, spec in functions.items():
            for index, expression in enumerate(schedules_of(spec.events, name)):
                period = rate_seconds(expression, name)
                handler = resolve(spec.handler)
                if handler is None:
                    continue
                full = f"smartiot-{stage}-{name}"
                rule = f"arn:aws:events:{region}:{ACCOUNT}:rule/{full}-schedule-{index + 1}"
                started.append(ScheduledFunction(full, handler, every_s or period, region,
                                                 rule).start())
                log.info("sandbox: %s runs every %.1f s (%s)", full, every_s or period,
                         expression)
    except BaseException:
        for schedule in started:
            schedule.stop()
        raise
    return started
