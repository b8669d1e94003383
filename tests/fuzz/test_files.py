"""Files people hand the product: scenario files, the config file and CSV
recordings for replay. Value or the typed error naming the file, nothing else."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from core.config import load_config
from core.errors import ConfigError
from simulator.replay import ReplayError, ReplaySource
from simulator.scenario import ScenarioError, load_scenario
from tests.fuzz.conftest import HOSTILE_TEXT, count, fuzz_settings, variants

SCENARIOS = Path(__file__).parents[2] / "resources" / "scenarios"
BASE_SCENARIOS = [p.read_bytes() for p in sorted(SCENARIOS.glob("*.toml"))]
WORK = Path(tempfile.mkdtemp(prefix="smartiot-fuzz-"))

VALUE = st.one_of(st.integers(-(2**70), 2**70).map(str), st.floats().map(repr),
                  HOSTILE_TEXT.map(lambda t: '"' + t.replace("\\", "\\\\").replace('"', "") + '"'),
                  st.sampled_from(["true", "[]", "{}", '["x", 1]', "{ a = 1 }", "1979-05-27",
                                   "-1", "0", "1e400", "nan", "inf", '"environmental"']))
KEY = st.sampled_from(["name", "model", "count", "interval_s", "org", "firmware", "seed",
                       "kind", "group", "devices", "fraction", "start_s", "duration_s",
                       "params", "id_prefix", "x", "trusted_keys", "failure_rate"])


@st.composite
def scenario_text(draw) -> bytes:
    base = draw(st.sampled_from(BASE_SCENARIOS))
    lines = base.split(b"\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        lines.insert(at, f"{draw(KEY)} = {draw(VALUE)}".encode("utf-8", "surrogatepass"))
    return b"\n".join(lines)


@given(scenario_text(), st.integers())
@fuzz_settings(60)
def test_scenario_files(text, seed):
    for case in variants(text, seed, n=15):
        count("scenario_files")
        path = WORK / "scenario.toml"
        path.write_bytes(case)
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            assert str(exc).startswith(str(path))
            continue
        assert scenario.groups


CONFIG_BASE = b'''profile = "lab"
theme = "dark"
user = "maria"

[profiles.lab]
broker = "mqtt://broker.example:1883"
database = "postgresql://hub@db/smartiot"
organization = "acme"
hub = false

[registration]
acme = "known-only"
"*" = "rate-limited 20/min"
'''
CONFIG_KEY = st.sampled_from(["profile", "theme", "user", "role", "broker", "database", "hub",
                              "organization", "demo_fleet", "password", "acme", "*",
                              "[profiles.x]", "[registration]", "[profiles.Bad]"])


@st.composite
def config_text(draw) -> bytes:
    lines = CONFIG_BASE.split(b"\n")
    for _ in range(draw(st.integers(0, 3))):
        at = draw(st.integers(0, len(lines)))
        key = draw(CONFIG_KEY)
        line = key if key.startswith("[") else f"{key} = {draw(VALUE)}"
        lines.insert(at, line.encode("utf-8", "surrogatepass"))
    return b"\n".join(lines)


@given(config_text(), st.integers())
@fuzz_settings(100)
def test_config_files(text, seed):
    for case in variants(text, seed, n=15):
        count("config_files")
        path = WORK / "config.toml"
        path.write_bytes(case)
        try:
            config = load_config(path, WORK, env={})
        except ConfigError as exc:
            assert str(exc)
            continue
        assert config.profile_name in config.profiles


CELL = st.one_of(st.sampled_from(["pump-1", "p 2", "", "1795000000", "1795000000000",
                                  "2026-12-04T10:00:00Z", "2026-13-40",
                                  "0001-01-01T00:00:00+14:00", "nan", "inf", "1e999", "-0",
                                  "temperature", "a.b", "\x00", "\ufeff", '"', ","]),
                 st.floats().map(repr), st.text(max_size=6))


@st.composite
def csv_text(draw) -> bytes:
    wide = draw(st.booleans())
    header = ["device_id", "ts", "temperature", "rssi"] if wide else [
        "device_id", "metric", "ts", "value"]
    rows = [",".join(header)]
    for i in range(draw(st.integers(1, 5))):
        good = ["pump-1", str(1_795_000_000 + i), "21.5", "-70"] if wide else [
            "pump-1", "temperature", str(1_795_000_000 + i), "21.5"]
        if draw(st.booleans()):
            good[draw(st.integers(0, 3))] = draw(CELL)
        rows.append(",".join(good))
    return "\n".join(rows).encode("utf-8", "surrogatepass")


@given(csv_text(), st.integers())
@fuzz_settings(150)
def test_csv_recordings(text, seed):
    for case in variants(text, seed, n=15):
        count("csv_replay")
        path = WORK / "recording.csv"
        path.write_bytes(case)
        try:
            source = ReplaySource(path, start_s=1_800_000_000.0)
        except ReplayError as exc:
            assert str(exc).startswith(str(path))
            continue
        assert source.device_ids and source.size == len(source.device_ids)
        assert math.isfinite(source.duration_s) and source.duration_s >= 0
