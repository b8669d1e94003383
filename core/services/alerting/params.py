"""Reading rule parameters with messages a person can act on.

Rules are edited in a dialog or a TOML file, so numbers may arrive as text;
every error names the parameter (the engine adds the rule's name) and says
what would have been accepted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from core.errors import ValidationError
from core.model.reading import validate_metric

_MISSING = object()


class Params:
    def __init__(self, params: Mapping[str, Any], allowed: tuple[str, ...], *,
                 where: str = "") -> None:
        if not isinstance(params, Mapping):
            raise ValidationError(f"{where}parameters must be a mapping, got "
                                  f"{type(params).__name__}")
        unknown = sorted(set(params) - set(allowed))
        if unknown:
            raise ValidationError(
                f"{where}unknown parameter(s) {', '.join(repr(u) for u in unknown)}; "
                f"allowed: {', '.join(allowed)}"
            )
        self._params = params
        self._where = where

    def _fail(self, name: str, problem: str) -> ValidationError:
        return ValidationError(f"{self._where}parameter {name!r} {problem}")

    def raw(self, name: str, default: Any = _MISSING) -> Any:
        if name in self._params and self._params[name] is not None:
            return self._params[name]
        if default is _MISSING:
            raise self._fail(name, "is required")
        return default

    def number(self, name: str, *, default: float | None = None, minimum: float | None = None,
               positive: bool = False) -> float:
        value = self.raw(name, _MISSING if default is None else default)
        if isinstance(value, bool):
            raise self._fail(name, f"must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise self._fail(name, f"must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise self._fail(name, f"must be a finite number, got {value!r}")
        if positive and number <= 0:
            raise self._fail(name, f"must be greater than 0, got {value!r}")
        if minimum is not None and number < minimum:
            raise self._fail(name, f"must be at least {minimum:g}, got {value!r}")
        return number

    def choice(self, name: str, choices: tuple[str, ...], default: str) -> str:
        value = self.raw(name, default)
        if value not in choices:
            raise self._fail(name, f"must be one of {', '.join(choices)}, got {value!r}")
        return str(value)

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise self._fail(name, f"must be true or false, got {value!r}")
        return value

    def metric(self, name: str = "metric", *, required: bool = True) -> str | None:
        value = self.raw(name, _MISSING if required else None)
        if value is None:
            return None
        try:
            return validate_metric(value)
        except ValidationError as exc:
            raise self._fail(name, f"is not a valid metric name: {exc}") from None


def fmt(value: float) -> str:
    """Short numbers for alert messages (21.5, not 21.500000000000004)."""
    return f"{value:.4g}"
