"""AWS failures become messages a person can act on (plugins/aws/errors.py):
each names the resource and what to do, reaches the CLI without a
traceback, and what the REST API answers keeps a queued change queued.

moto's server produces the missing table and bucket and the network cut (a
closed port, a server that never answers). moto neither throttles, checks
IAM policies nor expires credentials, so those answers are injected on
botocore's ``before-send`` event of the backend's real client: the answer
still goes through botocore's parser, its retries and the translation, as
AWS's would (listed in docs/aws.md, Gaps).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import (
    AccessNotGranted,
    PermissionDenied,
    ResourceMissing,
    ServiceThrottled,
    ServiceUnavailable,
    ServiceUnreachable,
    SignInExpired,
)
from core.model import Alert, Device, Severity
from tests.integration.aws.conftest import AwsSandbox

ACCOUNT = "123456789012"


def _settings(aws: AwsSandbox, **extra: Any) -> Any:
    from plugins.aws.settings import AwsSettings

    values: dict[str, Any] = {"region": aws.region, "stage": aws.stage,
                              "endpoint_url": aws.endpoint_url, "max_attempts": 2,
                              "profile_name": "aws-moto"}
    values.update(extra)
    return AwsSettings(**values)


DEVICE_TABLES = ("devices", "organizations")


def _backend(aws: AwsSandbox, *, tables: tuple[str, ...] | None = DEVICE_TABLES,
             **extra: Any) -> Any:
    """The aws backend on this test's stage with ``tables`` (None: every one)."""
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES, create_tables

    settings = _settings(aws, **extra)
    backend = build_aws_backend_for(settings)
    if tables != ():
        create_tables(backend.clients.dynamodb, settings,
                      tuple(t for t in TABLES if tables is None or t.role in tables))
    return backend


class _Body:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _dynamodb_answer(status: int, code: str, message: str) -> Any:
    from botocore.awsrequest import AWSResponse

    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{code}",
                       "message": message}).encode()
    return AWSResponse("https://dynamodb", status, {"x-amzn-ErrorType": code,
                                                    "Content-Type": "application/x-amz-json-1.0"},
                       _Body(body))


def _inject(client: Any, event: str, answer: Callable[[], Any | None]) -> list[str]:
    """Answer ``event`` ("before-send.dynamodb.PutItem") with ``answer()``
    (None: the request goes on to moto); returns the requests seen."""
    seen: list[str] = []

    def handler(request: Any, **_: Any) -> Any:
        seen.append(str(request.url))
        return answer()

    client.meta.events.register(event, handler)
    return seen


# ---------------------------------------------------------------- missing resources
def test_a_missing_table_names_it_the_region_and_the_fix(aws: AwsSandbox) -> None:
    from botocore.exceptions import ClientError

    backend = _backend(aws, tables=())
    with pytest.raises(ResourceMissing) as raised:
        backend.registry.get("pump-1")
    assert str(raised.value) == (
        f"table iot-devices-{aws.stage} does not exist in {aws.endpoint_url} (stage "
        f"{aws.stage}): start the sandbox (smartiot aws sandbox) or run "
        "`smartiot --profile aws-moto aws tables`")
    # still botocore's exception for code that handles it on purpose
    assert isinstance(raised.value, ClientError)
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert isinstance(raised.value, backend.clients.dynamodb.exceptions.ResourceNotFoundException)


def test_a_missing_table_on_aws_says_to_deploy_the_stack(aws: AwsSandbox) -> None:
    """Against AWS (no endpoint_url) the fix is the stack of the stage; the
    answer is the one DynamoDB gives for a table that is not there."""
    from plugins.aws.clients import clients_for

    settings = _settings(aws, endpoint_url="", stage="dev", profile_name="aws-dev")
    client = clients_for(settings).dynamodb
    _inject(client, "before-send.dynamodb.GetItem", lambda: _dynamodb_answer(
        400, "ResourceNotFoundException", "Requested resource not found"))
    with pytest.raises(ResourceMissing, match=(
            r"^table iot-devices-dev does not exist in eu-west-1: deploy the stack of stage dev "
            r"\(docs/aws.md#deploying\) or run `smartiot --profile aws-dev aws tables`$")):
        client.get_item(TableName="iot-devices-dev", Key={"device_id": {"S": "pump-1"}})


def test_a_missing_bucket_names_it(aws: AwsSandbox) -> None:
    backend = _backend(aws, tables=())
    with pytest.raises(ResourceMissing) as raised:
        backend.firmware.list()
    assert str(raised.value) == (
        f"bucket iot-firmware-{aws.stage} does not exist in {aws.endpoint_url} (stage "
        f"{aws.stage}): start the sandbox (smartiot aws sandbox), or point the profile at the "
        "stage that has it")
    assert raised.value.resource == f"bucket iot-firmware-{aws.stage}"
    assert raised.value.service == "S3"


def test_a_missing_record_is_still_the_adapters_not_found(aws: AwsSandbox) -> None:
    """Only the profile's resources are translated: an unknown device in an
    existing table stays NotFound, as the pages expect."""
    from core.errors import NotFound

    backend = _backend(aws)
    with pytest.raises(NotFound) as raised:
        backend.registry.get("pump-404")
    assert not isinstance(raised.value, ServiceUnavailable)


# ---------------------------------------------------------------- access and sign-in
def test_access_denied_names_the_action_the_resource_and_who_can_grant_it(
        aws: AwsSandbox) -> None:
    backend = _backend(aws)
    table = f"iot-devices-{aws.stage}"
    arn = f"arn:aws:dynamodb:{aws.region}:{ACCOUNT}:table/{table}"
    _inject(backend.clients.dynamodb, "before-send.dynamodb.GetItem", lambda: _dynamodb_answer(
        400, "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/fleet-tech/alice is not authorized to "
        f"perform: dynamodb:GetItem on resource: {arn} because no identity-based policy allows "
        "the dynamodb:GetItem action"))
    with pytest.raises(AccessNotGranted) as raised:
        backend.registry.get("pump-1")
    assert str(raised.value) == (
        f"AWS refused dynamodb:GetItem on table {table} to role fleet-tech: an administrator "
        f"of the account can grant it by allowing dynamodb:GetItem on {arn} in the IAM policy "
        "of role fleet-tech (docs/aws.md#iam-roles)")
    assert isinstance(raised.value, PermissionDenied)  # pages show it as a refusal


def test_access_denied_without_iam_words_names_the_operation_and_the_profile(
        aws: AwsSandbox) -> None:
    backend = _backend(aws, aws_profile="")
    _inject(backend.clients.dynamodb, "before-send.dynamodb.GetItem", lambda: _dynamodb_answer(
        400, "AccessDeniedException", "Access denied"))
    with pytest.raises(AccessNotGranted, match=(
            rf"^AWS refused dynamodb:GetItem on table iot-devices-{aws.stage} to the credentials "
            r"in use: an administrator of the account can grant it by allowing dynamodb:GetItem "
            r"in the IAM policy of the credentials in use \(docs/aws.md#iam-roles\)$")):
        backend.registry.get("pump-1")


@pytest.mark.parametrize("code", ["ExpiredTokenException", "ExpiredToken"])
def test_expired_credentials_say_sign_in_again(aws: AwsSandbox, code: str) -> None:
    backend = _backend(aws, aws_profile="")
    seen = _inject(backend.clients.dynamodb, "before-send.dynamodb.GetItem",
                   lambda: _dynamodb_answer(400, code, "The security token included in the "
                                                       "request is expired"))
    with pytest.raises(SignInExpired) as raised:
        backend.registry.get("pump-1")
    assert str(raised.value) == (
        "your sign-in has expired — sign in again (renew the AWS credentials boto3 finds, e.g. "
        f"aws sso login); DynamoDB refused GetItem on table iot-devices-{aws.stage} with {code}")
    assert len(seen) == 1  # not retried: it cannot succeed until the person signs in


# ---------------------------------------------------------------- throttling
def test_throttling_is_retried_with_backoff_and_then_succeeds(aws: AwsSandbox) -> None:
    backend = _backend(aws, max_attempts=3)
    backend.registry.upsert_many([Device("pump-1", device_type="pump", organization="acme")])
    answers = [_dynamodb_answer(400, "ProvisionedThroughputExceededException", "slow down")]
    seen = _inject(backend.clients.dynamodb, "before-send.dynamodb.GetItem",
                   lambda: answers.pop() if answers else None)
    assert backend.registry.get("pump-1").device_id == "pump-1"
    assert len(seen) == 2  # the throttled attempt, then moto's answer


def test_throttling_that_outlasts_the_retries_names_the_service_and_the_table(
        aws: AwsSandbox) -> None:
    from botocore.exceptions import ClientError

    backend = _backend(aws)  # 2 attempts
    seen = _inject(backend.clients.dynamodb, "before-send.dynamodb.GetItem",
                   lambda: _dynamodb_answer(400, "ProvisionedThroughputExceededException",
                                            "The level of configured provisioned throughput "
                                            "for the table was exceeded."))
    with pytest.raises(ServiceThrottled) as raised:
        backend.registry.get("pump-1")
    assert str(raised.value) == (
        f"AWS is throttling DynamoDB requests for table iot-devices-{aws.stage} (2 attempts, "
        "standard retries); nothing was changed: try again in a moment")
    assert len(seen) == 2
    assert raised.value.retry_after_s
    # the stream consumer sorts transient failures by botocore's code: still there
    assert isinstance(raised.value, ClientError)


def test_the_profile_chooses_adaptive_retries_and_the_attempts(tmp_path: Path) -> None:
    from core.config import load_config
    from core.errors import ConfigError
    from plugins.aws.clients import clients_for
    from plugins.aws.settings import AwsSettings

    path = tmp_path / "config.toml"
    path.write_text('profile = "aws-dev"\n[profiles.aws-dev]\nregion = "eu-west-1"\n'
                    'aws_retry_mode = "adaptive"\naws_max_attempts = 7\n')
    settings = AwsSettings.from_profile(load_config(path, tmp_path).profile)
    assert (settings.retry_mode, settings.max_attempts, settings.profile_name) == (
        "adaptive", 7, "aws-dev")
    retries = clients_for(settings).dynamodb.meta.config.retries
    assert retries["mode"] == "adaptive" and retries["total_max_attempts"] == 7
    default = clients_for(AwsSettings(region="eu-west-1")).client("s3").meta.config.retries
    assert default["mode"] == "standard" and default["total_max_attempts"] == 5

    path.write_text('[profiles.aws-dev]\nregion = "eu-west-1"\naws_retry_mode = "fast"\n')
    with pytest.raises(ConfigError, match=r"aws_retry_mode' must be \"standard\" or "
                                          r"\"adaptive\""):
        load_config(path, tmp_path)
    path.write_text('[profiles.aws-dev]\nregion = "eu-west-1"\naws_max_attempts = "many"\n')
    with pytest.raises(ConfigError, match="aws_max_attempts' must be a whole number"):
        load_config(path, tmp_path)


# ---------------------------------------------------------------- the network
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_network_cut_names_the_endpoint_and_the_service(aws: AwsSandbox) -> None:
    from botocore.exceptions import EndpointConnectionError

    endpoint = f"http://127.0.0.1:{_closed_port()}"
    backend = _backend(aws, tables=(), endpoint_url=endpoint, max_attempts=1)
    with pytest.raises(ServiceUnreachable) as raised:
        backend.registry.get("pump-1")
    assert str(raised.value) == (
        f"cannot reach {endpoint} (DynamoDB) for table iot-devices-{aws.stage}: check the "
        "network connection (and that the sandbox runs: smartiot aws sandbox), then try again")
    assert isinstance(raised.value, EndpointConnectionError)


def test_an_answer_that_never_comes_is_a_read_timeout_naming_the_endpoint(
        aws: AwsSandbox) -> None:
    """A server that accepts and stays silent (a half-open link): botocore's
    read timeout, shortened here, becomes the same kind of error, saying the
    request may have been applied."""
    from botocore.config import Config

    from plugins.aws import errors
    from plugins.aws.clients import clients_for

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        silent.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
    settings = _settings(aws, endpoint_url=endpoint)
    session = clients_for(settings)._session
    client = session.client("dynamodb", endpoint_url=endpoint, config=Config(
        read_timeout=0.3, retries={"mode": "standard", "max_attempts": 1}))
    errors.install(client, settings)
    try:
        with pytest.raises(ServiceUnreachable, match=(
                rf"^cannot reach {endpoint} \(DynamoDB\) for table iot-devices-x: .* \(the "
                r"request was sent: look whether a change was applied first\)$")):
            client.put_item(TableName="iot-devices-x", Item={"device_id": {"S": "p"}})
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        silent.close()


# ---------------------------------------------------------------- the CLI
def test_the_cli_on_a_stage_without_tables_prints_the_table_and_the_fix(
        aws: AwsSandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'profile = "aws-moto"\n[profiles.aws-moto]\nregion = "{aws.region}"\n'
                      f'endpoint_url = "{aws.endpoint_url}"\nstage = "{aws.stage}"\n')
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(tmp_path / "data"))
    code = main(["--config", str(config), "devices", "list"])
    err = capsys.readouterr().err
    assert code != 0
    assert f"table iot-devices-{aws.stage} does not exist" in err
    assert "`smartiot --profile aws-moto aws tables`" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- through the REST API
@pytest.fixture
def api_on_aws(aws: AwsSandbox, tmp_path: Path) -> Iterator[tuple[Any, str, Any]]:
    """The REST API over an aws backend (tables on moto), served over HTTP."""
    from plugins.api.app import make_handler
    from plugins.api.auth import TokenSigner
    from plugins.api.wiring import build_api_services
    from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread

    backend = _backend(aws, tables=None)
    backend.registry.upsert_many([Device("pump-1", device_type="pump", organization="acme")])
    services = build_api_services(backend)
    tokens = TokenSigner.from_dir(tmp_path / "api")
    server = serve(ApiWsgiApp(make_handler(lambda: services), tokens), "127.0.0.1", 0)
    serve_in_thread(server)
    try:
        yield backend, f"http://127.0.0.1:{server.server_port}", tokens
    finally:
        server.shutdown()
        server.server_close()


def test_a_throttled_acknowledgement_through_the_api_stays_queued_and_is_applied_once(
        api_on_aws: tuple[Any, str, Any], tmp_path: Path) -> None:
    """AWS throttles the backend behind the API: the API answers 503 naming
    the table, the console's outbox keeps the acknowledgement and sends it
    again once AWS lets it through; it is applied once."""
    from core.model.roles import Role
    from plugins.api.client.outbox import ActionQueued, Outbox
    from plugins.api.client.transport import HttpTransport, StaticToken

    backend, url, tokens = api_on_aws
    alert = Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5)
    backend.alerts.add(alert)
    throttling = [True]
    _inject(backend.clients.dynamodb, "before-send.dynamodb.TransactWriteItems",
            lambda: _dynamodb_answer(400, "ThrottlingException", "Rate exceeded")
            if throttling[0] else None)
    transport = HttpTransport(url, StaticToken(tokens.issue("sam", Role.SUPPORT, "acme")),
                              timeout_s=10)
    outbox = Outbox(tmp_path / "console" / "outbox.sqlite", transport, lambda: "sam",
                    base_s=0.05, cap_s=0.2)
    transport.outbox = outbox
    with pytest.raises(ActionQueued) as raised:
        transport.post(f"/alerts/{alert.alert_id}/acknowledge", {"comment": "on it"})
    table = f"iot-alerts-{aws_stage(backend)}"
    assert f"AWS is throttling DynamoDB requests for tables {table}" in str(raised.value)
    status = outbox.status()
    assert status.pending == 1
    assert status.problem == (f"AWS is throttling DynamoDB requests for tables {table}, "
                              f"iot-alert-events-{aws_stage(backend)}; the action is kept and "
                              "will be retried")
    assert backend.alerts.get(alert.alert_id).state.value == "active"

    throttling[0] = False
    outbox.send_now()
    assert outbox.send_due() >= 0
    assert outbox.status().pending == 0
    stored = backend.alerts.get(alert.alert_id)
    assert stored.state.value == "acknowledged" and stored.version == alert.version + 1
    outbox.close()


def test_a_missing_table_behind_the_api_is_503_naming_it(
        api_on_aws: tuple[Any, str, Any]) -> None:
    from core.model.roles import Role
    from plugins.api.client.transport import HttpTransport, StaticToken

    backend, url, tokens = api_on_aws
    backend.clients.dynamodb.delete_table(TableName=f"iot-alerts-{aws_stage(backend)}")
    transport = HttpTransport(url, StaticToken(tokens.issue("sam", Role.SUPPORT, "acme")),
                              retries=0)
    with pytest.raises(ServiceUnavailable, match=rf"iot-alerts-{aws_stage(backend)} does not "
                                                 r"exist in .*aws tables"):
        transport.get("/alerts")


def aws_stage(backend: Any) -> str:
    return str(backend.clients.settings.stage)


def test_a_refused_token_through_the_api_says_sign_in_again_and_keeps_the_change(
        api_on_aws: tuple[Any, str, Any], tmp_path: Path) -> None:
    """API Gateway's 401 (the ID token expired and could not be renewed):
    the person reads that the sign-in expired; a change waits for the sign-in."""
    from plugins.api.client.errors import SignInRequired
    from plugins.api.client.outbox import ActionQueued, Outbox
    from plugins.api.client.transport import HttpTransport, StaticToken

    backend, url, _tokens = api_on_aws
    alert = Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5)
    backend.alerts.add(alert)
    transport = HttpTransport(url, StaticToken("an.expired.token"), retries=0)
    with pytest.raises(SignInRequired, match=rf"^your sign-in has expired — sign in again "
                                             rf"\({url} answered: .+\)$") as raised:
        transport.get("/alerts")
    assert isinstance(raised.value, SignInExpired)
    transport.outbox = Outbox(tmp_path / "console" / "outbox.sqlite", transport, lambda: "sam")
    with pytest.raises(ActionQueued, match="is sent once you sign in again"):
        transport.post(f"/alerts/{alert.alert_id}/acknowledge", {"comment": "on it"})
    status = transport.outbox.status()
    assert status.pending == 1 and status.problem.startswith("Sign in again")
    assert backend.alerts.get(alert.alert_id).state.value == "active"
    transport.outbox.close()


def test_access_denied_behind_the_api_is_503_naming_the_role_and_action(
        api_on_aws: tuple[Any, str, Any]) -> None:
    """The API's own role lacks a permission: not the caller's refusal (403),
    the backend's trouble (503), so a queued change is kept and sent again."""
    from core.model.roles import Role
    from plugins.api.client.transport import HttpTransport, StaticToken

    backend, url, tokens = api_on_aws
    stage = aws_stage(backend)
    _inject(backend.clients.dynamodb, "before-send.dynamodb.Query", lambda: _dynamodb_answer(
        400, "AccessDeniedException",
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/iot-api-{stage}/fn is not authorized to "
        f"perform: dynamodb:Query on resource: arn:aws:dynamodb:eu-west-1:{ACCOUNT}:table/"
        f"iot-devices-{stage}/index/OrganizationIndex"))
    transport = HttpTransport(url, StaticToken(tokens.issue("sam", Role.SUPPORT, "acme")),
                              retries=0)
    with pytest.raises(ServiceUnavailable, match=(
            rf"^AWS refused dynamodb:Query on table iot-devices-{stage} to role iot-api-{stage}: "
            r"an administrator of the account can grant it .* in the IAM policy of role "
            rf"iot-api-{stage} \(docs/aws.md#iam-roles\)$")):
        transport.get("/devices")


@pytest.mark.parametrize("service, call, named", [
    ("kinesis", lambda c, s: c.describe_stream(StreamName=f"iot-telemetry-{s}"),
     "stream iot-telemetry-{stage}"),
    ("sqs", lambda c, s: c.get_queue_url(QueueName=f"iot-notifications-{s}"),
     "queue iot-notifications-{stage}"),
    ("cognito-idp", lambda c, s: c.describe_user_pool(UserPoolId="eu-west-1_nothere"),
     "user pool eu-west-1_nothere"),
])
def test_a_missing_stream_queue_or_user_pool_names_it(
        aws: AwsSandbox, service: str, call: Callable[[Any, str], Any], named: str) -> None:
    """moto's own answers for resources that are not there."""
    from plugins.aws.clients import clients_for

    client = clients_for(_settings(aws)).client(service)
    with pytest.raises(ResourceMissing) as raised:
        call(client, aws.stage)
    assert str(raised.value).startswith(
        f"{named.format(stage=aws.stage)} does not exist in {aws.endpoint_url} (stage "
        f"{aws.stage}): start the sandbox (smartiot aws sandbox), or point the profile at the "
        "stage that has it")


def test_an_expired_cognito_access_token_says_sign_in_again(aws: AwsSandbox) -> None:
    from botocore.awsrequest import AWSResponse

    from plugins.aws.clients import clients_for

    client = clients_for(_settings(aws)).client("cognito-idp")
    body = json.dumps({"__type": "NotAuthorizedException",
                       "message": "Access Token has expired"}).encode()
    _inject(client, "before-send.cognito-identity-provider.GetUser", lambda: AWSResponse(
        "https://cognito-idp", 400, {"x-amzn-ErrorType": "NotAuthorizedException",
                                     "Content-Type": "application/x-amz-json-1.1"},
        _Body(body)))
    with pytest.raises(SignInExpired, match=r"^your sign-in has expired — sign in again .*"
                                            r"Cognito Identity Provider refused GetUser"):
        client.get_user(AccessToken="expired")
