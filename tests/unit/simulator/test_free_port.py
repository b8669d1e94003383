"""Listeners (the embedded broker, the sandbox, a hub's API) get a port outside
the kernel's ephemeral range, so no outgoing connection on the machine can take
it between the check and the bind."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from simulator import broker


def test_a_free_port_comes_from_below_the_ephemeral_range_and_can_be_bound(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text("32768\t60999\n")
    monkeypatch.setattr(broker, "EPHEMERAL_RANGE_FILE", ranges)
    ports = {broker.find_free_port() for _ in range(20)}
    assert all(broker.LISTEN_PORTS_FROM <= port < 32768 for port in ports), ports
    assert len(ports) > 10  # random: two processes asking at once rarely agree
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports.pop()))


def test_a_taken_port_is_never_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = listener.getsockname()[1]
        # A range of one taken port: the pick falls back to the kernel's choice.
        monkeypatch.setattr(broker, "_listen_port_range", lambda: range(taken, taken + 1))
        assert broker.find_free_port() != taken


@pytest.mark.parametrize("content", ["", "garbage", "10500 60999"])
def test_an_unknown_or_too_narrow_range_falls_back_to_the_kernel(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str) -> None:
    ranges = tmp_path / "ip_local_port_range"
    ranges.write_text(content)
    monkeypatch.setattr(broker, "EPHEMERAL_RANGE_FILE", ranges)
    assert broker._listen_port_range() is None
    port = broker.find_free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
