"""Starts and stops the whole sandbox, in order, and says where it is.

Start order follows the data: the AWS endpoint and the stage's resources, the
demo users and alert rules, the broker (with IoT Data's Publish, the IoT
Jobs device side moto lacks and the shadows on it), the IoT rules (into Kinesis, and the
devices' command answers into DynamoDB), the event
source mappings that feed the Lambda handlers, the REST API, and last the
fleet (so its first readings find everything listening). ``stop`` undoes it
in reverse; every part stops even when another fails to."""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.model.roles import Role
from plugins.aws.sandbox.answers_rule import CommandAnswersRule
from plugins.aws.sandbox.api import RunningApi, start_api
from plugins.aws.sandbox.event_sources import Handler, KinesisEventSource, SqsEventSource
from plugins.aws.sandbox.fleet import ORGANIZATION, start_demo_fleet
from plugins.aws.sandbox.jobs_data import JobsDataPlane
from plugins.aws.sandbox.moto_endpoint import MotoEndpoint
from plugins.aws.sandbox.mqtt import IotCoreStandIn
from plugins.aws.sandbox.publish_bridge import PublishBridge
from plugins.aws.sandbox.resources import StageResources, provision
from plugins.aws.sandbox.rule import TelemetryRule
from plugins.aws.sandbox.schedule import ScheduledFunction, start_schedules
from plugins.aws.sandbox.shadows import ShadowService
from plugins.aws.sandbox.users import DEMO_USERS, DemoUser, create_demo_users

log = logging.getLogger(__name__)

# the functions the sandbox feeds, by their names in serverless.yml
CONSUMER = "telemetryConsumer"
NOTIFIER = "notifications"


@dataclass(frozen=True)
class SandboxOptions:
    host: str = "127.0.0.1"
    region: str = "us-east-1"
    stage: str = "sandbox"
    aws_port: int = 5000  # moto's usual port
    api_port: int = 3000  # serverless-offline's
    mqtt_port: int = 1884  # 1883 is often a system mosquitto already
    ws_port: int = 9001  # the usual MQTT-over-WebSocket port
    devices: int = 8
    rate: float = 1.0  # readings per second per device
    # how often scheduled functions run (the alert ticker); None: the template's rate
    tick_s: float | None = None

    def __post_init__(self) -> None:
        from plugins.aws.sandbox.fleet import MAX_DEVICES

        if not 2 <= self.devices <= MAX_DEVICES:
            raise ValueError(f"--devices {self.devices} must be between 2 (a sensor and the "
                             f"pump whose bearing fails) and {MAX_DEVICES}")
        if not 0 < self.rate <= 10:
            raise ValueError(f"--rate {self.rate} must be above 0 and at most 10 readings a "
                             "second per device")
        if self.tick_s is not None and not 0 < self.tick_s <= 3600:
            raise ValueError(f"--tick-s {self.tick_s} must be above 0 and at most 3600 seconds")
        for name in ("aws_port", "api_port", "mqtt_port", "ws_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ValueError(f"--{name.replace('_', '-')} {port} is not a port (0-65535)")


@dataclass
class Sandbox:
    options: SandboxOptions
    moto: MotoEndpoint | None = None
    resources: StageResources | None = None
    users: list[DemoUser] = field(default_factory=list)
    broker: IotCoreStandIn | None = None
    rule: TelemetryRule | None = None
    answers_rule: CommandAnswersRule | None = None
    mappings: list[KinesisEventSource | SqsEventSource] = field(default_factory=list)
    schedules: list[ScheduledFunction] = field(default_factory=list)
    api: RunningApi | None = None
    fleet: Any = None  # simulator.api.RunningFleet
    jobs: JobsDataPlane | None = None
    missing: list[str] = field(default_factory=list)  # handlers this build lacks
    started_s: float = 0.0
    _stops: list[Callable[[], None]] = field(default_factory=list)

    def start(self) -> Sandbox:
        began = time.monotonic()
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        self.started_s = time.monotonic() - began
        return self

    def _start(self) -> None:
        from plugins.aws.backend import build_aws_backend_for
        from plugins.aws.settings import AwsSettings

        o = self.options
        _check_ports(o)
        self.moto = MotoEndpoint(o.aws_port, o.host).start()
        self._stops.append(self.moto.stop)
        _lambda_environment(self.moto.url, o)
        settings = AwsSettings(region=o.region, stage=o.stage, endpoint_url=self.moto.url)
        backend = build_aws_backend_for(settings)
        clients = backend.clients
        self.resources = provision(clients, settings)
        settings = replace(settings, user_pool_id=self.resources.user_pool_id,
                           user_pool_client_id=self.resources.user_pool_client_id)
        _lambda_resources(self.resources, self.moto.url)
        self.users = create_demo_users(clients.client("cognito-idp"), self.resources.user_pool_id)
        _default_rules(backend)
        _demo_subscription(backend, settings)

        self.broker = IotCoreStandIn(mqtt_port=o.mqtt_port, ws_port=o.ws_port, host=o.host)
        self.broker.start()
        self._stops.append(self.broker.stop)
        bridge = PublishBridge((self.broker.host, self.broker.mqtt_port)).start()
        self._stops.append(bridge.stop)
        # moto has no IoT Jobs device side: the stand-in answers devices' jobs
        # requests and rolls jobs out (docs/aws.md, "Jobs on aws-local")
        keys_dir = Path(tempfile.mkdtemp(prefix="smartiot-sandbox-keys-"))
        self._stops.append(lambda: shutil.rmtree(keys_dir, ignore_errors=True))
        trusted = backend.trusted_keys
        jobs = JobsDataPlane((self.broker.host, self.broker.mqtt_port), self.moto.url,
                             o.region, keys_dir=keys_dir,
                             trusted_pems=lambda: [k.public_pem for k in trusted.list()]
                             if trusted is not None else []).start()
        self._stops.append(jobs.stop)
        self.jobs = jobs
        shadows = ShadowService(clients.client("iot-data"), clients.client("iot"),
                                (self.broker.host, self.broker.mqtt_port)).start()
        self._stops.append(shadows.stop)
        self.rule = TelemetryRule(clients.client("kinesis"), self.resources.telemetry_stream,
                                  (self.broker.host, self.broker.mqtt_port)).start()
        self._stops.append(self.rule.stop)
        self.answers_rule = CommandAnswersRule(
            clients.dynamodb, settings.table("command-answers"),
            (self.broker.host, self.broker.mqtt_port)).start()
        self._stops.append(self.answers_rule.stop)

        consumer = self._function(CONSUMER)
        if consumer is not None:
            handler, events = consumer
            stream = _event(events, "stream")
            mapping = KinesisEventSource(
                clients.client("kinesis"), self.resources.telemetry_stream, handler,
                function_name=f"smartiot-{o.stage}-{CONSUMER}", region=o.region,
                batch_size=int(stream.get("batchSize", 100)),
                max_retries=int(stream.get("maximumRetryAttempts", 5)),
                starting_position=str(stream.get("startingPosition", "TRIM_HORIZON")),
                on_failure=self._destination(clients.client("sqs"), stream),
                bisect=bool(stream.get("bisectBatchOnFunctionError", False)),
                max_record_age_s=_age(stream.get("maximumRecordAgeInSeconds")),
                batch_window_s=float(stream.get("batchWindow", 0)))
            self._add_mapping(mapping.start())
        notifier = self._function(NOTIFIER)
        if notifier is not None:
            handler, events = notifier
            queue = SqsEventSource(
                clients.client("sqs"), self.resources.notifications_queue_url, handler,
                function_name=f"smartiot-{o.stage}-{NOTIFIER}", region=o.region,
                batch_size=int(_event(events, "sqs").get("batchSize", 10)))
            self._add_mapping(queue.start())
        # EventBridge's rules: the alert ticker, at the template's rate
        self.schedules = start_schedules(
            self.resources.functions, stage=o.stage, region=o.region, every_s=o.tick_s,
            resolve=lambda spec: _handler(spec, self.missing))
        for schedule in self.schedules:
            self._stops.append(schedule.stop)

        self.api = start_api(host=o.host, port=o.api_port, settings=settings)
        self._stops.append(self.api.stop)
        self.fleet = start_demo_fleet(self.broker.mqtt_url, o.devices, o.rate, backend.registry,
                                      trusted_key_paths=(keys_dir,))
        self._stops.append(self.fleet.stop)

    def _function(self, name: str) -> tuple[Handler, tuple[dict[str, Any], ...]] | None:
        """The handler of a template function and its events; None (and noted
        in ``missing``) when the template or this build lacks it."""
        assert self.resources is not None
        spec = self.resources.functions.get(name)
        if spec is None:
            log.warning("sandbox: serverless.yml declares no function %s", name)
            self.missing.append(f"serverless.yml: functions.{name}")
            return None
        handler = _handler(spec.handler, self.missing)
        return None if handler is None else (handler, spec.events)

    def _destination(self, sqs: Any, event: dict[str, Any]
                     ) -> Callable[[dict[str, Any]], None] | None:
        """The SQS on-failure destination of a stream event, as a sender."""
        assert self.resources is not None
        target = ((event.get("destinations") or {}).get("onFailure") or {}).get("arn")
        if not isinstance(target, dict) or "Fn::GetAtt" not in target:
            return None
        queue_url = self.resources.physical.get(str(target["Fn::GetAtt"][0]), "")
        if not queue_url.startswith("http"):
            return None

        def send(description: dict[str, Any]) -> None:
            sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(description))

        return send

    def _add_mapping(self, mapping: KinesisEventSource | SqsEventSource) -> None:
        self.mappings.append(mapping)
        self._stops.append(mapping.stop)

    def stop(self) -> None:
        while self._stops:
            stop = self._stops.pop()
            name = getattr(stop, "__qualname__", repr(stop))
            began = time.monotonic()
            try:
                stop()
            except Exception:  # the other parts must still stop
                log.exception("sandbox: stopping %s failed", name)
            log.debug("sandbox: %s took %.2f s", name, time.monotonic() - began)

    def info(self) -> dict[str, Any]:
        """What a console, a script or a person needs to use the sandbox."""
        assert self.moto and self.resources and self.broker and self.api
        r = self.resources
        return {
            "api_url": self.api.url,
            "endpoint_url": self.moto.url,
            "region": self.options.region,
            "stage": self.options.stage,
            "organization": ORGANIZATION,
            "user_pool_id": r.user_pool_id,
            "user_pool_client_id": r.user_pool_client_id,
            "identity_pool_id": r.identity_pool_id,
            "mqtt_url": self.broker.mqtt_url,
            "mqtt_ws_url": self.broker.ws_url,
            "telemetry_stream": r.telemetry_stream,
            "notifications_queue_url": r.notifications_queue_url,
            "firmware_bucket": r.firmware_bucket,
            "devices": list(self.fleet.device_ids) if self.fleet else [],
            "users": [user.as_dict() for user in self.users],
            "missing": list(self.missing),
            "schedules": {s.name: s.period_s for s in self.schedules},
            "not_created": dict(r.not_created),
            "pid": os.getpid(),
            "ready_s": round(self.started_s, 2),
        }


class PortInUse(OSError):
    """A port the sandbox was told to use is taken; names the part and the option."""


def _check_ports(options: SandboxOptions) -> None:
    """Before anything starts: a taken port is one clear message, not a part
    failing half-way through start-up."""
    from simulator.broker import port_is_free

    for option, port, what in (("--aws-port", options.aws_port, "the AWS endpoint"),
                               ("--api-port", options.api_port, "the REST API"),
                               ("--mqtt-port", options.mqtt_port, "MQTT"),
                               ("--ws-port", options.ws_port, "MQTT over WebSocket")):
        if port and not port_is_free(options.host, port):
            raise PortInUse(f"port {port} for {what} is in use (another sandbox?); choose "
                            f"another with {option}, or {option} 0 for any free port")


def _handler(spec: str, missing: list[str]) -> Handler | None:
    module, _, name = spec.partition(":")
    try:
        found: Handler = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        log.warning("sandbox: %s is not in this build; its events are not delivered", spec)
        missing.append(spec)
        return None
    return found


def _lambda_environment(endpoint_url: str, options: SandboxOptions) -> None:
    """The handlers run in this process: give them the variables Lambda and
    serverless.yml would, and dummy credentials, so nothing here can reach a
    real AWS account whatever the person's own AWS configuration is."""
    from plugins.aws.lambdas import environment as env

    os.environ.pop("AWS_PROFILE", None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "sandbox", "AWS_SECRET_ACCESS_KEY": "sandbox",
        "AWS_SESSION_TOKEN": "sandbox", "AWS_REGION": options.region,
        "AWS_DEFAULT_REGION": options.region,
        env.STAGE: options.stage, env.ENDPOINT_URL: endpoint_url,
        # Powertools: no X-Ray daemon here, and no CloudWatch to read the metrics
        # it would print on stdout (where --json promises one line only).
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
    })


def _age(value: Any) -> float | None:
    """``maximumRecordAgeInSeconds``; -1 (Lambda's "no limit") and absent are None."""
    return None if value is None or int(value) < 0 else float(value)


def _event(events: tuple[dict[str, Any], ...], kind: str) -> dict[str, Any]:
    """The settings of a function's first ``kind`` event (``stream``, ``sqs``)."""
    for event in events:
        found = event.get(kind)
        if isinstance(found, dict):
            return found
    return {}


def _lambda_resources(resources: StageResources, endpoint_url: str) -> None:
    """The functions' environment as serverless.yml declares it (with the
    created resources' ids), then the sandbox's endpoint. Every function runs
    in this one process, so they share it; the template gives each variable
    one value for every function that has it."""
    from plugins.aws.lambdas import environment as env

    for spec in resources.functions.values():
        os.environ.update(spec.environment)
    os.environ[env.ENDPOINT_URL] = endpoint_url

    values = {"NOTIFICATIONS_QUEUE_URL": resources.notifications_queue_url,
              "TELEMETRY_STREAM": resources.telemetry_stream,
              "NOTIFY_SENDER": resources.sender_email,
              "USER_POOL_ID": resources.user_pool_id,
              "USER_POOL_CLIENT_ID": resources.user_pool_client_id,
              "FIRMWARE_BUCKET": resources.firmware_bucket}
    for constant, value in values.items():
        name = getattr(env, constant, None)
        if isinstance(name, str):
            os.environ[name] = value


def _default_rules(backend: Any) -> None:
    """The default alert rules, added by the demo admin (audited), so the
    fleet's worn bearing raises an alert; a stage that has rules keeps them."""
    from core.model.roles import Actor
    from core.services.alerting.service import AlertService

    service = AlertService(backend.alerts, backend.audit, rules=backend.rules,
                           registry=backend.registry)
    admin = Actor(DEMO_USERS[Role.ADMIN], Role.ADMIN, ORGANIZATION)
    if not service.list_rules(admin):
        service.add_default_rules(admin)


def _demo_subscription(backend: Any, settings: Any) -> None:
    """The demo admin gets the demo organization's alert e-mail (SES on moto
    keeps what is sent), so the whole notification path runs."""
    from plugins.aws.notifications.subscriptions import Subscription, SubscriptionStore

    store = SubscriptionStore(backend.clients.dynamodb,
                              settings.table("notification-subscriptions"))
    store.put(Subscription(ORGANIZATION, f"{DEMO_USERS[Role.ADMIN]}@example.com",
                           created_by=DEMO_USERS[Role.ADMIN]))
