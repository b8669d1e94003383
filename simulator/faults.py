"""Fault injection: what goes wrong with real devices, as data and pure functions.

Three layers, because they break different parts of the console:
- value faults change readings (a frozen sensor, EMI spikes, calibration
  drift, impossible values, NaN from a failed conversion) and exercise the
  alert engine and the validators;
- message faults change the stream of publishes (loss, duplicates,
  reordering, corrupted payloads, store-and-forward bursts) and exercise the
  hub's ``seq`` accounting, de-duplication and quarantine;
- connection faults (drop, flap, reboot, battery depletion) are read by the
  MQTT runtime and exercise Last Will, status and reconnect handling.

A :class:`FaultSpec` is one entry of a scenario timeline; a :class:`FaultPlan`
holds the timeline and resolves which devices of which group a fault hits.
Device selection and every random choice come from seeded generators, so a
faulty run replays byte for byte.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from core.errors import ValidationError
from simulator.models.base import SECONDS_PER_HOUR, BoolArray, FloatArray

VALUE_FAULTS = frozenset({"stuck", "spike", "drift", "out_of_range", "nan"})
MESSAGE_FAULTS = frozenset({"loss", "duplicate", "reorder", "malformed", "burst"})
CONNECTION_FAULTS = frozenset({"drop", "flap", "reboot", "battery_depletion"})
MODEL_FAULTS = frozenset({"bearing_failure"})
ONE_SHOT_FAULTS = frozenset({"reboot", "bearing_failure"})  # happen once, at start_s

# Values no working sensor can report; anything else falls back to a huge negative.
IMPOSSIBLE_VALUES: Mapping[str, float] = MappingProxyType({
    "temperature": -300.0,     # below absolute zero
    "humidity": 180.0,
    "pressure": -50.0,
    "voltage": -1000.0,
    "power_factor": 3.0,
    "battery_pct": 250.0,
    "battery_v": 42.0,
    "rssi": 40.0,              # positive dBm at the receiver
    "lat": 123.0,
    "lon": 555.0,
    "speed": 900.0,
    "heading": 720.0,
    "load": -5.0,
    "bearing_wear": 7.0,
})
DEFAULT_IMPOSSIBLE = -99_999.0


# ------------------------------------------------------------------ validation
def _prob(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0
    return None if ok else "must be a probability between 0 and 1"


def _positive(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool) and v > 0
    return None if ok else "must be a number > 0"


def _number(v: Any) -> str | None:
    ok = isinstance(v, int | float) and not isinstance(v, bool)
    return None if ok else "must be a number"


def _optional_number(v: Any) -> str | None:
    return None if v is None else _number(v)


def _positive_int(v: Any) -> str | None:
    ok = isinstance(v, int) and not isinstance(v, bool) and v >= 1
    return None if ok else "must be an integer >= 1"


def _metric_names(v: Any) -> str | None:
    if v is None:
        return None
    ok = isinstance(v, list | tuple) and v and all(isinstance(m, str) for m in v)
    return None if ok else "must be a non-empty list of metric names"


Check = Callable[[Any], "str | None"]
_METRICS: tuple[Any, Check] = (None, _metric_names)
FAULT_PARAMS: Mapping[str, Mapping[str, tuple[Any, Check]]] = MappingProxyType({
    "stuck": {"metrics": _METRICS},
    "spike": {"p": (0.02, _prob), "magnitude_sigma": (10.0, _positive), "metrics": _METRICS},
    "drift": {"rate_per_h": (1.0, _number), "metrics": _METRICS},
    "out_of_range": {"p": (1.0, _prob), "value": (None, _optional_number), "metrics": _METRICS},
    "nan": {"p": (1.0, _prob), "metrics": _METRICS},
    "loss": {"p": (0.1, _prob)},
    "duplicate": {"p": (0.05, _prob)},
    "reorder": {"p": (0.1, _prob), "window": (3, _positive_int)},
    "malformed": {"p": (0.05, _prob)},
    "burst": {},
    "drop": {},
    "flap": {"period_s": (20.0, _positive), "down_s": (5.0, _positive)},
    "reboot": {},
    "battery_depletion": {"factor": (2000.0, _positive)},
    "bearing_failure": {"time_to_failure_s": (3600.0, _positive)},
})
ALL_FAULTS = frozenset(FAULT_PARAMS)


def validate_params(kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params`` for fault ``kind`` and return them completed with defaults."""
    if kind not in FAULT_PARAMS:
        raise ValidationError(
            f"unknown fault kind {kind!r}; known kinds: {', '.join(sorted(FAULT_PARAMS))}"
        )
    spec = FAULT_PARAMS[kind]
    for key in params:
        if key not in spec:
            allowed = ", ".join(sorted(spec)) or "none"
            raise ValidationError(
                f"fault {kind!r}: unknown parameter {key!r}; allowed: {allowed}"
            )
    out: dict[str, Any] = {}
    for key, (default, check) in spec.items():
        value = params.get(key, default)
        problem = check(value) if key in params else None
        if problem:
            raise ValidationError(f"fault {kind!r}: parameter {key!r} = {value!r} {problem}")
        out[key] = tuple(value) if key == "metrics" and value is not None else value
    if kind == "flap" and out["down_s"] >= out["period_s"]:
        raise ValidationError(
            f"fault 'flap': parameter 'down_s' ({out['down_s']}) must be shorter than "
            f"'period_s' ({out['period_s']})"
        )
    return out


# ------------------------------------------------------------------ timeline
@dataclass(frozen=True)
class FaultSpec:
    """One timeline entry.

    ``start_s`` is seconds after the fleet's start; ``duration_s`` None means
    "until the end" (ignored for the one-shot ``reboot`` and ``bearing_failure``).
    Select devices with ``fraction`` (exactly round(fraction * n) devices of each
    targeted group, chosen by the seeded plan) or ``devices`` (group-local indexes
    or a boolean mask); neither means every device.  ``group`` None targets all
    groups.
    """

    kind: str
    params: Mapping[str, Any] = field(default_factory=dict)
    start_s: float = 0.0
    duration_s: float | None = None
    fraction: float | None = None
    devices: Sequence[int] | BoolArray | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "params", MappingProxyType(validate_params(self.kind,
                                                                           self.params)))
        where = f"fault {self.kind!r}"
        if _number(self.start_s) or self.start_s < 0:
            raise ValidationError(f"{where}: start_s {self.start_s!r} must be a number >= 0")
        if self.duration_s is not None and _positive(self.duration_s):
            raise ValidationError(f"{where}: duration_s {self.duration_s!r} must be > 0")
        if self.fraction is not None and self.devices is not None:
            raise ValidationError(f"{where}: give either fraction or devices, not both")
        if self.fraction is not None and _prob(self.fraction):
            raise ValidationError(f"{where}: fraction {self.fraction!r} must be between 0 and 1")
        if self.devices is not None:
            arr = np.asarray(self.devices)
            idx = np.flatnonzero(arr) if arr.dtype == np.bool_ else arr.astype(np.int64)
            if idx.size and idx.min() < 0:
                raise ValidationError(f"{where}: device indexes must be >= 0")
            object.__setattr__(self, "devices", tuple(int(i) for i in idx))

    @property
    def end_s(self) -> float:
        return float("inf") if self.duration_s is None else self.start_s + self.duration_s

    def is_active(self, elapsed_s: float) -> bool:
        if self.kind in ONE_SHOT_FAULTS:
            return elapsed_s >= self.start_s
        return self.start_s <= elapsed_s < self.end_s

    def select(self, n: int, rng: np.random.Generator) -> BoolArray:
        """Boolean mask of the ``n`` devices of one group this fault hits."""
        mask = np.zeros(n, dtype=bool)
        if self.devices is not None:
            idx = np.asarray(self.devices, dtype=np.int64)
            mask[idx[idx < n]] = True
        elif self.fraction is None:
            mask[:] = True
        else:
            mask[rng.permutation(n)[: round(self.fraction * n)]] = True
        return mask


class ResolvedFault(NamedTuple):
    position: int       # position in the plan (stable id for per-fault state)
    spec: FaultSpec
    mask: BoolArray     # devices of the group it hits


class FaultPlan:
    """An ordered fault timeline, e.g.::

        FaultPlan([
            FaultSpec("bearing_failure", start_s=300, fraction=0.1, group="pumps"),
            FaultSpec("drop", start_s=600, duration_s=60, fraction=0.2),
        ])
    """

    def __init__(self, specs: Iterable[FaultSpec] = ()) -> None:
        self.specs: tuple[FaultSpec, ...] = tuple(specs)
        self._masks: dict[tuple[int, str, int, int], BoolArray] = {}

    @classmethod
    def from_dicts(cls, entries: Iterable[Mapping[str, Any]]) -> FaultPlan:
        """Build from scenario-file entries (``{"kind": ..., "start_s": ..., ...}``)."""
        allowed = {"kind", "params", "start_s", "duration_s", "fraction", "devices", "group"}
        specs = []
        for entry in entries:
            kind = entry.get("kind", "?")
            bad = sorted(set(entry) - allowed)
            if bad:
                raise ValidationError(f"fault {kind!r}: unknown field {bad[0]!r}; "
                                      f"allowed: {', '.join(sorted(allowed))}")
            if "kind" not in entry:
                raise ValidationError("fault entry without 'kind'")
            specs.append(FaultSpec(**dict(entry)))
        return cls(specs)

    def resolve(self, group: str, n: int, seed: int) -> list[ResolvedFault]:
        """Every fault of the plan that targets ``group``, with its device mask.

        The mask depends only on (seed, group name, fault position), so adding
        a group or a later fault never re-rolls which devices an earlier fault hits."""
        out = []
        for i, spec in enumerate(self.specs):
            if spec.group is not None and spec.group != group:
                continue
            key = (i, group, n, seed)
            if key not in self._masks:
                ss = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(group.encode()), 1000 + i))
                self._masks[key] = spec.select(n, np.random.default_rng(ss))
            out.append(ResolvedFault(i, spec, self._masks[key]))
        return out

    def active(self, elapsed_s: float, group: str, n: int, seed: int) -> list[ResolvedFault]:
        """Faults active at ``elapsed_s`` seconds after the start for ``group``."""
        return [f for f in self.resolve(group, n, seed) if f.spec.is_active(elapsed_s)]


# ------------------------------------------------------------------ value faults
def _scale(values: FloatArray) -> float:
    """Typical spread of a metric: the fleet-wide standard deviation, or 5 % of its
    magnitude when the devices agree (one device, or a constant)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 1.0
    return max(float(np.std(finite)), 0.05 * float(np.median(np.abs(finite))), 1e-3)


class ValueFaultInjector:
    """Applies active value faults to one group's metric arrays, keeping the state
    the stateful ones need (the frozen value of a stuck sensor)."""

    def __init__(self, n: int, metrics: Sequence[str], rng: np.random.Generator) -> None:
        self.n = n
        self.metrics = tuple(metrics)
        self.rng = rng
        self._last: dict[str, FloatArray] = {}
        self._stuck: dict[int, tuple[BoolArray, dict[str, FloatArray]]] = {}

    def apply(self, values: dict[str, FloatArray], elapsed_s: float,
              active: Sequence[ResolvedFault]) -> dict[str, FloatArray]:
        out = {k: v.copy() for k, v in values.items()}
        stuck_now = set()
        for fault in active:
            kind, params = fault.spec.kind, fault.spec.params
            if kind not in VALUE_FAULTS:
                continue
            names = [m for m in (params["metrics"] or self.metrics) if m in out]
            mask = fault.mask
            if kind == "stuck":
                stuck_now.add(fault.position)
                prev_mask, frozen = self._stuck.get(fault.position, (np.zeros(self.n, bool), {}))
                onset = mask & ~prev_mask
                for m in names:
                    source = self._last.get(m, out[m])
                    frozen[m] = np.where(onset, source, frozen.get(m, source))
                    out[m] = stuck(out[m], mask, frozen[m])
                self._stuck[fault.position] = (mask, frozen)
            elif kind == "spike":
                for m in names:
                    out[m] = spike(out[m], mask, self.rng, params["p"],
                                   params["magnitude_sigma"] * _scale(values[m]))
            elif kind == "drift":
                for m in names:
                    out[m] = drift(out[m], mask, elapsed_s - fault.spec.start_s,
                                   params["rate_per_h"])
            elif kind == "out_of_range":
                for m in names:
                    value = params["value"]
                    bad = IMPOSSIBLE_VALUES.get(m, DEFAULT_IMPOSSIBLE) if value is None else value
                    out[m] = out_of_range(out[m], mask, self.rng, params["p"], bad)
            else:
                for m in names:
                    out[m] = nan(out[m], mask, self.rng, params["p"])
        for index in set(self._stuck) - stuck_now:
            del self._stuck[index]          # fault over: the sensor recovers
        self._last = out
        return out


def stuck(values: FloatArray, mask: BoolArray, frozen: FloatArray) -> FloatArray:
    """A hung sensor or ADC repeats its last reading: zero variance, plausible value."""
    return np.where(mask, frozen, values)


def spike(values: FloatArray, mask: BoolArray, rng: np.random.Generator, p: float,
          magnitude: float) -> FloatArray:
    """Electrical interference: rare, large, one-sample excursions in either direction."""
    hit = mask & (rng.random(values.shape) < p)
    sign = np.where(rng.random(values.shape) < 0.5, -1.0, 1.0)
    size = magnitude * rng.uniform(1.0, 2.0, values.shape)
    return np.where(hit, values + sign * size, values)


def drift(values: FloatArray, mask: BoolArray, since_s: float, rate_per_h: float) -> FloatArray:
    """Calibration drift: a bias that grows linearly with time since onset."""
    return np.where(mask, values + rate_per_h * max(since_s, 0.0) / SECONDS_PER_HOUR, values)


def out_of_range(values: FloatArray, mask: BoolArray, rng: np.random.Generator, p: float,
                 impossible: float) -> FloatArray:
    """Broken wiring or a sign/overflow bug: a physically impossible value."""
    hit = mask & (rng.random(values.shape) < p)
    return np.where(hit, impossible, values)


def nan(values: FloatArray, mask: BoolArray, rng: np.random.Generator, p: float) -> FloatArray:
    """A failed conversion (sensor not answering, 0/0 in firmware) reported as NaN."""
    hit = mask & (rng.random(values.shape) < p)
    return np.where(hit, np.nan, values)


# ------------------------------------------------------------------ message faults
class Outgoing(NamedTuple):
    """One publish: when (sim seconds), which device (fleet index), what bytes."""

    t_s: float
    device: int
    payload: bytes


def _hits(messages: Sequence[Outgoing], p: float, rng: np.random.Generator,
          devices: BoolArray | None) -> BoolArray:
    hit = rng.random(len(messages)) < p
    if devices is not None and messages:
        hit &= devices[np.fromiter((m.device for m in messages), np.int64, len(messages))]
    return np.asarray(hit)


def loss(messages: Sequence[Outgoing], p: float, rng: np.random.Generator,
         devices: BoolArray | None = None) -> list[Outgoing]:
    """Drop each message with probability ``p`` (QoS 0 over a lossy link)."""
    hit = _hits(messages, p, rng, devices)
    return [m for m, h in zip(messages, hit, strict=True) if not h]


def duplicate(messages: Sequence[Outgoing], p: float, rng: np.random.Generator,
              devices: BoolArray | None = None) -> list[Outgoing]:
    """Publish a message twice, byte-identical (a QoS 1 retry whose PUBACK was lost)."""
    hit = _hits(messages, p, rng, devices)
    out: list[Outgoing] = []
    for m, h in zip(messages, hit, strict=True):
        out.append(m)
        if h:
            out.append(m)
    return out


def malformed(messages: Sequence[Outgoing], p: float, rng: np.random.Generator,
              devices: BoolArray | None = None) -> list[Outgoing]:
    """Corrupt payloads: truncated (buffer overrun, cut-off write) or garbled with bytes
    that are not UTF-8 (flipped bits).  Either way the result is never valid JSON."""
    hit = _hits(messages, p, rng, devices)
    out = []
    for m, h in zip(messages, hit, strict=True):
        if h:
            body = m.payload
            cut = int(rng.integers(1, max(len(body), 2)))
            garble = rng.random() < 0.5
            body = body[:cut] + b"\xff\xfe" + body[cut + 2:] if garble else body[:cut]
            m = m._replace(payload=body)
        out.append(m)
    return out


class Reorderer:
    """Streaming reordering: a delayed message is published after 1..``window`` later
    messages *of the same device*, so the device's ``seq`` goes backwards exactly
    as when a QoS 1 retry overtakes nothing but its own successors."""

    def __init__(self, p: float, window: int, rng: np.random.Generator,
                 devices: BoolArray | None = None) -> None:
        self.p, self.window, self.rng, self.devices = p, window, rng, devices
        self._held: dict[int, list[tuple[int, Outgoing]]] = {}

    def feed(self, messages: Sequence[Outgoing]) -> list[Outgoing]:
        hit = _hits(messages, self.p, self.rng, self.devices)
        waits = self.rng.integers(1, self.window + 1, len(messages))
        out: list[Outgoing] = []
        for m, h, wait in zip(messages, hit, waits, strict=True):
            held = self._held.get(m.device)
            if h and not held:
                self._held[m.device] = [(int(wait), m)]
                continue
            out.append(m)
            if held:
                still = []
                for left, old in held:
                    if left <= 1:
                        out.append(old._replace(t_s=m.t_s))
                    else:
                        still.append((left - 1, old))
                if still:
                    self._held[m.device] = still
                else:
                    del self._held[m.device]
        return out

    @property
    def holding(self) -> bool:
        return bool(self._held)

    def flush(self, t_s: float | None = None) -> list[Outgoing]:
        """Release everything still held (end of run)."""
        out = [old if t_s is None else old._replace(t_s=t_s)
               for held in self._held.values() for _, old in held]
        self._held.clear()
        return sorted(out, key=lambda m: (m.t_s, m.device))


def reorder(messages: Sequence[Outgoing], p: float, window: int, rng: np.random.Generator,
            devices: BoolArray | None = None) -> list[Outgoing]:
    """Delay each message with probability ``p`` behind up to ``window`` later messages
    of the same device.  The multiset of payloads is unchanged."""
    r = Reorderer(p, window, rng, devices)
    return r.feed(messages) + r.flush(messages[-1].t_s if messages else None)


def burst(messages: Sequence[Outgoing], start_s: float, end_s: float,
          devices: BoolArray | None = None) -> list[Outgoing]:
    """Store-and-forward: messages of ``devices`` published in [start_s, end_s) are held
    and released together at ``end_s``.  Payloads are untouched, so they keep their
    original ``ts`` and ``seq`` (the hub must accept late, in-order back-fill)."""
    out = []
    for m in messages:
        held = start_s <= m.t_s < end_s and (devices is None or bool(devices[m.device]))
        out.append(m._replace(t_s=end_s) if held else m)
    return sorted(out, key=lambda m: m.t_s)  # stable: held keep their order


def is_valid_json(payload: bytes) -> bool:
    """True when ``payload`` parses as JSON (used by tests and the runtime's self-check)."""
    try:
        json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return False
    return True
