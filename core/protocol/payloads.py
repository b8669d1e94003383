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

_orjson_loads: Callable[[bytes], Any] | None
try:  # ingestion's fast path (decode_telemetry); the json module decides the rest
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - a dependency; json alone still works
    _orjson_loads = None

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
_TELEMETRY_FIELDS_SUPERSET = TELEMETRY_FIELDS.issuperset


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

# Bounds a value must respect to be stored and summed anywhere downstream:
# seq is exact in a JSON number (2^53), uptime fits a century, readings stay far
# from float64 overflow even summed over millions of rows (PostgreSQL's bucket
# averages failed on two 1.7e308 readings), names fit their columns.
MAX_SEQ = 2**53 - 1
MAX_UPTIME_S = 100 * 366 * 86_400
MAX_METRIC_MAGNITUDE = 1e15
MAX_NAME_LENGTH = 64
MAX_TEXT_LENGTH = 256
# Documents (shadow, jobs, commands, status): nesting and integers an attacker
# could use to exhaust the stack or the database's number types.
MAX_DOCUMENT_DEPTH = 32
MAX_DOCUMENT_INT = 2**63 - 1
DEVICE_TYPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}")
FIRMWARE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9:_.+-]{0,63}")
# C0/C1 controls, and the bidirectional overrides/isolates that make a text
# display differently from what it is (CVE-2021-42574 "Trojan Source").
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e"
                          "\u2066-\u2069\ud800-\udfff]")

_SEQ_KEY = b'"seq"'
_SEQ_VALUE = re.compile(rb"\s*:\s*(\d{1,16})\s*[,}]")


def peek_seq(payload: bytes) -> int | None:
    """A telemetry payload's ``seq`` without decoding it, for a message the hub
    is about to drop (its inbox full): knowing which seqs it dropped itself, it
    does not await them as possibly late. None unless the key appears exactly
    once, outside a string, with a plain non-negative integer: a wrong answer
    would stop a lost seq from being awaited, so anything unusual is left to
    the full decoder's rules (the seq is then awaited, as for any gap)."""
    at = payload.find(_SEQ_KEY)
    if at <= 0 or payload.find(_SEQ_KEY, at + 5) >= 0 or payload[at - 1] == 0x5C:
        return None  # absent, repeated, or an escaped quote inside a string
    found = _SEQ_VALUE.match(payload, at + 5)
    if found is None:
        return None
    seq = int(found.group(1))
    return seq if seq <= MAX_SEQ else None



def has_unsafe_text(value: str) -> bool:
    """Control characters, bidirectional overrides or lone surrogates."""
    return _UNSAFE_TEXT.search(value) is not None


def _check_name(where: str, field_name: str, value: Any, pattern: re.Pattern[str]) -> str:
    if not isinstance(value, str):
        raise ProtocolError("wrong_type", f"{where}: {field_name} must be a string")
    if value and (len(value) > MAX_NAME_LENGTH or pattern.fullmatch(value) is None):
        shown = value[:MAX_NAME_LENGTH].encode("ascii", "backslashreplace").decode()
        raise ProtocolError(
            "invalid_name", f"{where}: {field_name} {shown!r} must be 1-{MAX_NAME_LENGTH} "
            "letters, digits or . _ : - (+ in versions), starting with a letter or digit")
    return value


class _NonFinite(ValueError):
    pass


class _OutOfRange(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonFinite(name)


def _bounded_int(text: str) -> int:
    # checked on the text first: int() of a 1 MB digit string is itself the attack
    if len(text.lstrip("-")) > 19 or abs(value := int(text)) > MAX_DOCUMENT_INT:
        raise _OutOfRange(f"integer of {len(text)} digits")
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if value != value or value in (_INF, -_INF):
        raise _NonFinite(text[:32])  # 1e999 parses to inf without the constants
    return value


def depth_exceeds(obj: Any, limit: int) -> bool:
    """Whether objects and arrays nest deeper than ``limit`` levels (the outermost
    counts as one). Iterative, so the check itself cannot overflow the stack."""
    stack: list[tuple[Any, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def decode_json_object(payload: bytes, what: str, *, document: bool = False) -> dict[str, Any]:
    """Parse one JSON object from outside; anything wrong raises ``ProtocolError``.

    Whatever the bytes, nothing else escapes: deep nesting (``RecursionError``),
    integers over 4,300 digits (``ValueError``), invalid UTF-8, lone surrogates.
    ``document=True`` (shadow, jobs, commands, status) also bounds integers to
    64 bits, refuses numbers that overflow to infinity, strings that are not
    valid Unicode, and nesting deeper than ``MAX_DOCUMENT_DEPTH``."""
    if not isinstance(payload, bytes | bytearray | memoryview):
        raise ProtocolError("malformed_json", f"{what} is not bytes")
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ProtocolError(
            "oversized", f"{what} is {len(payload)} bytes; the limit is {MAX_PAYLOAD_BYTES}"
        )
    try:
        if document:
            obj = json.loads(bytes(payload), parse_constant=_reject_constant,
                             parse_int=_bounded_int, parse_float=_finite_float)
        else:
            obj = json.loads(bytes(payload), parse_constant=_reject_constant)
    except _NonFinite as exc:
        raise ProtocolError("non_finite", f"{what} contains {exc.args[0]}, not a number") from None
    except _OutOfRange as exc:
        raise ProtocolError("out_of_range", f"{what} contains an {exc.args[0]}; at most "
                                            "64-bit integers are accepted") from None
    except UnicodeDecodeError as exc:
        raise ProtocolError("invalid_encoding",
                            f"{what} is not UTF-8 text (byte {exc.start})") from None
    except RecursionError:
        raise ProtocolError("too_deep", f"{what} is nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise ProtocolError("malformed_json", f"{what} is not valid JSON: {exc}") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:
        # e.g. an integer over 4,300 digits (int's own limit)
        raise ProtocolError("malformed_json",
                            f"{what} is not valid JSON: {type(exc).__name__}: "
                            f"{str(exc)[:200]}") from None
    if not isinstance(obj, dict):
        raise ProtocolError("not_object", f"{what} must be a JSON object, got {type(obj).__name__}")
    if document:
        if depth_exceeds(obj, MAX_DOCUMENT_DEPTH):
            raise ProtocolError("too_deep", f"{what} is nested deeper than "
                                            f"{MAX_DOCUMENT_DEPTH} levels")
        try:
            _ENCODER.encode(obj).encode()  # ensure_ascii: lone surrogates would pass
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("invalid_encoding",
                                f"{what} contains text that is not valid Unicode") from None
        except (ValueError, RecursionError) as exc:
            raise ProtocolError("malformed_json", f"{what} cannot be stored: "
                                                  f"{type(exc).__name__}") from None
    return obj


_PLAIN_NUMBERS = frozenset({float, int})
# What passed its check once (metric names, device ids, (type, fw) pairs); bounded,
# so hostile names cannot grow them, and looked up instead of matched again.
_VALID_CACHE_LIMIT = 100_000
_VALID_METRICS: set[str] = set()
_VALID_IDS: set[str] = set()
_VALID_TYPE_FW: set[tuple[str, str]] = set()


def _remember(cache: set[Any], value: Any) -> None:
    if len(cache) >= _VALID_CACHE_LIMIT:
        cache.clear()
    cache.add(value)


def _plain_metric_names(metrics: dict[str, Any]) -> bool:
    for name in metrics:
        if name not in _VALID_METRICS:
            if type(name) is not str or METRIC_PATTERN.fullmatch(name) is None:
                return False
            _remember(_VALID_METRICS, name)
    return True


def _plain_type_fw(pair: tuple[Any, Any]) -> bool:
    device_type, firmware = pair
    if type(device_type) is not str or type(firmware) is not str:
        return False
    for value, pattern in ((device_type, DEVICE_TYPE_PATTERN), (firmware, FIRMWARE_PATTERN)):
        if value and (len(value) > MAX_NAME_LENGTH or pattern.fullmatch(value) is None):
            return False
    _remember(_VALID_TYPE_FW, pair)
    return True


def _plain_telemetry(obj: Any, topic_device_id: str, now_ms: int) -> Telemetry | None:
    """The common case at C speed, on what orjson parsed: the same checks as the
    reference path below, on the plain types orjson yields. None whenever
    anything is unusual (a type is not the plain one, a field is missing or
    unknown, a bound is crossed): the reference path then decides, so what is
    refused, and why, is exactly what it always was, and an accepted message
    gives the same Telemetry. orjson differs from ``json`` only on input that
    path judges (integers beyond 64 bits read as floats, lone surrogates, BOMs,
    NaN and infinities are errors), and all of that falls through to it."""
    if type(obj) is not dict or not _TELEMETRY_FIELDS_SUPERSET(obj):
        return None
    try:
        device_id, seq, ts, metrics = obj["device_id"], obj["seq"], obj["ts"], obj["metrics"]
    except KeyError:
        return None
    if (device_id != topic_device_id or type(seq) is not int or type(ts) is not int
            or type(metrics) is not dict or not metrics or not 0 <= seq <= MAX_SEQ
            or not now_ms - MAX_PAST_MS <= ts <= now_ms + MAX_FUTURE_MS):
        return None
    if device_id not in _VALID_IDS:
        if not is_valid_device_id(device_id):
            return None
        _remember(_VALID_IDS, device_id)
    values = metrics.values()
    kinds = set(map(type, values))
    if not kinds <= _PLAIN_NUMBERS or not (
            min(values) >= -MAX_METRIC_MAGNITUDE and max(values) <= MAX_METRIC_MAGNITUDE):
        return None  # bools, strings, nested values, out of range: judged below
    if not _VALID_METRICS.issuperset(metrics) and not _plain_metric_names(metrics):
        return None
    if int in kinds:
        metrics = {name: float(value) for name, value in metrics.items()}
    type_fw = (obj.get("type", ""), obj.get("fw", ""))
    if type_fw not in _VALID_TYPE_FW and not _plain_type_fw(type_fw):
        return None
    uptime = obj.get("uptime")
    if uptime is not None and (type(uptime) is not int or not 0 <= uptime <= MAX_UPTIME_S):
        return None
    return Telemetry(device_id, seq, ts, metrics, type_fw[0], type_fw[1], uptime)


def decode_telemetry(payload: bytes, *, topic_device_id: str, now_ms: int) -> Telemetry:
    """Validate a telemetry message against its topic and the receiver's clock."""
    if _orjson_loads is not None and type(payload) is bytes and (
            len(payload) <= MAX_PAYLOAD_BYTES):
        try:
            parsed = _orjson_loads(payload)
        except Exception:  # noqa: BLE001 - the reference path names the problem
            parsed = None
        plain = _plain_telemetry(parsed, topic_device_id, now_ms)
        if plain is not None:
            return plain
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
        raise ProtocolError("wrong_type",
                            f"{where}: seq {_short(seq)} must be a non-negative integer")
    if seq > MAX_SEQ:
        raise ProtocolError("out_of_range", f"{where}: seq {_short(seq)} is over 2^53 - 1")
    if isinstance(ts, bool) or not isinstance(ts, int):
        raise ProtocolError("wrong_type", f"{where}: ts {_short(ts)} must be epoch milliseconds")
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
            raise ProtocolError("wrong_type",
                                f"{where}: metric {name} = {_short(value)} is not a number")
        if isinstance(value, float) and not math.isfinite(value):
            raise ProtocolError("non_finite", f"{where}: metric {name} = {value!r} is not finite")
        if not -MAX_METRIC_MAGNITUDE <= value <= MAX_METRIC_MAGNITUDE:
            raise ProtocolError("out_of_range", f"{where}: metric {name} = {_short(value)} is "
                                                f"beyond ±{MAX_METRIC_MAGNITUDE:g}")
        clean[name] = float(value)
    device_type = _check_name(where, "type", obj.get("type", ""), DEVICE_TYPE_PATTERN)
    firmware = _check_name(where, "fw", obj.get("fw", ""), FIRMWARE_PATTERN)
    uptime = obj.get("uptime")
    if uptime is not None:
        if isinstance(uptime, bool) or not isinstance(uptime, int):
            raise ProtocolError("wrong_type",
                                f"{where}: uptime {_short(uptime)} must be whole seconds")
        if not 0 <= uptime <= MAX_UPTIME_S:
            raise ProtocolError("out_of_range", f"{where}: uptime {_short(uptime)} must be "
                                                f"0-{MAX_UPTIME_S} seconds")
    return Telemetry(device_id, seq, ts, clean, device_type, firmware, uptime)


def _short(value: Any) -> str:
    """A value for an error message: never the whole of a hostile one (a repr of
    a 4,000-digit integer is itself slow, and an error text is stored)."""
    if isinstance(value, int) and not isinstance(value, bool) and (
            value.bit_length() > 64):
        return f"<integer of {value.bit_length()} bits>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


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
    obj = decode_json_object(payload, where, document=True)
    state = obj.get("state")
    if state not in ("online", "offline"):
        raise ProtocolError("wrong_type",
                            f"{where}: state {_short(state)} must be online or offline")
    ts = obj.get("ts")
    if ts is not None and (isinstance(ts, bool) or not isinstance(ts, int)
                           or not 0 <= ts <= MAX_SEQ):
        raise ProtocolError("wrong_type", f"{where}: ts {_short(ts)} must be epoch milliseconds")
    device_type = _check_name(where, "type", obj.get("type", ""), DEVICE_TYPE_PATTERN)
    firmware = _check_name(where, "fw", obj.get("fw", ""), FIRMWARE_PATTERN)
    reason = obj.get("reason", "")
    if not isinstance(reason, str) or len(reason) > MAX_TEXT_LENGTH or has_unsafe_text(reason):
        raise ProtocolError("wrong_type", f"{where}: reason must be text of at most "
                                          f"{MAX_TEXT_LENGTH} characters without control "
                                          "characters")
    return Status(state, ts, device_type, firmware, reason)


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
    if len(value) > 128 or has_unsafe_text(value):
        raise ProtocolError("wrong_type", f"{where}: {name!r} must be at most 128 characters "
                                          "without control characters")
    return value


def decode_command_request(payload: bytes, *, where: str = "command") -> CommandRequest:
    obj = decode_json_object(payload, where, document=True)
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
    obj = decode_json_object(payload, where, document=True)
    ok = obj.get("ok")
    if not isinstance(ok, bool):
        raise ProtocolError("wrong_type", f"{where}: 'ok' must be true or false")
    result = obj.get("result", {})
    if not isinstance(result, dict):
        raise ProtocolError("wrong_type", f"{where}: result must be an object")
    ts = obj.get("ts")
    error = obj.get("error", "")
    if not isinstance(error, str):
        raise ProtocolError("wrong_type", f"{where}: error must be a string")
    return CommandResponse(
        _require_str(obj, "request_id", where),
        _require_str(obj, "command", where),
        ok,
        result,
        error[:1024],
        ts if isinstance(ts, int) else None,
    )
