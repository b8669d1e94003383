"""The REST API's error answers as the domain's exceptions.

A page written against the in-process session catches PermissionDenied,
NotFound, ConcurrentModification or ValidationError; over HTTP it must catch
the same ones with the server's words in them, or a refusal would look like a
crash. Network trouble gets its own error naming the hub, never a traceback.
"""

from __future__ import annotations

from typing import Any

from core.errors import (
    ConcurrentModification,
    IllegalTransition,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    SignInExpired,
    SmartIotError,
    ValidationError,
)


class HubUnreachable(SmartIotError):
    """The hub (or API Gateway) did not answer: down, unreachable or too slow."""


class SignInRequired(SignInExpired):
    """No valid token, or a refused sign-in: the person has to sign in (again)."""

    def __init__(self, message: str, server_message: str = "") -> None:
        super().__init__(message)
        self.server_message = server_message or message


class SlowDown(SmartIotError):
    """The server's rate limit (HTTP 429): wait a moment before the next request."""


class NotOfferedOverApi(SmartIotError):
    """A use case the REST API has no route for yet; the page says so instead of failing."""


class FieldError(ValidationError):
    """HTTP 400 naming the field that was refused (``field``; "body" when unknown)."""

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class Conflict(ConcurrentModification, IllegalTransition):
    """HTTP 409: a stale version, someone else's change first, or a state change
    the lifecycle refuses; the server's answer does not say which, so both
    kinds of handler a page may have catch it."""


def not_offered(what: str) -> NotOfferedOverApi:
    return NotOfferedOverApi(f"{what} is not offered by the hub's REST API yet; use the "
                             "console on the hub's machine or the smartiot CLI there")


def error_from_answer(status: int, body: Any, url: str) -> SmartIotError:
    """The exception a local session would have raised for this answer."""
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, dict) else {}
    message = str(error.get("message") or f"the server answered HTTP {status}")
    details = error.get("details")
    if status == 400 or status == 413:
        field = "body"
        if isinstance(details, list) and details and isinstance(details[0], dict):
            field = str(details[0].get("field") or "body")
        elif ":" in message:
            field = message.split(":", 1)[0].strip() or "body"
        return FieldError(message, field)
    if status == 401:
        return SignInRequired(f"your sign-in has expired — sign in again ({url} answered: "
                              f"{message})", message)
    if status == 403:
        return PermissionDenied(message)
    if status == 404:
        return NotFound(message)
    if status == 409:
        changed_by = details.get("changed_by") if isinstance(details, dict) else None
        return Conflict(message, changed_by=str(changed_by) if changed_by else None)
    if status == 429:
        return SlowDown(f"slow down: {message}")
    if status == 503 and error.get("code") == "SERVICE_UNAVAILABLE":
        # the backend's trouble with AWS behind it, named by the server
        named = details if isinstance(details, dict) else {}
        return ServiceUnavailable(message, reason=str(named.get("reason") or message),
                                  service=str(named.get("service") or ""),
                                  resource=str(named.get("resource") or ""))
    if status >= 500:
        return SmartIotError(f"the hub at {url} failed to answer: {message}")
    return SmartIotError(f"the hub at {url} answered HTTP {status}: {message}")
