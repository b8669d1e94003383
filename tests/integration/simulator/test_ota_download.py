"""Device downloads over real loopback HTTP from the hub's own firmware file
server: byte ranges, resume after a stall or a power loss, expiring URLs."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from core.crypto import codesign
from core.model import Firmware, SemVer
from core.store import Store
from plugins.local.jobs.file_server import FirmwareFileServer
from simulator.ota.download import http_fetch
from simulator.ota.faults import OtaFaults
from tests.integration.hub.conftest import wait_until
from tests.unit.simulator.test_ota_device import KEY, Harness, document, image

SIZE = 150_000
DATA = image(SIZE, seed=4)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'fw.db'}")
    store.firmware.add(Firmware(SemVer.parse("1.1.0"), "pump", SIZE,
                                hashlib.sha256(DATA).hexdigest(),
                                signature=codesign.sign(KEY, DATA)), DATA)
    clock = Clock()
    server = FirmwareFileServer(store.firmware, expiry_s=60, clock=clock).start()
    yield server, clock
    server.stop()
    store.close()


def url(server: FirmwareFileServer) -> str:
    found = server.url_for("firmware/pump@1.1.0")
    assert found is not None
    return found


def test_range_requests(served):
    server, clock = served
    first = http_fetch(url(server), 0, 999)
    assert (first.status, first.data, first.total) == (206, DATA[:1000], SIZE)
    tail = http_fetch(url(server), SIZE - 10, SIZE + 500)
    assert tail.status == 206 and tail.data == DATA[-10:]
    beyond = http_fetch(url(server), SIZE, SIZE + 10)
    assert beyond.past_end and beyond.total == SIZE
    old = url(server)
    clock.now += 120
    assert http_fetch(old, 0, 10).expired
    assert http_fetch(url(server), 0, 10).ok
    assert http_fetch("http://127.0.0.1:9/nothing", 0, 10).status == 0  # nobody listens


class HttpHarness(Harness):
    """The unit-test harness with its file server swapped for the real one."""

    def __init__(self, server: FirmwareFileServer, **kw: Any) -> None:
        self.server = server
        super().__init__({}, **kw)

    def _fresh(self, ex: Any) -> dict[str, Any]:
        wire = ex.wire()
        wire["jobDocument"] = {**wire["jobDocument"], "url": url(self.server)}
        return wire

    def fetch(self, target: str, start: int, end: int, done: Any) -> None:
        self.fetches.append((start, end))
        result = http_fetch(target, start, end)
        self.clock.at(0.05, lambda: done(result))


@pytest.mark.parametrize("faults", [
    OtaFaults(stall_p=1.0, stall_s=30.0),
    OtaFaults(power_loss_p=1.0, power_loss_step="downloading"),
    OtaFaults(stall_p=1.0, power_loss_p=1.0, power_loss_step="downloading"),
], ids=["stall", "power-loss", "both"])
def test_download_resumes_where_it_stopped(served, faults):
    server, _clock = served
    h = HttpHarness(server, faults=faults, seed=3)
    h.queue_job(document(DATA))
    h.clock.run()
    assert h.execution().status == "SUCCEEDED" and h.firmware == "1.1.0"
    starts = [s for s, _e in h.fetches]
    assert starts == sorted(set(starts)) and starts[0] == 0  # never from 0 again
    # every byte served once (the server counts after sending: let it finish)
    wait_until(lambda: server.counters["bytes_sent"] >= SIZE, 10)
    assert server.counters["bytes_sent"] == SIZE
    if faults.power_loss_p:
        assert h.device.power_losses == 1 and h.restarts == 2


def test_expired_url_mid_download_is_refreshed(served):
    server, clock = served
    h = HttpHarness(server, chunk=16_384)
    h.queue_job(document(DATA))
    h.clock.run(until=0.25)
    assert 0 < len(h.fetches) < SIZE // 16_384
    clock.now += 120  # every URL handed out so far has expired
    h.clock.run()
    assert h.execution().status == "SUCCEEDED"
    assert server.counters["refused"] == 1
    wait_until(lambda: server.counters["bytes_sent"] >= SIZE, 10)
    assert server.counters["bytes_sent"] == SIZE
