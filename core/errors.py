"""Typed domain exceptions.

Every message is written for the person who has to fix the problem: it names
the offending value and says what would have been accepted, because these
messages reach technicians through dialogs and the CLI, not just logs.
"""

from __future__ import annotations


class SmartIotError(Exception):
    """Base of every error the console raises on purpose."""


class ValidationError(SmartIotError, ValueError):
    """A value from a user, a file or a device does not fit the domain's rules."""


class InvalidDeviceId(ValidationError):
    """A device id outside AWS IoT's thing-name alphabet or length."""


class InvalidVersion(ValidationError):
    """A firmware version string that is not semantic versioning 2.0."""


class IllegalTransition(SmartIotError):
    """A state change the lifecycle does not allow (alert or job execution)."""


class ConcurrentModification(SmartIotError):
    """Someone else changed the record first; carries who did it so the UI can say so."""

    def __init__(self, message: str, *, changed_by: str | None = None) -> None:
        super().__init__(message)
        self.changed_by = changed_by


class NotFound(SmartIotError, LookupError):
    """A record that was asked for by id does not exist."""


class ConfigError(SmartIotError):
    """The configuration file or an override is invalid; names file, key and what is allowed."""


class PermissionDenied(SmartIotError):
    """The signed-in role may not do this; enforced in services, not only by hidden buttons."""


class SignInExpired(SmartIotError):
    """The person's sign-in (Cognito tokens, or the AWS credentials a profile
    uses) has ended. Nothing was applied; what waits in the console's outbox
    stays there until the person signs in again, so the console offers the
    sign-in dialog instead of showing a failure."""


class AccessNotGranted(PermissionDenied):
    """The cloud account refused the credentials in use an action on a
    resource. Unlike a role the console refuses, only an administrator of the
    account can change this (an IAM policy), so the message names the action,
    the resource and the role or user whose policy has to allow it."""


class ServiceUnavailable(SmartIotError):
    """A service behind the backend did not do what was asked, for a reason
    that is not the request: it throttled, could not be reached, or a resource
    it needs (a table, a bucket) is missing. The request was not applied and
    may be sent again unchanged later, so a queued action is kept, not refused.

    ``reason`` names the service and the resource without advice (the REST API
    answers it, and each front end adds what its person can do);
    ``retry_after_s`` is a hint how long to wait, when there is one."""

    service: str = ""
    resource: str = ""
    reason: str = ""
    retry_after_s: float | None = None

    def __init__(self, message: str, *, reason: str = "", service: str = "",
                 resource: str = "", retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message
        self.service = service
        self.resource = resource
        self.retry_after_s = retry_after_s


class ServiceThrottled(ServiceUnavailable):
    """The service kept answering "slow down" after every retry the client made."""


class ServiceUnreachable(ServiceUnavailable):
    """No answer: the network is cut, the endpoint is down, or it answered too slowly."""


class ResourceMissing(ServiceUnavailable):
    """A table, bucket, stream, queue or user pool the profile names does not
    exist (the stack is not deployed, or the profile names another stage)."""
