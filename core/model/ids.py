"""Identifier rules shared by the registry, the wire protocol and the store.

Device ids double as AWS IoT thing names and as MQTT topic levels, so they use
IoT Core's thing-name alphabet; anything else would work locally and then
break the day a fleet moves to AWS.
"""

from __future__ import annotations

import re

from core.errors import InvalidDeviceId

DEVICE_ID_PATTERN = re.compile(r"[A-Za-z0-9:_-]{1,128}")


def validate_device_id(value: object) -> str:
    """Return ``value`` unchanged if it is a legal device id, else raise InvalidDeviceId."""
    if not isinstance(value, str):
        raise InvalidDeviceId(
            f"device id must be text, got {type(value).__name__} {value!r}"
        )
    if not value:
        raise InvalidDeviceId("device id is empty; use 1-128 characters from A-Z a-z 0-9 : _ -")
    if len(value) > 128:
        raise InvalidDeviceId(
            f"device id {value[:20]!r}... is {len(value)} characters long; the limit is 128"
        )
    if DEVICE_ID_PATTERN.fullmatch(value) is None:
        bad = sorted({ch for ch in value if not re.fullmatch(r"[A-Za-z0-9:_-]", ch)})
        raise InvalidDeviceId(
            f"device id {value!r} contains {''.join(bad)!r}; "
            "only letters, digits and the characters : _ - are allowed"
        )
    return value


def is_valid_device_id(value: object) -> bool:
    """Cheap check for hot paths (ingestion) that count rather than raise."""
    return isinstance(value, str) and DEVICE_ID_PATTERN.fullmatch(value) is not None
