"""The telemetry the runtime publishes: Telemetry.encode's shortcuts write exactly
the bytes of the json path, for every built-in model and for awkward values."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from core.protocol.payloads import Telemetry
from simulator.models import BUILTIN_MODELS
from simulator.scenario import single_group

START = 1_700_000_000.0

AWKWARD = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-4, -1e-4, 9.9995e-5,
           0.00009995, 0.0000995, 0.00010000049, 5e-7, 4.9999999e-7, -5e-7, 1e-7, 1.5e-6,
           2.5e-6, 0.1, 0.5, 17.5, 100.0, -3.25, 1e9, -1e9, 999999999.9999996, 2.0**33,
           1e16, 1e300, True, False, 0, 1, -3, 10**12, np.float64(1.2345675),
           np.float32(0.1), np.int64(7)]


def same(metrics: dict, uptime: int | None = 5) -> None:
    m = Telemetry("dev-1", 3, 1_700_000_000_123, metrics, "environmental", "1.0.0", uptime)
    assert m.encode() == m._encode_json(), metrics


@pytest.mark.parametrize("model", sorted(BUILTIN_MODELS))
def test_encode_matches_json_for_every_model(model):
    fleet = single_group(300, model, interval_s=1.0).build_fleet(seed=4, start_s=START)
    for step in range(1, 6):
        for _index, telemetry in fleet.tick(START + step):
            assert telemetry.encode() == telemetry._encode_json()


@pytest.mark.parametrize("value", AWKWARD, ids=repr)
def test_encode_matches_json_for_awkward_values(value):
    same({"a": value})
    same({"zz": 1.5, "a": value, "m": -2.0}, uptime=None)


def test_encode_matches_json_for_random_doubles_and_keys():
    rng = random.Random(9)
    names = ["temperature", "a", "b%s", "x\"y", "é", "z"]
    for _ in range(3000):
        values = []
        for _ in range(rng.randrange(1, 6)):
            exponent = rng.randrange(1023 - 40, 1023 + 40)
            bits = (rng.getrandbits(1) << 63) | (exponent << 52) | rng.getrandbits(52)
            values.append(struct.unpack("<d", struct.pack("<Q", bits))[0])
        values.append((rng.randrange(-10**9, 10**9) + 0.5) / 1e6)  # near a rounding tie
        same(dict(zip(rng.sample(names, len(names)), values, strict=False)))


def test_encode_with_non_str_keys_and_empty_metrics_uses_json():
    same({})
    same({2: 2.0, 1: 1.0})


def test_telemetry_is_still_a_frozen_dataclass():
    import dataclasses

    m = Telemetry("dev-1", 3, 5, {"a": 1.0}, uptime_s=7)
    assert m == Telemetry(device_id="dev-1", seq=3, ts_ms=5, metrics={"a": 1.0}, uptime_s=7)
    assert (m.device_type, m.firmware) == ("", "")
    assert dataclasses.replace(m, seq=4).seq == 4
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.seq = 9  # type: ignore[misc]
