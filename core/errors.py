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
