"""Property tests over every parser of outside input.

Each parser, given anything, either returns a valid value or raises the
project's typed error (``core.errors.SmartIotError`` and its kinds) — never
anything else. Every test counts the cases it ran; the session prints the
total (docs/reliability.md records it)."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CASES: Counter[str] = Counter()


def fuzz_settings(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck), derandomize=False)


def count(name: str) -> None:
    CASES[name] += 1


@pytest.fixture(autouse=True)
def _report_fuzz_cases(request: pytest.FixtureRequest) -> Iterator[None]:
    """Hands each test's case counts to the report (``user_properties``), which
    pytest-xdist carries from the worker to the controller; tests/conftest.py sums
    them into the "fuzz cases run" line, in a serial and a parallel run alike."""
    before = Counter(CASES)
    yield
    ran = CASES - before
    if ran:
        request.node.user_properties.append(("fuzz_cases", dict(ran)))


# ------------------------------------------------------------------ strategies
HOSTILE_TEXT = st.sampled_from([
    "", "\x00", "\ud800", "\u202e", "\u2066", "\x1b[31m", "é", "💥", "\\", '"', "\n",
    "a" * 200, "NaN", "Infinity", "-0", "1e999", "9" * 50,
])
SCALARS = st.one_of(
    st.none(), st.booleans(),
    st.integers(), st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12), HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | HOSTILE_TEXT, children, max_size=4),
    max_leaves=12,
)
# Raw fragments no JSON encoder writes: what hostile clients send.
RAW_HOSTILE = st.sampled_from([
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b"[" * 5000 + b"]" * 5000,
    b'{"v":' + b"9" * 5000 + b"}",
    b'{"v":' + b"9" * 4200 + b"}",
    b'{"v":1e999}', b'{"v":-1e999}', b'{"v":NaN}', b'{"v":Infinity}',
    b'{"v":"\\ud800"}', b'{"v":"\xff\xfe"}', b"\xef\xbb\xbf{}", b"\x00", b"",
    b'{"a":1,"a":2}', b"{" * 10, b'{"state":{"reported":' + b'{"x":' * 7 + b"1" + b"}" * 9,
])


def json_bytes(value: object) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def mutated(draw, base: st.SearchStrategy[bytes]) -> bytes:
    """A payload with a few bytes flipped, cut or spliced with hostile ones."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.integers(0, 3))
        at = draw(st.integers(0, len(data)))
        if kind == 0 and data:
            data[min(at, len(data) - 1)] = draw(st.integers(0, 255))
        elif kind == 1:
            del data[at:]
        elif kind == 2:
            data[at:at] = draw(st.sampled_from([b'"', b"{", b"}", b"[", b",", b":", b"\\",
                                                b"\xff", b"1e999", b"-", b"null"]))
        else:
            data[at:at] = draw(RAW_HOSTILE)[:64]
    return bytes(data)


_FRAGMENTS = (b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\", b"\xff", b"\xc3", b"1e999",
              b"-", b"null", b"NaN", b"9" * 30, b'"\\ud800"', b"\x00", b"\xe2\x80\xae")


def variants(payload: bytes, seed: int, n: int = 40) -> Iterator[bytes]:
    """``payload`` and ``n`` seeded mutations of it (flips, cuts, splices,
    repeats): a cheap mutational fuzzer around each case hypothesis draws, so
    the suite reaches its case count within its time budget."""
    rng = random.Random(seed)
    yield payload
    for _ in range(n):
        data = bytearray(payload)
        for _ in range(rng.randint(1, 4)):
            at = rng.randint(0, len(data))
            kind = rng.randint(0, 4)
            if kind == 0 and data:
                data[min(at, len(data) - 1)] = rng.randint(0, 255)
            elif kind == 1:
                del data[at:at + rng.randint(1, 8)]
            elif kind == 2:
                data[at:at] = rng.choice(_FRAGMENTS)
            elif kind == 3 and data:
                start = rng.randint(0, len(data) - 1)
                data[at:at] = data[start:start + rng.randint(1, 16)]
            else:
                del data[at:]
        yield bytes(data)


def payloads(valid: st.SearchStrategy[dict]) -> st.SearchStrategy[bytes]:
    """Mostly well-formed objects with hostile values, sometimes damaged bytes."""
    as_bytes = valid.map(json_bytes)
    return st.one_of(as_bytes, as_bytes, mutated(as_bytes), RAW_HOSTILE,
                     st.binary(max_size=64))
