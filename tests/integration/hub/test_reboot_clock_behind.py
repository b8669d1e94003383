"""A device without a battery-backed clock comes back from a reboot with its clock
behind until NTP sets it: its new boot dates *earlier* than the one before. The
hub must still see a new boot and store its readings (they were quarantined as
``out_of_order`` until ``seq`` passed the old value), and still judge a late
reading of the old boot against that boot."""

from __future__ import annotations

import json

import pytest

from core.ingest.ingestor import Inbound, Ingestor
from core.ingest.registry_cache import RegistryCache
from core.store import Store

T0 = 1_795_000_000_000  # epoch ms of the first boot (the device's clock was right)
HOUR_MS = 3_600_000
INTERVAL_S = 5


def reading(seq: int, uptime: int, boot_at: int) -> Inbound:
    ts = boot_at + uptime * 1000
    body = {"device_id": "p1", "seq": seq, "ts": ts, "type": "pump", "fw": "1.0.0",
            "metrics": {"t": float(seq)}, "uptime": uptime}
    return Inbound("dt/acme/p1/telemetry", json.dumps(body).encode(), ts)


def online(connect_at: int) -> Inbound:
    body = {"state": "online", "ts": connect_at, "type": "pump", "fw": "1.0.0"}
    return Inbound("dt/acme/p1/status", json.dumps(body).encode(), connect_at)


@pytest.fixture
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield store
    store.close()


def first_boot(ingestor: Ingestor) -> int:
    """~1,100 s up, one reading every 5 s; returns when (real time) it rebooted."""
    seqs = range(221)
    result = ingestor.process([reading(s, s * INTERVAL_S, T0) for s in seqs],
                              T0 + 1_101_000)
    assert len(result.readings) == 221 and result.quarantined == []
    return T0 + 1_103_000


@pytest.mark.parametrize("with_status", [False, True])
def test_a_reboot_with_the_clock_an_hour_behind_keeps_its_readings(store, with_status):
    ingestor = Ingestor(RegistryCache(store.registry))
    rebooted = first_boot(ingestor)
    behind = rebooted - HOUR_MS  # the new boot's start, by its own clock
    batch = [online(behind + 800)] if with_status else []
    batch += [reading(s, 1 + s * INTERVAL_S, behind) for s in range(3)]
    result = ingestor.process(batch, rebooted + 12_000)
    assert result.quarantined == []
    assert [r.value for r in result.readings] == [0.0, 1.0, 2.0]
    stats = ingestor.stats["p1"]
    assert (stats.reboots, stats.lost, stats.duplicates, stats.out_of_order) == (1, 0, 0, 0)
    # a late reading of the old boot is judged against that boot: a repeat here
    late = ingestor.process([reading(219, 219 * INTERVAL_S, T0)], rebooted + 13_000)
    assert late.readings == [] and [m.reason for m in late.quarantined] == ["duplicate"]
    assert "previous boot" in late.quarantined[0].detail
    assert ingestor.stats["p1"].reboots == 1


def test_a_reconnect_status_tells_the_reboot_when_its_first_readings_were_lost(store):
    ingestor = Ingestor(RegistryCache(store.registry))
    rebooted = first_boot(ingestor)
    behind = rebooted - HOUR_MS
    batch = [online(behind + 800)] + [reading(s, 1 + s * INTERVAL_S, behind) for s in (5, 6)]
    result = ingestor.process(batch, rebooted + 40_000)
    assert result.quarantined == [] and [r.value for r in result.readings] == [5.0, 6.0]
    stats = ingestor.stats["p1"]
    assert (stats.reboots, stats.lost) == (1, 5)
