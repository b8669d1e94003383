"""Shards add up: a shard steps only its own blocks of devices, and the union of
the shards' publishes is, per device, byte for byte what one process publishes
for the same seeded scenario, on every model and with every kind of fault."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import simulator.fleet as fleet_module
from simulator.faults import FaultPlan, FaultSpec, Outgoing
from simulator.fleet import DeviceGroup, Fleet
from simulator.models import BUILTIN_MODELS
from simulator.source import shard_indexes

START = 1_725_148_800.0  # 2024-09-01T00:00:00Z
Published = dict[int, list[tuple[float, bytes]]]  # device -> (time, payload) in order


def _groups(per_model: int) -> list[DeviceGroup]:
    return [DeviceGroup(f"g-{name}", name, per_model, interval_s=1.0 + k * 0.5)
            for k, name in enumerate(sorted(BUILTIN_MODELS))]


FAULTS = FaultPlan([
    FaultSpec("spike", {"p": 0.3}, start_s=2, fraction=0.5),
    FaultSpec("stuck", start_s=4, duration_s=6, fraction=0.3),
    FaultSpec("drift", {"rate_per_h": 50.0}, fraction=0.4),
    FaultSpec("out_of_range", {"p": 0.2}, start_s=3, duration_s=4, fraction=0.3),
    FaultSpec("nan", {"p": 0.2}, start_s=6, duration_s=3, fraction=0.3),
    FaultSpec("drop", start_s=5, duration_s=4, fraction=0.2),
    FaultSpec("flap", {"period_s": 4.0, "down_s": 1.0}, fraction=0.2),
    FaultSpec("reboot", start_s=7, fraction=0.3),
    FaultSpec("battery_depletion", {"factor": 1e6}, fraction=0.1),
    FaultSpec("bearing_failure", {"time_to_failure_s": 10.0}, start_s=1, fraction=0.5,
              group="g-pump"),
    FaultSpec("loss", {"p": 0.2}, fraction=0.6),
    FaultSpec("duplicate", {"p": 0.2}, fraction=0.6),
    FaultSpec("malformed", {"p": 0.2}, start_s=2, fraction=0.6),
    FaultSpec("reorder", {"p": 0.3, "window": 3}, fraction=0.6),
    FaultSpec("burst", start_s=8, duration_s=3, fraction=0.3),
])


def _run(per_model: int, shard: tuple[int, int], seconds: int,
         faults: FaultPlan | None) -> tuple[Published, Fleet]:
    fleet = Fleet(_groups(per_model), seed=11, start_s=START, faults=faults)
    if shard[1] > 1:
        owned = np.zeros(fleet.size, dtype=bool)
        owned[shard_indexes(fleet, shard)] = True
        fleet.owned = owned
    out: Published = defaultdict(list)
    messages: list[Outgoing] = list(fleet.generate(seconds, step_s=0.5))
    for m in messages:
        out[m.device].append((m.t_s, m.payload))
    return out, fleet


def _union(parts: list[Published]) -> Published:
    union: Published = {}
    for part in parts:
        assert not union.keys() & part.keys(), "two shards published for the same device"
        union.update(part)
    return union


@pytest.mark.parametrize("shards", [2, 3, 5])
def test_union_of_shards_is_the_single_process_output(monkeypatch: pytest.MonkeyPatch,
                                                      shards: int) -> None:
    monkeypatch.setattr(fleet_module, "BLOCK_SIZE", 4)
    monkeypatch.setattr(fleet_module, "MIN_BLOCKS", 3)
    whole, one = _run(10, (1, 1), 14, FAULTS)
    assert [len(gs.blocks) for gs in one.groups] == [3] * 4  # blocks of 4, 4, 2
    parts = [_run(10, (i, shards), 14, FAULTS)[0] for i in range(1, shards + 1)]
    union = _union(parts)
    assert union.keys() == whole.keys()
    assert union == whole
    # The faults did something: readings lost, corrupted, duplicated, NaN, rebooted.
    payloads = [p for msgs in whole.values() for _t, p in msgs]
    assert any(not p.startswith(b"{") or not p.endswith(b"}") for p in payloads)
    assert len(payloads) != len(set(payloads))
    assert any(b"NaN" in p or b"null" in p for p in payloads)


def test_a_shard_steps_only_its_own_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleet_module, "BLOCK_SIZE", 4)
    monkeypatch.setattr(fleet_module, "MIN_BLOCKS", 3)
    fleet = Fleet(_groups(10), seed=3, start_s=START)
    mine = shard_indexes(fleet, (2, 3))
    owned = np.zeros(fleet.size, dtype=bool)
    owned[mine] = True
    fleet.owned = owned
    stepped = [(gs.offset + b.lo, gs.offset + b.hi) for gs in fleet.groups
               for b in gs.blocks if b.stepped]
    assert sorted(i for lo, hi in stepped for i in range(lo, hi)) == sorted(mine)
    # Every device belongs to exactly one shard.
    every = sorted(i for k in (1, 2, 3) for i in shard_indexes(fleet, (k, 3)))
    assert every == list(range(fleet.size))
    # A block not stepped is never advanced: its models stay where they started.
    idle = next(b for gs in fleet.groups for b in gs.blocks if not b.stepped)
    before = idle.battery.soc.copy()
    fleet.tick(START + 5.0)
    assert np.array_equal(idle.battery.soc, before)


def test_block_sizes_and_the_real_sizes_add_up() -> None:
    sizes = {n: Fleet([DeviceGroup("g", "environmental", n)]).groups[0].block_size
             for n in (1, 10, 1000, 4000, 10_000)}
    assert sizes == {1: 1, 10: 2, 1000: 125, 4000: 500, 10_000: 500}
    whole, _ = _run(60, (1, 1), 4, FAULTS)  # blocks of 8 at the real sizes
    union = _union([_run(60, (i, 3), 4, FAULTS)[0] for i in (1, 2, 3)])
    assert union == whole and len(whole) > 200  # a few lost every message to faults


def test_a_shard_without_devices_is_refused() -> None:
    fleet = Fleet([DeviceGroup("g", "environmental", 3)])
    assert [shard_indexes(fleet, (i, 3)) for i in (1, 2, 3)] == [[0], [1], [2]]
    with pytest.raises(ValueError, match="shard 4/4 gets no devices"):
        shard_indexes(fleet, (4, 4))


def test_other_sources_are_dealt_round_robin() -> None:
    class Plain:
        size = 7

    assert shard_indexes(Plain(), (2, 3)) == [1, 4]  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="1 <= i <= n"):
        shard_indexes(Plain(), (4, 3))  # type: ignore[arg-type]
