"""AWS failures as errors a person can act on, installed once on every boto3
client the backend makes (plugins/aws/clients.py).

botocore's own messages name an operation and an error code ("An error
occurred (ResourceNotFoundException) when calling the Query operation:
Requested resource not found"); the technician at the console needs the
resource and what to do about it. Five kinds are translated here, the rest
pass through as botocore raised them:

- expired or unknown credentials -> :class:`core.errors.SignInExpired`
  ("your sign-in has expired — sign in again");
- access denied -> :class:`core.errors.AccessNotGranted`, naming the action,
  the resource and the role or user whose IAM policy has to allow it;
- a missing table, bucket, stream, queue or user pool ->
  :class:`core.errors.ResourceMissing`, naming it and how to create it;
- throttling that outlasted botocore's retries ->
  :class:`core.errors.ServiceThrottled`;
- no connection, a connect or read timeout ->
  :class:`core.errors.ServiceUnreachable` ("cannot reach <endpoint> (<service>)").

Why botocore events and not a wrapper around each adapter's calls: the
events see every call of every adapter (present and future) with its
parameters, so the resource can be named without the adapters' help.
``before-parameter-build`` keeps the call's parameters in its request
context; ``after-call`` sees an error answer once the retries are spent (the
retries run inside the endpoint); ``after-call-error`` sees what was raised
instead of an answer. A handler that raises replaces botocore's exception.

The raised class derives from both the core error and the exception botocore
would have raised (the modeled ``ResourceNotFoundException``, ``ClientError``,
``EndpointConnectionError`` ...), with ``response`` intact: an adapter that
catches one of those on purpose (a missing IoT thing is a ``NotFound``, a
stream consumer sorts transient from permanent by code) keeps working, and
everything else reaches the CLI, the console and the REST API as the core
error with its message.
"""

from __future__ import annotations

import re
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from core.errors import (
    AccessNotGranted,
    ResourceMissing,
    ServiceThrottled,
    ServiceUnreachable,
    SignInExpired,
    SmartIotError,
)
from plugins.aws.settings import AwsSettings

EXPIRED_CODES = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired",
                           "TokenRefreshRequired"})
UNKNOWN_CREDENTIAL_CODES = frozenset({"UnrecognizedClientException", "InvalidClientTokenId",
                                      "InvalidAccessKeyId"})
DENIED_CODES = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation",
                          "AuthorizationErrorException", "AuthorizationError"})
THROTTLED_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "RequestLimitExceeded", "BandwidthLimitExceeded", "SlowDown", "RequestThrottled",
    "AWS.SimpleQueueService.RequestThrottled", "KMSThrottlingException",
    "EC2ThrottledException", "PriorRequestNotComplete", "ThrottlingError"})
# What "does not exist" means per service: only where the code can only be
# about the profile's resources, never about one record (a missing IoT thing
# or shadow is the adapters' NotFound, and stays theirs).
MISSING_CODES: dict[str, frozenset[str]] = {
    "dynamodb": frozenset({"ResourceNotFoundException"}),
    "s3": frozenset({"NoSuchBucket"}),
    "kinesis": frozenset({"ResourceNotFoundException"}),
    "sqs": frozenset({"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}),
    "cognito-idp": frozenset({"ResourceNotFoundException"}),
    "timestream-write": frozenset({"ResourceNotFoundException"}),
    "timestream-query": frozenset({"ResourceNotFoundException"}),
    "sns": frozenset({"NotFound", "NotFoundException"}),
}
UNREACHABLE = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError,
               ConnectionClosedError)

_PARAMS = "smartiot_params"
# IAM's wording: "User: arn:... is not authorized to perform: dynamodb:PutItem
# on resource: arn:aws:dynamodb:...:table/iot-devices-dev because ..."
_DENIAL = re.compile(r"User: (?P<principal>\S+) is not authorized to perform: "
                     r"(?P<action>[\w-]+:\w+)(?: on resource: (?P<resource>[^\s,]+))?")


def install(client: Any, settings: AwsSettings) -> None:
    """Translate this client's failures (its own event emitter: other clients,
    and boto3's defaults, are left alone)."""
    translator = _Translator(client, settings)
    events = client.meta.events
    events.register("before-parameter-build", _keep_params,
                    unique_id="smartiot-errors-params")
    events.register("after-call", translator.after_call, unique_id="smartiot-errors-answer")
    events.register("after-call-error", translator.after_error,
                    unique_id="smartiot-errors-raised")


def _keep_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    context[_PARAMS] = dict(params)


class _Translator:
    def __init__(self, client: Any, settings: AwsSettings) -> None:
        self.settings = settings
        model = client.meta.service_model
        self.service = str(model.service_name)  # "dynamodb", "s3", "cognito-idp"
        self.service_name = str(model.service_id)  # "DynamoDB", "S3", ...
        self.endpoint = str(client.meta.endpoint_url)
        self.exceptions = client.exceptions
        self.prefix = str(model.signing_name or model.endpoint_prefix)  # IAM's "dynamodb:"

    # ------------------------------------------------------------ botocore events
    def after_call(self, http_response: Any, parsed: dict[str, Any], model: Any,
                   context: dict[str, Any], **_: Any) -> None:
        if http_response.status_code < 300:
            return
        error = parsed.get("Error", {}) or {}
        code = str(context.get("error_code_override") or error.get("Code") or "")
        message = str(error.get("Message") or "")
        params = context.get(_PARAMS) or {}
        translated = self.translate(code, message, model.name, params, parsed)
        if translated is None:
            return
        core_class, text, fields = translated
        modeled: type[ClientError] = self.exceptions.from_code(code)
        raise _combined(core_class, modeled, text, fields,
                        lambda exc: modeled.__init__(exc, parsed, model.name))

    def after_error(self, exception: Exception, context: dict[str, Any], **_: Any) -> None:
        params = context.get(_PARAMS) or {}
        resource = describe_resource(self.service, params)
        for_what = f" for {resource}" if resource else ""
        if isinstance(exception, UNREACHABLE):
            reason = f"cannot reach {self.endpoint} ({self.service_name}){for_what}"
            advice = ("check the network connection"
                      + (" (and that the sandbox runs: smartiot aws sandbox)"
                         if self.settings.endpoint_url else "")
                      + ", then try again")
            if isinstance(exception, (ReadTimeoutError, ConnectionClosedError)):
                advice += " (the request was sent: look whether a change was applied first)"
            fields = {"reason": reason, "service": self.service_name, "resource": resource}
            raise _combined(ServiceUnreachable, type(exception), f"{reason}: {advice}", fields,
                            lambda exc: type(exception).__init__(
                                exc, **getattr(exception, "kwargs", {})))
        if isinstance(exception, NoCredentialsError):
            text = (f"no AWS credentials for {self.service_name}{for_what}: sign in "
                    f"({self._sign_in_hint()}) or set the profile's aws_profile")
            raise _combined(SignInExpired, NoCredentialsError, text, {},
                            lambda exc: NoCredentialsError.__init__(exc))

    # ------------------------------------------------------------ the messages
    def translate(self, code: str, message: str, operation: str, params: dict[str, Any],
                  parsed: dict[str, Any]
                  ) -> tuple[type[SmartIotError], str, dict[str, Any]] | None:
        resource = describe_resource(self.service, params)
        what = resource or f"{self.service_name} {operation}"
        if code in EXPIRED_CODES or (code == "NotAuthorizedException"
                                     and "expired" in message.lower()):
            return SignInExpired, (
                f"your sign-in has expired — sign in again ({self._sign_in_hint()}); "
                f"{self.service_name} refused {operation} on {what} with {code}"), {}
        if code in UNKNOWN_CREDENTIAL_CODES:
            return SignInExpired, (
                f"AWS does not accept the credentials in use ({code}) for {what}: sign in "
                f"again ({self._sign_in_hint()}) or check the profile's aws_profile"), {}
        if code in DENIED_CODES:
            return AccessNotGranted, self._denied(operation, what, message), {}
        if code in MISSING_CODES.get(self.service, frozenset()):
            missing = resource or f"the resource {operation} needs"
            reason = f"{missing} does not exist in {self._where()}"
            return ResourceMissing, f"{reason}: {self._create_hint()}", {
                "reason": reason, "service": self.service_name, "resource": resource}
        if code in THROTTLED_CODES:
            attempts = (parsed.get("ResponseMetadata") or {}).get("RetryAttempts", 0) + 1
            reason = f"AWS is throttling {self.service_name} requests for {what}"
            return ServiceThrottled, (
                f"{reason} ({attempts} attempts, {self.settings.retry_mode} retries); nothing "
                "was changed: try again in a moment"), {
                "reason": reason, "service": self.service_name, "resource": resource,
                "retry_after_s": 5.0}
        return None

    def _denied(self, operation: str, what: str, message: str) -> str:
        found = _DENIAL.search(message)
        action = found.group("action") if found else f"{self.prefix}:{operation}"
        arn = (found.group("resource") if found else None) or ""
        principal = found.group("principal") if found else ""
        who = principal_name(principal) if principal else (
            f"the credentials of AWS profile {self.settings.aws_profile}"
            if self.settings.aws_profile else "the credentials in use")
        on = f" on {arn}" if arn else ""
        return (f"AWS refused {action} on {what} to {who}: an administrator of the account "
                f"can grant it by allowing {action}{on} in the IAM policy of {who} "
                "(docs/aws.md#iam-roles)")

    def _where(self) -> str:
        if self.settings.endpoint_url:
            return f"{self.settings.endpoint_url} (stage {self.settings.stage})"
        return self.settings.region

    def _create_hint(self) -> str:
        profile = self.settings.profile_name or "<profile>"
        if self.settings.endpoint_url:
            deploy = "start the sandbox (smartiot aws sandbox)"
        else:
            deploy = f"deploy the stack of stage {self.settings.stage} (docs/aws.md#deploying)"
        if self.service == "dynamodb":
            return f"{deploy} or run `smartiot --profile {profile} aws tables`"
        return f"{deploy}, or point the profile at the stage that has it"

    def _sign_in_hint(self) -> str:
        if self.settings.aws_profile:
            return f"aws sso login --profile {self.settings.aws_profile}"
        return "renew the AWS credentials boto3 finds, e.g. aws sso login"


def describe_resource(service: str, params: dict[str, Any]) -> str:
    """The resource a call is about, in the words the docs use ("table
    iot-devices-dev", "bucket iot-firmware-dev"); empty when unknown."""
    def first(*keys: str) -> str:
        for key in keys:
            value = params.get(key)
            if isinstance(value, str) and value:
                return value
        return ""

    if service == "dynamodb":
        names = [first("TableName")] if first("TableName") else []
        names += [str(name) for name in params.get("RequestItems") or {}]
        for item in params.get("TransactItems") or []:
            for part in item.values() if isinstance(item, dict) else ():
                if isinstance(part, dict) and part.get("TableName"):
                    names.append(str(part["TableName"]))
        names = list(dict.fromkeys(names))
        return f"table{'s' if len(names) > 1 else ''} {', '.join(names)}" if names else ""
    if service == "s3":
        return f"bucket {first('Bucket')}" if first("Bucket") else ""
    if service == "kinesis":
        name = first("StreamName", "StreamARN")
        return f"stream {name}" if name else ""
    if service == "sqs":
        name = first("QueueUrl", "QueueName")
        return f"queue {name}" if name else ""
    if service in ("cognito-idp", "cognito-identity"):
        name = first("UserPoolId", "IdentityPoolId")
        kind = "user pool" if first("UserPoolId") else "identity pool"
        return f"{kind} {name}" if name else ""
    if service.startswith("timestream"):
        database, table = first("DatabaseName"), first("TableName")
        if database and table:
            return f"table {database}.{table}"
        return f"database {database}" if database else ""
    if service == "sns":
        return f"topic {first('TopicArn')}" if first("TopicArn") else ""
    if service in ("iot", "iot-data", "iot-jobs-data"):
        thing, job = first("thingName"), first("jobId")
        return f"thing {thing}" if thing else f"job {job}" if job else ""
    if service == "cloudformation":
        return f"stack {first('StackName')}" if first("StackName") else ""
    return ""


def principal_name(arn: str) -> str:
    """``arn:aws:sts::1:assumed-role/fleet-tech/alice`` -> ``role fleet-tech``;
    ``arn:aws:iam::1:user/bob`` -> ``user bob``: whose policy an admin edits."""
    resource = arn.split(":", 5)[-1]
    kind, _, rest = resource.partition("/")
    if kind in ("assumed-role", "role"):
        return f"role {rest.split('/')[0]}"
    if kind == "user":
        return f"user {rest.rsplit('/', 1)[-1]}"
    return arn


_COMBINED: dict[tuple[type[Exception], type[Exception]], type[Exception]] = {}


def _combined(core_class: type[SmartIotError], original: type[Exception], text: str,
              fields: dict[str, Any], init: Any) -> Exception:
    """An instance of both ``core_class`` and botocore's ``original`` whose
    message is ``text`` (botocore's constructor runs, so ``response``,
    ``operation_name`` and ``kwargs`` are what it would have set)."""
    key = (core_class, original)
    cls = _COMBINED.get(key)
    if cls is None:
        cls = type(original.__name__, (core_class, original),
                   {"__module__": __name__, "__doc__": core_class.__doc__,
                    "__reduce__": BaseException.__reduce__})
        _COMBINED[key] = cls
    exc = cls.__new__(cls)
    init(exc)
    exc.args = (text,)
    for name, value in fields.items():
        setattr(exc, name, value)
    if "reason" in fields or hasattr(core_class, "reason"):
        exc.reason = fields.get("reason") or text  # type: ignore[attr-defined]
    return exc


__all__ = ["BotoCoreError", "ClientError", "describe_resource", "install", "principal_name"]
