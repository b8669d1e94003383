"""The desired-state JSON a person types (the Shadow tab's editor), checked
before anything is sent."""

from __future__ import annotations

import json
from typing import Any

from core.errors import ValidationError


def parse_desired(text: str) -> dict[str, Any]:
    """The editor's JSON: an object, or a ValidationError saying what is wrong."""
    if not text.strip():
        raise ValidationError("desired state is empty; enter a JSON object such as {}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    if not isinstance(value, dict):
        raise ValidationError(
            f"desired state must be a JSON object ({{...}}), not {type(value).__name__}")
    return value
