"""The sandbox runs the template's scheduled functions (plugins/aws/sandbox/
schedule.py): the alert ticker, declared in serverless.yml on
``rate(1 minute)``, is invoked with EventBridge's scheduled event and, on the
stage's tables on moto's server, marks a silent device offline — as it would
on AWS, and as the hub's housekeeping does."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest

from tests.integration.aws.conftest import AwsSandbox


def _template_functions(stage: str, region: str) -> dict[str, Any]:
    from plugins.aws.infra.template import Template

    return {name: type("Spec", (), {"handler": f"{f.module}:{f.attribute}", "events": f.events})
            for name, f in Template.load(stage, region).functions.items()}


def test_the_alert_ticker_is_the_templates_only_scheduled_function_at_one_minute() -> None:
    from plugins.aws.sandbox.schedule import rate_seconds, schedules_of

    functions = _template_functions("t", "eu-west-1")
    scheduled = {name: [rate_seconds(e, name) for e in schedules_of(spec.events, name)]
                 for name, spec in functions.items()}
    assert {name: rates for name, rates in scheduled.items() if rates} == {"alertTicker": [60.0]}
    assert functions["alertTicker"].handler == "plugins.aws.lambdas.alert_ticker:handler"


@pytest.mark.parametrize("expression, seconds", [("rate(1 minute)", 60.0),
                                                 ("rate(5 minutes)", 300.0),
                                                 ("rate(2 hours)", 7200.0)])
def test_rate_expressions_are_read_as_eventbridge_does(expression: str, seconds: float) -> None:
    from plugins.aws.sandbox.schedule import rate_seconds

    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize("expression", ["cron(0 12 * * ? *)", "rate(0 minutes)", "rate(1 week)"])
def test_a_schedule_the_sandbox_cannot_run_is_refused_naming_it(expression: str) -> None:
    from plugins.aws.sandbox.schedule import ScheduleError, start_schedules

    spec = type("Spec", (), {"handler": "m:h", "events": ({"schedule": expression},)})
    with pytest.raises(ScheduleError, match=r"functions\.ticker: schedule .*rate\(N"):
        start_schedules({"ticker": spec}, stage="s", region="eu-west-1",
                        resolve=lambda _: None)


def test_a_scheduled_function_gets_eventbridges_event_on_time_and_survives_a_failure() -> None:
    from plugins.aws.sandbox.schedule import start_schedules

    calls: list[tuple[dict[str, Any], Any]] = []

    def handler(event: dict[str, Any], context: Any) -> str:
        calls.append((event, context))
        if len(calls) == 1:
            raise RuntimeError("the first tick fails")
        return "ok"

    functions = _template_functions("s", "eu-west-1")
    schedules = start_schedules(functions, stage="s", region="eu-west-1", every_s=0.05,
                                resolve=lambda spec: handler if "alert_ticker" in spec else None)
    try:
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        for schedule in schedules:
            schedule.stop()
    (schedule,) = schedules
    assert schedule.name == "smartiot-s-alertTicker" and schedule.period_s == 0.05
    assert len(calls) >= 3, "the schedule stopped after a failed invocation"
    event, context = calls[1]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [
        "arn:aws:events:eu-west-1:123456789012:rule/smartiot-s-alertTicker-schedule-1"]
    assert event["region"] == "eu-west-1" and event["detail"] == {}
    assert context.function_name == "smartiot-s-alertTicker"
    assert schedule.stats.errors == 1 and "the first tick fails" in schedule.stats.last_error
    assert schedule.stats.last_result == "ok"


def test_the_sandboxs_ticker_marks_a_silent_device_offline_on_moto(
        aws: AwsSandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.model import Device, DeviceStatus
    from core.model.timeutil import utcnow
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.lambdas import environment as env
    from plugins.aws.sandbox.resources import provision
    from plugins.aws.sandbox.sandbox import _handler
    from plugins.aws.sandbox.schedule import start_schedules
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url)
    backend = build_aws_backend_for(settings)
    resources = provision(backend.clients, settings)
    for name, value in resources.functions["alertTicker"].environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(env.ENDPOINT_URL, aws.endpoint_url)
    monkeypatch.setenv(env.REGION, aws.region)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    now = utcnow()
    backend.registry.upsert(Device("pump-silent", device_type="pump", status=DeviceStatus.ONLINE,
                                   organization="acme",
                                   last_seen=now - timedelta(minutes=5)))
    backend.registry.upsert(Device("pump-talking", device_type="pump", status=DeviceStatus.ONLINE,
                                   organization="acme",
                                   last_seen=now + timedelta(minutes=5)))
    missing: list[str] = []
    schedules = start_schedules(resources.functions, stage=aws.stage, region=aws.region,
                                every_s=0.2, resolve=lambda spec: _handler(spec, missing))
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            silent = backend.registry.get("pump-silent")
            if silent is not None and silent.status is DeviceStatus.OFFLINE:
                break
            time.sleep(0.1)
    finally:
        for schedule in schedules:
            schedule.stop()
    assert missing == []
    (ticker,) = schedules
    assert ticker.stats.errors == 0, ticker.stats.last_error
    assert ticker.stats.invocations >= 1
    assert backend.registry.get("pump-silent").status is DeviceStatus.OFFLINE
    assert backend.registry.get("pump-talking").status is DeviceStatus.ONLINE
