"""Payload schemas: deterministic encoders and strict decoders.

Encoders produce byte-identical output for identical input (fixed key order,
fixed float rounding) so a seeded simulation is reproducible to the byte.
Decoders are strict and say exactly what is wrong, with a short ``reason``
code the hub counts per kind of bad input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from operator import itemgetter
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from core.errors import ValidationError
from core.model.ids import is_valid_device_id
from core.model.reading import METRIC_PATTERN
from core.protocol.limits import MAX_PAYLOAD_BYTES

# Six decimals keep GPS positions to ~0.1 m; four would make slow trackers jump 11 m.
FLOAT_DECIMALS = 6
# Devices may buffer for a while (store-and-forward) but not for ever, and a
# clock years ahead is a broken RTC, not data.
MAX_PAST_MS = 7 * 24 * 3600 * 1000
MAX_FUTURE_MS = 5 * 60 * 1000


class ProtocolError(ValidationError):
    """A message that breaks the protocol; ``reason`` is a stable code for counters."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


# One encoder for every message: json.dumps with non-default options builds a
# new JSONEncoder per call, which is a third of the cost of a telemetry encode.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=True, ensure_ascii=True)
_encode_str = json.encoder.encode_basestring_ascii  # what _ENCODER uses for str
_INF = float("inf")


def _dumps(obj: dict[str, Any]) -> bytes:
    return _ENCODER.encode(obj).encode()


def _float_json(value: float) -> str:
    """A float exactly as json writes it (allow_nan=True)."""
    if value != value:
        return "NaN"
    if value == _INF:
        return "Infinity"
    if value == -_INF:
        return "-Infinity"
    return float.__repr__(value)


def _round(value: float) -> float | None:
    if isinstance(value, float) and not math.isfinite(value):
        return value  # faults may inject NaN on purpose; json writes NaN and decoders reject it
    return round(float(value), FLOAT_DECIMALS)


# Metrics formatted all at once: "%.6f" gives the digits of round(v, 6) (both are
# Python's correctly rounded dtoa with 6 decimals), and with the trailing zeros cut
# (one kept after the point) that is repr(round(v, 6)), as long as repr does not
# switch to exponent notation (|r| < 1e-4 and not 0) or has too few digits to
# keep six decimals (|r| >= 2**33); those, and NaN/inf, take the per-value path.
_METRIC_SEP = "|"
_ZERO_SEP = "0|"
_TINY = re.compile(r"(?:^|[|-])0\.0000(?!00)")  # rounds to 0 < |r| < 1e-4
_LIMIT = 1e9  # well inside 2**33, where six decimals still survive repr
_MetricsPlan = tuple[Callable[[dict[str, Any]], Any], str, str, bool]
_METRICS_PLANS: dict[tuple[str, ...], _MetricsPlan | None] = {}
_MAX_METRICS_PLANS = 1024


def _metrics_plan(keys: tuple[str, ...]) -> _MetricsPlan | None:
    """How to write a metrics object with these keys (insertion order): the values
    in sorted-key order, their number format, and the object's text around them."""
    if not keys or not all(type(k) is str for k in keys):
        return None
    order = sorted(keys)
    # every number ends with the separator, so a trailing zero is always "0|"
    number_format = "".join(["%.6f" + _METRIC_SEP] * len(order))
    # the final %s takes the empty string after the last separator
    template = ",".join(_encode_str(k).replace("%", "%%") + ":%s" for k in order) + "%s"
    return itemgetter(*order), number_format, template, len(order) == 1


def _metrics_text(metrics: dict[str, Any]) -> str | None:
    """The inside of the metrics object as the json path writes it, or None when
    this shortcut does not apply."""
    keys = tuple(metrics)
    try:
        plan = _METRICS_PLANS[keys]
    except KeyError:
        plan = _metrics_plan(keys)
        if len(_METRICS_PLANS) < _MAX_METRICS_PLANS:
            _METRICS_PLANS[keys] = plan
    if plan is None:
        return None
    getter, number_format, template, single = plan
    values = (getter(metrics),) if single else getter(metrics)
    try:
        numbers = number_format % values
        if "n" in numbers or not min(values) > -_LIMIT or not max(values) < _LIMIT:
            return None  # nan, inf; or too large
    except (TypeError, ValueError, OverflowError):
        return None
    if "0.0000" in numbers and _TINY.search(numbers) is not None:
        return None
    for _ in range(FLOAT_DECIMALS - 1):  # cut trailing zeros, one at a time, keeping "x.0"
        if _ZERO_SEP not in numbers:
            break
        numbers = numbers.replace(_ZERO_SEP, _METRIC_SEP)
    return template % tuple(numbers.split(_METRIC_SEP))


# ------------------------------------------------------------------ telemetry
TELEMETRY_FIELDS = frozenset({"device_id", "seq", "ts", "type", "fw", "metrics", "uptime"})


@dataclass(frozen=True, slots=True)
class Telemetry:
    device_id: str
    seq: int
    ts_ms: int
    metrics: dict[str, float]
    device_type: str = ""
    firmware: str = ""
    uptime_s: int | None = None

    def __init__(self, device_id: str, seq: int, ts_ms: int, metrics: dict[str, float],
                 device_type: str = "", firmware: str = "", uptime_s: int | None = None) -> None:
        # What the generated __init__ does, through the slots' own setters instead of
        # object.__setattr__ per field: a third of the cost, for one Telemetry per
        # simulated message. Still frozen: assigning a field raises as before.
        (set_id, set_seq, set_ts, set_metrics, set_type, set_fw,
         set_uptime) = _TELEMETRY_SETTERS
        set_id(self, device_id)
        set_seq(self, seq)
        set_ts(self, ts_ms)
        set_metrics(self, metrics)
        set_type(self, device_type)
        set_fw(self, firmware)
        set_uptime(self, uptime_s)

    def encode(self) -> bytes:
        # Fast path for the plain types the simulator produces: the same bytes as
        # the json path below (the simulator's hottest line at 10,000 msg/s).
        metrics, uptime = self.metrics, self.uptime_s
        if (type(self.seq) is int and type(self.ts_ms) is int
                and (uptime is None or type(uptime) is int)
                and type(self.device_id) is str and type(self.device_type) is str
                and type(self.firmware) is str and type(metrics) is dict):
            values = _metrics_text(metrics)  # None also when a key is not a str
            if values is None:
                if not all(type(k) is str for k in metrics):
                    return self._encode_json()
                parts = []
                for k in sorted(metrics):
                    v = metrics[k]
                    if type(v) is float and -_INF < v < _INF:  # finite: round() as _round does
                        parts.append(f"{_encode_str(k)}:{round(v, FLOAT_DECIMALS)!r}")
                    else:
                        parts.append(f"{_encode_str(k)}:{_float_json(_round(v))}")  # type: ignore[arg-type]
                values = ",".join(parts)
            text = (f'{{"device_id":{_encode_str(self.device_id)},"seq":{self.seq},'
                    f'"ts":{self.ts_ms},"type":{_encode_str(self.device_type)},'
                    f'"fw":{_encode_str(self.firmware)},"metrics":{{{values}}}')
            if uptime is not None:
                text += f',"uptime":{uptime}'
            return (text + "}").encode()
        return self._encode_json()

    def _encode_json(self) -> bytes:
        body: dict[str, Any] = {
            "device_id": self.device_id,
            "seq": self.seq,
            "ts": self.ts_ms,
            "type": self.device_type,
            "fw": self.firmware,
            "metrics": {k: _round(v) for k, v in sorted(self.metrics.items())},
        }
        if self.uptime_s is not None:
            body["uptime"] = self.uptime_s
        return _dumps(body)


_TELEMETRY_SETTERS: tuple[Callable[[Telemetry, Any], None], ...] = tuple(
    vars(Telemetry)[f.name].__set__ for f in fields(Telemetry))


# The batch encoder (TelemetryRows) writes numbers with numpy instead of "%.6f":
# x * 1e6 rounded to an integer is the "%.6f" text's digits whenever x * 1e6 is not
# within its own rounding error of a tie (x.5); those rows, and any with a value
# Telemetry.encode writes otherwise (NaN, inf, |v| >= 1e9, 0 < |round(v, 6)| < 1e-4,
# generously bounded at 1.5e-4), are left to Telemetry.encode.
_PLAIN_TINY = 1.5e-4
_TIE_MARGIN = 2.0 ** -51   # > the relative error of x * 1e6 (half an ulp: 2**-53)
_PAD = 0                   # padding byte, dropped at the end: never in a payload
_DIGITS = ord("0")
_POW10 = 10 ** np.arange(18, -1, -1, dtype=np.int64)
_MINUS, _POINT = ord("-"), ord(".")
_U8 = np.uint8


def _lut(trim: int | None) -> NDArray[np.uint8]:
    """(1000, 3) ASCII digits of 0..999, zero-padded; with ``trim``, trailing zeros
    become _PAD, but the first ``trim`` digits stay."""
    table = np.array([list(f"{i:03d}".encode()) for i in range(1000)], dtype=_U8)
    if trim is not None:
        for i in range(1000):
            text = f"{i:03d}".rstrip("0")
            table[i, max(len(text), trim):] = _PAD
    return table


_LUT3, _LUT3_TRIM, _LUT3_TRIM1 = _lut(None), _lut(0), _lut(1)


def _decimal(values: NDArray[np.int64], width: int | None = None) -> NDArray[np.uint8]:
    """Non-negative integers (any shape) as ASCII digits in a last axis of ``width``
    (default: the widest value's), right-aligned, leading positions _PAD."""
    if width is None:
        width = len(str(int(values.max()))) if values.size else 1
    chunks = []
    rest = values
    for _ in range((width + 2) // 3):
        high = rest // 1000
        chunks.append(_LUT3[rest - high * 1000])
        rest = high
    digits = np.concatenate(chunks[::-1], axis=-1)[..., -width:]
    significant = values[..., None] >= _POW10[len(_POW10) - width:]
    significant[..., -1] = True
    return np.where(significant, digits, _U8(_PAD))


def _fraction(micros: NDArray[np.int64]) -> NDArray[np.uint8]:
    """0..999999 as the six decimals of "%.6f" with trailing zeros _PAD (one kept)."""
    high = micros // 1000
    low = micros - high * 1000
    high_digits = np.where((low == 0)[..., None], _LUT3_TRIM1[high], _LUT3[high])
    return np.concatenate((high_digits, _LUT3_TRIM[low]), axis=-1)


def _strings(values: bytes | Sequence[bytes] | NDArray[np.bytes_], n: int) -> NDArray[np.uint8]:
    """ASCII strings as an (n, width) byte matrix padded with _PAD."""
    arr = np.asarray(values, dtype=np.bytes_)
    if arr.ndim == 0:
        arr = np.broadcast_to(arr, (n,))
    width = arr.dtype.itemsize
    return np.ascontiguousarray(arr).view(_U8).reshape(n, width)


class TelemetryRows:
    """Encode many telemetry messages of one device type and timestamp at once, each
    byte-identical to ``Telemetry(...).encode()`` with these metric names (plus an
    uptime), as byte matrices in numpy instead of a dict, a ``Telemetry`` and a
    string format per message: the simulator's hottest path at high rates. Rows it
    cannot vouch for (see above) come back as None, for ``Telemetry.encode``."""

    def __init__(self, metric_names: Sequence[str]) -> None:
        if not metric_names or not all(type(k) is str for k in metric_names):
            raise ValueError("metric names must be a non-empty sequence of str")
        #: the order :meth:`encode` takes the value columns in (the payload's key order)
        self.names: tuple[str, ...] = tuple(sorted(metric_names))
        self._keys = [("," if i else "") + _encode_str(k) + ":" for i, k in enumerate(self.names)]

    def encode(self, ts_ms: int, device_type: str, ids_json: NDArray[np.bytes_],
               seqs: NDArray[np.int64], firmware_json: bytes | NDArray[np.bytes_],
               columns: Sequence[NDArray[np.float64]], uptimes: NDArray[np.int64]
               ) -> list[bytes | None]:
        """One payload per row, None where the row needs ``Telemetry.encode``.
        ``ids_json``/``firmware_json``: the JSON-encoded strings (``json_str(...)
        .encode()``; one firmware for all rows, or one per row); ``columns``: one
        float64 array per name, in :attr:`names` order."""
        n = len(ids_json)
        if not n:
            return []
        values = np.column_stack(columns)  # (rows, metrics)
        with np.errstate(invalid="ignore", over="ignore"):  # NaN, inf, 1e300 * 1e6
            magnitude = np.abs(values)
            scaled = magnitude * 1e6
            micros = np.rint(scaled)
            ok = ((magnitude < _LIMIT) & ((magnitude >= _PLAIN_TINY) | (magnitude == 0.0))
                  & (np.abs(scaled - micros) < 0.5 - scaled * _TIE_MARGIN))
        plain = ok.all(axis=1) & (seqs >= 0) & (uptimes >= 0)
        micros_i = np.where(ok, micros, 0.0).astype(np.int64)  # exact: < 2**53
        whole = micros_i // 1_000_000
        whole_digits = _decimal(whole)
        width = whole_digits.shape[-1]
        numbers = np.empty((*values.shape, width + 8), dtype=_U8)  # sign whole . 6 digits
        numbers[..., 0] = np.where(np.signbit(values), _MINUS, _PAD)
        numbers[..., 1:width + 1] = whole_digits
        numbers[..., width + 1] = _POINT
        numbers[..., width + 2:] = _fraction(micros_i - whole * 1_000_000)

        row = bytearray()
        fields: list[tuple[int, NDArray[np.uint8]]] = []

        def put(part: NDArray[np.uint8]) -> None:
            fields.append((len(row), part))
            row.extend(bytes(part.shape[1]))

        row += b'{"device_id":'
        put(_strings(ids_json, n))
        row += b',"seq":'
        put(_decimal(np.maximum(seqs, 0)))
        row += f',"ts":{int(ts_ms)},"type":{_encode_str(device_type)},"fw":'.encode()
        put(_strings(firmware_json, n))
        row += b',"metrics":{'
        for j, key in enumerate(self._keys):
            row += key.encode()
            put(numbers[:, j])
        row += b'},"uptime":'
        put(_decimal(np.maximum(uptimes, 0)))
        row += b"}\n"
        matrix = np.empty((n, len(row)), dtype=_U8)
        matrix[:] = np.frombuffer(bytes(row), dtype=_U8)
        for offset, part in fields:
            matrix[:, offset:offset + part.shape[1]] = part
        flat = matrix.ravel()
        rows: list[bytes] = flat[flat != _PAD].tobytes().split(b"\n")
        rows.pop()  # after the last separator
        if plain.all():
            return cast("list[bytes | None]", rows)
        out: list[bytes | None] = [None] * n
        for k in np.flatnonzero(plain).tolist():
            out[k] = rows[k]
        return out


def json_str(value: str) -> str:
    """``value`` as a JSON string, as telemetry payloads write it."""
    return _encode_str(value)

def decode_json_object(payload: bytes, what: str) -> dict[str, Any]:
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            "oversized", f"{what} is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        obj = json.loads(payload, parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise ProtocolError("non_finite", f"{what} contains {exc.args[0]}, not a number") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError("malformed_json", f"{what} is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", f"{what} must be a JSON object, got {type(obj).__name__}")
    return obj


class _NonFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def decode_telemetry(payload: bytes, *, topic_device_id: str, now_ms: int) -> Telemetry:
    """Validate a telemetry message against its topic and the receiver's clock."""
    where = f"telemetry from {topic_device_id}"
    obj = decode_json_object(payload, where)
    unknown = sorted(set(obj) - TELEMETRY_FIELDS)
    if unknown:
        raise ProtocolError("unknown_field", f"{where}: unknown field(s) {', '.join(unknown)}")
    for name in ("device_id", "seq", "ts", "metrics"):
        if name not in obj:
            raise ProtocolError("missing_field", f"{where}: field {name!r} is missing")
    device_id = obj["device_id"]
    if not isinstance(device_id, str) or not is_valid_device_id(device_id):
        raise ProtocolError("invalid_device_id", f"{where}: device_id {device_id!r} is not valid")
    if device_id != topic_device_id:
        raise ProtocolError(
            "device_mismatch",
            f"{where}: payload says device_id {device_id!r} but the topic names "
            f"{topic_device_id!r}",
        )
    seq, ts = obj["seq"], obj["ts"]
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ProtocolError("wrong_type", f"{where}: seq {seq!r} must be a non-negative integer")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ProtocolError("wrong_type", f"{where}: ts {ts!r} must be epoch milliseconds")
    if ts > now_ms + MAX_FUTURE_MS:
        raise ProtocolError(
            "ts_future", f"{where}: ts {ts} is {(ts - now_ms) / 1000:.0f} s in the future"
        )
    if ts < now_ms - MAX_PAST_MS:
        raise ProtocolError(
            "ts_past", f"{where}: ts {ts} is {(now_ms - ts) / 86_400_000:.1f} days in the past"
        )
    metrics = obj["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise ProtocolError("wrong_type", f"{where}: metrics must be a non-empty object")
    clean: dict[str, float] = {}
    for name, value in metrics.items():
        if METRIC_PATTERN.fullmatch(name) is None:
            raise ProtocolError("wrong_type", f"{where}: metric name {name!r} is not valid")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProtocolError("wrong_type", f"{where}: metric {name} = {value!r} is not a number")
        if not math.isfinite(value):
            raise ProtocolError("non_finite", f"{where}: metric {name} = {value!r} is not finite")
        clean[name] = float(value)
    device_type = obj.get("type", "")
    firmware = obj.get("fw", "")
    uptime = obj.get("uptime")
    if not isinstance(device_type, str) or not isinstance(firmware, str):
        raise ProtocolError("wrong_type", f"{where}: type and fw must be strings")
    if uptime is not None and (isinstance(uptime, bool) or not isinstance(uptime, int)):
        raise ProtocolError("wrong_type", f"{where}: uptime {uptime!r} must be whole seconds")
    return Telemetry(device_id, seq, ts, clean, device_type, firmware, uptime)


# ------------------------------------------------------------------ status
@dataclass(frozen=True, slots=True)
class Status:
    state: str  # "online" | "offline"
    ts_ms: int | None = None
    device_type: str = ""
    firmware: str = ""
    reason: str = ""

    def encode(self) -> bytes:
        body: dict[str, Any] = {"state": self.state}
        if self.ts_ms is not None:
            body["ts"] = self.ts_ms
        if self.device_type:
            body["type"] = self.device_type
        if self.firmware:
            body["fw"] = self.firmware
        if self.reason:
            body["reason"] = self.reason
        return _dumps(body)


def decode_status(payload: bytes, *, topic_device_id: str) -> Status:
    where = f"status from {topic_device_id}"
    obj = decode_json_object(payload, where)
    state = obj.get("state")
    if state not in ("online", "offline"):
        raise ProtocolError("wrong_type", f"{where}: state {state!r} must be online or offline")
    ts = obj.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)):
        raise ProtocolError("wrong_type", f"{where}: ts {ts!r} must be epoch milliseconds")
    return Status(state, ts, str(obj.get("type", "")), str(obj.get("fw", "")),
                  str(obj.get("reason", "")))


# ------------------------------------------------------------------ commands
COMMANDS = ("ping", "reboot", "set-interval", "identify")


@dataclass(frozen=True, slots=True)
class CommandRequest:
    request_id: str
    command: str
    params: dict[str, Any] = field(default_factory=dict)
    ts_ms: int | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"request_id": self.request_id, "command": self.command,
                                "params": self.params}
        if self.ts_ms is not None:
            body["ts"] = self.ts_ms
        return _dumps(body)


@dataclass(frozen=True, slots=True)
class CommandResponse:
    request_id: str
    command: str
    ok: bool
    result: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    ts_ms: int | None = None

    def encode(self) -> bytes:
        body: dict[str, Any] = {"request_id": self.request_id, "command": self.command,
                                "ok": self.ok, "result": self.result}
        if self.error:
            body["error"] = self.error
        if self.ts_ms is not None:
            body["ts"] = self.ts_ms
        return _dumps(body)


def _require_str(obj: dict[str, Any], name: str, where: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value:
        raise ProtocolError("missing_field", f"{where}: {name!r} must be a non-empty string")
    return value


def decode_command_request(payload: bytes, *, where: str = "command") -> CommandRequest:
    obj = decode_json_object(payload, where)
    params = obj.get("params", {})
    if not isinstance(params, dict):
        raise ProtocolError("wrong_type", f"{where}: params must be an object")
    ts = obj.get("ts")
    return CommandRequest(
        _require_str(obj, "request_id", where),
        _require_str(obj, "command", where),
        params,
        ts if isinstance(ts, int) else None,
    )


def decode_command_response(payload: bytes, *, where: str = "command response") -> CommandResponse:
    obj = decode_json_object(payload, where)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("wrong_type", f"{where}: 'ok' must be true or false")
    result = obj.get("result", {})
    if not isinstance(result, dict):
        raise ProtocolError("wrong_type", f"{where}: result must be an object")
    ts = obj.get("ts")
    return CommandResponse(
        _require_str(obj, "request_id", where),
        _require_str(obj, "command", where),
        ok,
        result,
        str(obj.get("error", "")),
        ts if isinstance(ts, int) else None,
    )
