"""The runtime's QoS 0 write path, on a socket pair instead of a broker: buffered
telemetry leaves in one write per session, in publish order with paho's own packets."""

from __future__ import annotations

import socket

import pytest

from simulator.runtime import MIN_TELEMETRY_PERIOD_S, FleetRuntime, _fixed_header
from simulator.scenario import single_group
from simulator.target import BrokerTarget

START = 1_700_000_000.0


def packets(data: bytes) -> list[tuple[int, str, bytes]]:
    """(first byte, topic, payload) of every PUBLISH in ``data`` (QoS 1 ids skipped)."""
    out = []
    while data:
        first, pos, length, shift = data[0], 1, 0, 0
        while True:
            byte = data[pos]
            length |= (byte & 0x7F) << shift
            pos += 1
            shift += 7
            if not byte & 0x80:
                break
        body, data = data[pos:pos + length], data[pos + length:]
        assert first & 0xF0 == 0x30, f"not a PUBLISH: {first:#x}"
        topic_len = int.from_bytes(body[:2], "big")
        topic = body[2:2 + topic_len].decode()
        rest = body[2 + topic_len:]
        if first & 0x06:  # QoS 1: packet id
            rest = rest[2:]
        out.append((first, topic, rest))
    return out


@pytest.fixture
def wired():
    fleet = single_group(2, "environmental", interval_s=1.0).build_fleet(seed=1, start_s=START)
    runtime = FleetRuntime(fleet, BrokerTarget.parse("mqtt://127.0.0.1:1"), speed=40.0)
    ends = []
    for session in runtime.sessions:
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        session.client._sock = ours  # as if connected: paho only looks at its socket
        session.connected = True
        ends.append(theirs)
    yield runtime, ends
    for session in runtime.sessions:
        session.client._sock.close()
    for end in ends:
        end.close()


def read_all(end: socket.socket) -> bytes:
    end.settimeout(0.2)
    data = b""
    try:
        while True:
            chunk = end.recv(65536)
            if not chunk:
                break
            data += chunk
    except TimeoutError:
        pass
    return data


def test_a_sessions_qos0_messages_leave_in_one_write_in_order(wired):
    runtime, ends = wired
    session = runtime.sessions[0]
    for i in range(5):
        runtime.publish(session, session.topic, b"m%d" % i, qos=0)
    assert runtime.telemetry_writes == 0  # nothing written before the poll
    runtime._flush_writes()
    assert runtime.telemetry_writes == 1
    assert runtime.stats.published == 5
    got = packets(read_all(ends[0]))
    assert [p for _, _, p in got] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    assert {t for _, t, _ in got} == {session.topic}
    assert read_all(ends[1]) == b""  # the other session wrote nothing


def test_qos1_publish_goes_out_after_the_buffered_qos0_ones(wired):
    runtime, ends = wired
    session = runtime.sessions[0]
    runtime.publish(session, session.topic, b"t0", qos=0)
    runtime.publish(session, session.topic, b"t1", qos=0)
    runtime.publish(session, "dt/x/y/status", b"s", qos=1, retain=True)
    runtime.publish(session, session.topic, b"t2", qos=0)
    runtime._flush_writes()
    got = packets(read_all(ends[0]))
    assert [p for _, _, p in got] == [b"t0", b"t1", b"s", b"t2"]
    assert got[2][0] == 0x33  # QoS 1, retained: built by paho
    assert got[0][0] == got[3][0] == 0x30


def test_rate_limit_still_holds_for_buffered_telemetry(wired):
    runtime, ends = wired
    session = runtime.sessions[0]
    for i in range(150):
        runtime.publish(session, session.topic, b"%d" % i, qos=0)
    runtime._flush_writes()
    assert len(packets(read_all(ends[0]))) == 100  # IoT Core: 100 publishes/s per connection
    assert len(session.queue) == 50


@pytest.mark.parametrize("length", [0, 1, 127, 128, 200, 16383, 16384, 2_000_000])
def test_fixed_header_remaining_length(length):
    header = _fixed_header(False, length)
    assert header[0] == 0x30
    got = packets(header + b"\x00\x01t" + b"x" * (length - 3)) if length >= 3 else None
    if got:
        assert got[0][2] == b"x" * (length - 3)
    assert _fixed_header(True, length)[0] == 0x31


def test_fast_ticks_run_in_batches_normal_rates_do_not():
    fleet = single_group(2, "environmental", interval_s=1.0).build_fleet(seed=1, start_s=START)
    target = BrokerTarget.parse("mqtt://127.0.0.1:1")
    normal = FleetRuntime(fleet, target, speed=1.0)
    assert normal._batch_wait_s == 0.0  # a 0.5 s tick runs when due, as before
    fast = FleetRuntime(fleet, target, speed=40.0)
    assert fast.tick_s / fast.speed < MIN_TELEMETRY_PERIOD_S
    # a batch spans MIN_TELEMETRY_PERIOD_S of wall time: the first tick of it waits
    # at most that long
    assert (fast._batch_wait_s + fast.tick_s) / fast.speed == pytest.approx(
        MIN_TELEMETRY_PERIOD_S)
