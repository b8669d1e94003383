"""``smartiot simulate`` as QA run it: a real subprocess against a real broker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

from simulator.broker import find_free_port
from tests.mqtt_recorder import Recorder


def simulate(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "console.cli", "simulate", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})


def test_bundled_scenario_runs_and_summarises(mosquitto_broker):
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/demo/+/telemetry"])
    try:
        result = simulate("--scenario", "office", "--duration", "30", "--speed", "10",
                          "--seed", "1", "--start", "2026-11-26T08:00:00Z",
                          "--broker", mosquitto_broker.url, "--anonymous")
    finally:
        time.sleep(0.3)
        recorder.close()
    assert result.returncode == 0, result.stderr
    assert "simulating 20 devices (office, seed 1, shard 1/1)" in result.stderr
    assert "environmental" in result.stdout and "devices" in result.stdout
    row = next(line for line in result.stdout.splitlines() if line.startswith("environmental"))
    assert row.split()[1] == "20"
    devices = {m.topic.split("/")[2] for m in recorder.messages}
    assert devices == {f"office-{i:05d}" for i in range(20)}
    first = min(json.loads(m.payload)["ts"] for m in recorder.messages)
    assert first >= 1_795_680_000_000  # 2026-11-26T08:00:00Z in ms


def test_embedded_broker_is_started_and_stopped():
    result = simulate("--devices", "3", "--type", "pump", "--duration", "2", "--speed", "2")
    assert result.returncode == 0, result.stderr
    assert "started embedded" in result.stderr
    assert "pump" in result.stdout


def test_invalid_scenario_names_file_line_and_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "bad"\n\n[[groups]]\nname = "g"\nmodel = "pump"\ncount = "ten"\n')
    result = simulate("--scenario", str(bad), "--duration", "1")
    assert result.returncode == 2
    assert f"{bad}:6: groups[0].count: must be a whole number" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_broker_retries_and_ctrl_c_ends_cleanly():
    port = find_free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "simulate", "--devices", "2", "--broker",
         f"mqtt://127.0.0.1:{port}", "--anonymous"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SMARTIOT_ENTRY_POINTS": "0"})
    # Interrupt only once the retry message is out: on a loaded machine start-up
    # alone can take seconds, and a fixed sleep then interrupts the imports.
    lines: list[str] = []
    retrying = threading.Event()

    def read_stderr() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "retrying with backoff" in line:
                retrying.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    assert retrying.wait(60), "".join(lines)
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=30)
    reader.join(10)
    err = "".join(lines)
    assert process.returncode == 0, err
    assert "cannot reach broker mqtt://127.0.0.1" in err
    assert "retrying with backoff" in err
    assert "Traceback" not in err
    assert "connection errors:" in out


def test_shard_runs_only_its_devices(mosquitto_broker):
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/shard/+/telemetry"])
    try:
        result = simulate("--devices", "10", "--type", "environmental", "--org", "shard",
                          "--rate", "1", "--duration", "3", "--shard", "2/2",
                          "--broker", mosquitto_broker.url, "--anonymous")
    finally:
        time.sleep(0.3)
        recorder.close()
    assert result.returncode == 0, result.stderr
    devices = {m.topic.split("/")[2] for m in recorder.messages}
    # 10 devices are 5 blocks of 2; shard 2/2 runs the 2nd and the 4th block.
    assert devices == {f"env-{i:05d}" for i in (2, 3, 6, 7)}


def test_replay_republishes_recorded_readings_retimestamped(mosquitto_broker, tmp_path):
    recording = tmp_path / "incident.csv"
    recording.write_text(
        "device_id,metric,ts,value\n"
        "pump-7,temperature,2025-03-01T10:00:00Z,71.5\n"
        "pump-7,vibration_rms,2025-03-01T10:00:00Z,4.2\n"
        "pump-7,temperature,2025-03-01T10:00:02Z,73.0\n"
        "meter-1,power,2025-03-01T10:00:01Z,1200\n"
    )
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["dt/field/+/telemetry"])
    try:
        result = simulate("--replay", str(recording), "--org", "field", "--start",
                          "1795000000", "--broker", mosquitto_broker.url, "--anonymous")
    finally:
        time.sleep(0.3)
        recorder.close()
    assert result.returncode == 0, result.stderr
    bodies = sorted((json.loads(m.payload) for m in recorder.messages), key=lambda b: b["ts"])
    assert [(b["device_id"], b["ts"], b["metrics"]) for b in bodies] == [
        ("pump-7", 1_795_000_000_000, {"temperature": 71.5, "vibration_rms": 4.2}),
        ("meter-1", 1_795_000_001_000, {"power": 1200.0}),
        ("pump-7", 1_795_000_002_000, {"temperature": 73.0}),
    ]
    assert [b["seq"] for b in bodies if b["device_id"] == "pump-7"] == [0, 1]


def test_replay_error_names_line_and_column(tmp_path):
    recording = tmp_path / "bad.csv"
    recording.write_text("device_id,ts,temperature\nd1,1795000000,20.5\nd1,1795000001,warm\n")
    result = simulate("--replay", str(recording), "--duration", "1")
    assert result.returncode == 2
    assert f"{recording}:3: temperature value 'warm' is not a number" in result.stderr


def _without_secrets(tmp_path):
    """A machine with no fleet secret anywhere: no OS keyring, an empty data dir, no
    SMARTIOT_SECRET_* variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTIOT_SECRET")}
    env.update(SMARTIOT_ENTRY_POINTS="0", SMARTIOT_DATA_DIR=str(tmp_path / "data"),
               SMARTIOT_CONFIG=str(tmp_path / "config.toml"),
               PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    return env


def test_a_missing_fleet_secret_is_an_error_not_an_anonymous_fleet(mosquitto_broker, tmp_path):
    """The broker here accepts anyone: without the check the fleet would quietly
    publish as nobody in particular, as the shipped shard manifests used to."""
    recorder = Recorder(mosquitto_broker.host, mosquitto_broker.port, ["+/nosecret/#"])
    try:
        result = subprocess.run(
            [sys.executable, "-m", "console.cli", "simulate", "--devices", "2", "--duration",
             "3", "--org", "nosecret", "--broker", mosquitto_broker.url],
            capture_output=True, text=True, timeout=120, env=_without_secrets(tmp_path))
    finally:
        time.sleep(0.3)
        recorder.close()
    assert result.returncode == 2, result.stdout + result.stderr
    assert "'broker.fleet_secret' is not set" in result.stderr
    assert "SMARTIOT_SECRET_BROKER_FLEET_SECRET" in result.stderr
    assert "smartiot secrets set broker.fleet_secret" in result.stderr
    assert "--anonymous" in result.stderr and "Traceback" not in result.stderr
    assert recorder.messages == []
    missing_password = subprocess.run(
        [sys.executable, "-m", "console.cli", "simulate", "--devices", "1", "--duration", "1",
         "--broker", mosquitto_broker.url, "--username", "qa"], capture_output=True,
        text=True, timeout=120, env=_without_secrets(tmp_path))
    assert missing_password.returncode == 2
    assert "SMARTIOT_SECRET_BROKER_PASSWORD" in missing_password.stderr


def test_anonymous_is_an_explicit_choice(mosquitto_broker, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "simulate", "--devices", "2", "--duration", "2",
         "--speed", "2", "--broker", mosquitto_broker.url, "--anonymous"], capture_output=True,
        text=True, timeout=120, env=_without_secrets(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "without credentials (--anonymous)" in result.stderr
