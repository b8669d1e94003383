"""Fleet.tick_messages (the runtime's batch path, TelemetryRows) writes exactly the
bytes of the reference path, Telemetry.encode of each message from Fleet.tick: for
every built-in model, with value faults active (NaN, out of range, spikes, stuck,
drift), reboots, OTA firmware changes, awkward strings, shards and message faults."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from core.protocol.payloads import Telemetry, TelemetryRows, json_str
from simulator.faults import FaultPlan, FaultSpec, Outgoing
from simulator.fleet import DeviceGroup, Fleet
from simulator.models import BUILTIN_MODELS

from .conftest import MONDAY

VALUE_FAULTS = [
    FaultSpec("nan", {"p": 0.3}, fraction=0.3),
    FaultSpec("out_of_range", {"p": 0.3}, start_s=2, fraction=0.3),
    FaultSpec("spike", {"p": 0.3}, fraction=0.5),
    FaultSpec("stuck", start_s=3, duration_s=6, fraction=0.2),
    FaultSpec("drift", start_s=1, fraction=0.2),
    FaultSpec("reboot", start_s=4, fraction=0.2),
    FaultSpec("drop", start_s=5, duration_s=3, fraction=0.1),
]
MESSAGE_FAULTS = [
    FaultSpec("loss", {"p": 0.1}),
    FaultSpec("duplicate", {"p": 0.1}),
    FaultSpec("reorder", {"p": 0.2, "window": 2}),
    FaultSpec("malformed", {"p": 0.05}),
    FaultSpec("burst", start_s=4, duration_s=5, fraction=0.2),
]


def pair(groups, faults=(), seed=3):
    def build():
        return Fleet(groups, seed=seed, start_s=MONDAY, faults=FaultPlan(list(faults)))
    return build(), build()


def compare(reference: Fleet, fast: Fleet, times) -> int:
    """Tick both fleets; the payloads (and devices, in order) must be equal."""
    count = 0
    for t in times:
        expected = [(i, m.encode()) for i, m in reference.tick(t)]
        got = fast.tick_messages(t)
        assert all(type(o) is Outgoing and o.t_s == t for o in got)
        assert [(o.device, o.payload) for o in got] == expected, t
        count += len(expected)
    return count


@pytest.mark.parametrize("model", sorted(BUILTIN_MODELS))
def test_every_model_byte_identical(model):
    reference, fast = pair([DeviceGroup("g", model, 400, interval_s=1.0)])
    assert compare(reference, fast, [MONDAY + k * 0.5 for k in range(1, 13)]) > 2000


@pytest.mark.parametrize("model", sorted(BUILTIN_MODELS))
def test_every_model_byte_identical_with_value_faults(model):
    reference, fast = pair([DeviceGroup("g", model, 300, interval_s=1.0)], VALUE_FAULTS)
    assert compare(reference, fast, [MONDAY + k for k in range(1, 12)]) > 1500
    # the faults did produce values only the per-message path writes
    fleet = Fleet([DeviceGroup("g", model, 300, interval_s=1.0)], seed=3, start_s=MONDAY,
                  faults=FaultPlan(VALUE_FAULTS))
    payloads = [m.encode() for k in range(1, 12) for _, m in fleet.tick(MONDAY + k)]
    assert any(b"NaN" in p for p in payloads)


def test_mixed_groups_odd_strings_firmware_changes_and_shards():
    groups = [
        DeviceGroup("env", "environmental", 50, interval_s=2.0, device_type='we"ird%s\\type',
                    firmware="1.0.0-%d"),
        DeviceGroup("meters", "power_meter", 40, interval_s=1.0, id_prefix="pm",
                    firmware="é-2"),
        DeviceGroup("empty", "pump", 0),
        DeviceGroup("pumps", "pump", 60, interval_s=0.5, org="plant-7"),
        DeviceGroup("cars", "tracker", 30, interval_s=1.0),
    ]
    reference, fast = pair(groups, VALUE_FAULTS)
    times = [MONDAY + k * 0.5 for k in range(1, 30)]
    compare(reference, fast, times[:8])
    for fleet in (reference, fast):  # OTA: longer, shorter and non-ASCII versions
        fleet.set_firmware(3, "2.0.0-a-much-longer-version-string")
        fleet.set_firmware(60, "3")
        fleet.set_firmware(100, 'ü"\n')
        fleet.reboot(101)
        fleet.set_interval(102, 0.5)
    compare(reference, fast, times[8:])

    owned = np.zeros(reference.size, dtype=bool)
    owned[1::3] = True
    reference, fast = pair(groups, VALUE_FAULTS)
    reference.owned, fast.owned = owned, owned.copy()
    compare(reference, fast, times)
    whole = pair(groups, VALUE_FAULTS)[1]
    shard_out = [(o.device, o.payload) for t in times[:6] for o in fast_shard(groups, owned, t)]
    whole_out = [(o.device, o.payload) for t in times[:6] for o in whole.tick_messages(t)]
    assert shard_out == [(i, p) for i, p in whole_out if owned[i]]


_SHARDS: dict[int, Fleet] = {}


def fast_shard(groups, owned, t):
    fleet = _SHARDS.get(id(owned))
    if fleet is None:
        fleet = _SHARDS[id(owned)] = Fleet(groups, seed=3, start_s=MONDAY,
                                           faults=FaultPlan(list(VALUE_FAULTS)))
        fleet.owned = owned
    return fleet.tick_messages(t)


def test_generate_with_message_faults_matches_the_reference_loop():
    groups = [DeviceGroup("env", "environmental", 40, interval_s=1.0),
              DeviceGroup("pumps", "pump", 30, interval_s=2.0)]
    reference, fast = pair(groups, VALUE_FAULTS + MESSAGE_FAULTS)
    expected = []
    t = MONDAY
    for k in range(20):
        t = MONDAY + k
        batch = [Outgoing(t, i, m.encode()) for i, m in reference.tick(t)]
        expected += reference.apply_message_faults(t, batch)
    expected += reference.flush(t)
    got = list(fast.generate(20.0))
    assert got == expected
    assert any(b"NaN" in o.payload for o in got)


AWKWARD = [0.0, -0.0, float("nan"), float("inf"), -float("inf"), 1e-4, -1e-4, 1.5e-4,
           -1.5e-4, 9.9995e-5, 0.0000995, 0.00010000049, 5e-7, 4.9999999e-7, -5e-7, 1e-7,
           1.5e-6, 2.5e-6, 0.1, 0.5, 17.5, 100.0, -3.25, 1e9, -1e9, 999999999.9999996,
           999999999.4, -999999999.9999, 2.0**33, 1e16, 1e300, -1e300, 0.0000005,
           0.0000015, 2.0000005, 1234.5678905, 5e-324]


def reference(names, row_values, seq=7, uptime=11, fw="1.0.0"):
    m = Telemetry("dev-1", seq, 1_700_000_000_123, dict(zip(names, row_values, strict=True)),
                  "environmental", fw, uptime)
    return m.encode()


def encode_rows(names, rows, seqs=None, uptimes=None):
    encoder = TelemetryRows(names)
    n = len(rows)
    columns = [np.array([row[names.index(k)] for row in rows], dtype=np.float64)
               for k in encoder.names]
    return encoder.encode(1_700_000_000_123, "environmental",
                          np.array([json_str("dev-1").encode()] * n),
                          np.array(seqs or [7] * n, dtype=np.int64),
                          json_str("1.0.0").encode(), columns,
                          np.array(uptimes or [11] * n, dtype=np.int64))


def test_rows_encoder_on_awkward_values():
    names = ["zz", "a%s", 'q"', "m"]
    rows = [(v, 1.5, -2.0, 3.25) for v in AWKWARD] + [(1.5, v, v, -v) for v in AWKWARD]
    out = encode_rows(names, rows)
    for row, payload in zip(rows, out, strict=True):
        assert payload is None or payload == reference(names, row), row
    # ordinary values never need the per-message path
    assert all(p is not None for p in encode_rows(names, [(0.1, 0.0, -0.0, 17.5)] * 3))
    assert any(p is not None for p in out)


def test_rows_encoder_on_random_doubles_and_ties():
    rng = random.Random(5)
    names = ["temperature", "b", "x"]
    rows = []
    for _ in range(4000):
        row = []
        for _ in range(2):
            exponent = rng.randrange(1023 - 14, 1023 + 30)
            bits = (rng.getrandbits(1) << 63) | (exponent << 52) | rng.getrandbits(52)
            row.append(struct.unpack("<d", struct.pack("<Q", bits))[0])
        tie = (rng.randrange(-10**12, 10**12) + 0.5) / 1e6  # at or near a tie
        rows.append((*row, tie))
        rows.append((*row, rng.uniform(-1e4, 1e4)))
    out = encode_rows(names, rows)
    fast = 0
    for row, payload in zip(rows, out, strict=True):
        if payload is not None:
            fast += 1
            assert payload == reference(names, row), row
    assert fast > 3000


def test_rows_encoder_on_integers_and_negative_uptime():
    names = ["a"]
    rows = [(1.0,)] * 4
    seqs = [0, 9, 10, 2**62]
    uptimes = [0, 10, 99999999999, -1]
    out = encode_rows(names, rows, seqs, uptimes)
    assert out[3] is None
    for k in range(3):
        assert out[k] == reference(names, rows[k], seqs[k], uptimes[k])
    assert encode_rows(names, []) == []
