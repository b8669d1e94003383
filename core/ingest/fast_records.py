"""Building frozen model records on the ingest hot path without re-validating them.

At 10,000 messages a second the hub made ~10 frozen dataclasses per message
(six ``Reading`` s, a ``Device`` and two ``LinkStats`` through
``dataclasses.replace``), each running its ``__post_init__`` checks (regexes on
the device id and metric names, aware timestamps, finite values) on data that
``decode_telemetry`` had validated a microsecond earlier: together more time
than decoding the message. These builders set the slots directly, the way the
generated ``__init__`` does minus the checks; they are for values the hub has
already validated, never for anything from outside.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, TypeVar

from core.model import Reading

T = TypeVar("T")


def slot_replacer(cls: type[T]) -> Callable[..., T]:
    """``replace(obj, **changes)`` for a frozen, slotted dataclass ``cls``: a copy
    with ``changes``, built without ``__init__``/``__post_init__``."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    lines = ["def replace(obj, **changes):", "    new = new_(cls)", "    get = changes.get"]
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls}
    for name in names:
        scope[f"set_{name}"] = getattr(cls, name).__set__
        lines.append(f"    set_{name}(new, get({name!r}, obj.{name}) if changes else obj.{name})")
    lines.append("    return new")
    exec("\n".join(lines), scope)  # generated from the class's own fields
    replace: Callable[..., T] = scope["replace"]
    replace.__doc__ = f"A copy of a validated {cls.__name__} with some fields changed."
    return replace


def slot_updater(cls: type[T], changed: tuple[str, ...]) -> Callable[..., T]:
    """Like :func:`slot_replacer` for one fixed set of fields, given positionally
    in the order of ``changed``: ``update(obj, *values)``. No keyword dict, no
    per-field lookup of what changed: the ingest path updates the same fields of
    a device's ``LinkStats`` and ``Device`` for every message, and the generic
    replacer's ~40 dict lookups per message were most of its cost."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    unknown = sorted(set(changed) - set(names))
    if unknown or len(set(changed)) != len(changed):
        raise ValueError(f"{cls.__name__} fields to update must be distinct fields, "
                         f"got {changed!r}")
    params = ", ".join(f"v_{name}" for name in changed)
    lines = [f"def update(obj, {params}):", "    new = new_(cls)"]
    scope: dict[str, Any] = {"new_": object.__new__, "cls": cls}
    for name in names:
        scope[f"set_{name}"] = getattr(cls, name).__set__
        value = f"v_{name}" if name in changed else f"obj.{name}"
        lines.append(f"    set_{name}(new, {value})")
    lines.append("    return new")
    exec("\n".join(lines), scope)  # generated from the class's own fields
    update: Callable[..., T] = scope["update"]
    update.__doc__ = f"A copy of a validated {cls.__name__} with {', '.join(changed)} set."
    return update


_new = object.__new__
# the slots' own setters, in field order: device_id, metric, ts, value
_set_device, _set_metric, _set_ts, _set_value = (
    getattr(Reading, f.name).__set__ for f in fields(Reading))


def trusted_reading(device_id: str, metric: str, ts: datetime, value: float) -> Reading:
    """One ``Reading`` of values a decoder or the store already checked."""
    reading = _new(Reading)
    _set_device(reading, device_id)
    _set_metric(reading, metric)
    _set_ts(reading, ts)
    _set_value(reading, value)
    return reading


def trusted_readings(device_id: str, ts: datetime,
                     metrics: Mapping[str, float]) -> list[Reading]:
    """One ``Reading`` per metric of a decoded message: the id, the names, the
    (UTC) time and the finite floats were checked by the decoder."""
    return [trusted_reading(device_id, metric, ts, value) for metric, value in metrics.items()]


def sample_readings(device_id: str,
                    samples: Iterable[tuple[datetime, Mapping[str, float]]]) -> list[Reading]:
    """The readings of a device's decoded messages, given as (time, metrics), in order."""
    return [r for ts, metrics in samples for r in trusted_readings(device_id, ts, metrics)]
