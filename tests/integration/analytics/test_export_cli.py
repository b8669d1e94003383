"""``smartiot export`` as a user runs it: a subprocess against a store filled
with simulated telemetry; the file's content is checked against what was written."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import numpy as np
import pytest

from core.config import load_config
from core.model import Device
from core.model.timeutil import to_epoch_ms
from core.store import Store
from plugins.analytics.series_math import bucket_stats
from tests.integration.analytics.fleet_data import write_simulated
from tests.integration.test_cli import smartiot

DEVICES = ("pump-00001", "pump-00002")


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Two pumps, one hour at 1 Hz with a 5-minute silence; the store is the one
    the CLI opens by default for this config and data dir. The pumps are
    registered in the profile's organization: the export reads through the
    analytics use case, which shows a person their organization's devices only."""
    tmp = tmp_path_factory.mktemp("export")
    config = load_config(tmp / "config.toml", tmp / "data", env={})
    (tmp / "data").mkdir(parents=True, exist_ok=True)
    with Store.open(config.database_url) as store:
        store.registry.upsert_many([Device(d, device_type="pump",
                                           organization=config.profile.organization)
                                    for d in DEVICES])
        data = write_simulated(store.telemetry, DEVICES, model="pump", seconds=3600,
                               silent=[(1200, 1500)], metrics=("load", "vibration_rms"))
    return tmp, data


def run(tmp, *args):
    return smartiot("export", *args, tmp_path=tmp)


def test_raw_csv_is_exactly_what_was_stored(seeded):
    tmp, data = seeded
    start = data.start + timedelta(minutes=10)
    end = data.start + timedelta(minutes=40)
    result = run(tmp, "--device", DEVICES[0], "--metric", "load",
                 "--from", start.isoformat(), "--to", end.isoformat().replace("+00:00", "Z"))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    key = (DEVICES[0], "load")
    inside = (data.ts_ms[key] >= to_epoch_ms(start)) & (data.ts_ms[key] < to_epoch_ms(end))
    assert len(rows) == inside.sum() == 30 * 60 - 5 * 60  # the silence is not invented
    assert [int(r["ts_ms"]) for r in rows] == data.ts_ms[key][inside].tolist()
    assert [float(r["value"]) for r in rows] == data.values[key][inside].tolist()
    assert rows[0]["time"] == "2026-11-25T00:10:00.000Z"
    assert {r["device_id"] for r in rows} == {DEVICES[0]}


def test_bucketed_csv_matches_numpy_for_several_series(seeded, tmp_path):
    tmp, data = seeded
    out = tmp_path / "pumps.csv"
    result = run(tmp, "--device", DEVICES[0], "--device", DEVICES[1], "--metric", "vibration_rms",
                 "--from", data.start.isoformat(), "--to", data.end.isoformat(),
                 "--bucket", "1m", "--output", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert "rows to" in result.stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["device_id", "metric", "bucket_start", "ts_ms", "min", "avg",
                             "max", "count"]
    for device in DEVICES:
        mine = [r for r in rows if r["device_id"] == device]
        key = (device, "vibration_rms")
        want = bucket_stats(data.ts_ms[key], data.values[key], to_epoch_ms(data.start),
                            to_epoch_ms(data.end), 60_000)
        assert len(mine) == 55  # 60 minutes less the 5 silent ones: gaps stay gaps
        np.testing.assert_array_equal([int(r["ts_ms"]) for r in mine], want.start_ms)
        np.testing.assert_allclose([float(r["avg"]) for r in mine], want.mean, atol=1e-9)
        np.testing.assert_allclose([float(r["min"]) for r in mine], want.minimum, atol=1e-9)
        np.testing.assert_allclose([float(r["max"]) for r in mine], want.maximum, atol=1e-9)
        assert [int(r["count"]) for r in mine] == [60] * 55


def test_json_format(seeded):
    tmp, data = seeded
    result = run(tmp, "--device", DEVICES[1], "--metric", "load", "--from",
                 data.start.isoformat(), "--to", data.end.isoformat(), "--bucket", "10m",
                 "--format", "json")
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["count"] for r in records] == [600, 600, 300, 600, 600, 600]
    assert records[0]["bucket_start"] == "2026-11-25T00:00:00.000Z"


@pytest.mark.parametrize(("args", "argument", "words"), [
    (("--from", "yesterday"), "--from", "ISO-8601"),
    (("--to", "-1x"), "--to", "relative"),
    (("--bucket", "5 parsecs"), "--bucket", "duration"),
    (("--bucket", "0s"), "--bucket", "more than zero"),
    (("--from", "-1h", "--to", "-2h"), "--to", "must end after it starts"),
    (("--device", "nope-00001"), "--device", "no telemetry for device 'nope-00001'"),
    (("--metric", "rpm"), "--metric", "has no metric 'rpm'"),
    (("--output", "/nonexistent-dir/x.csv"), "--output", "cannot write"),
])
def test_bad_input_names_the_argument_and_exits_2(seeded, args, argument, words):
    tmp, data = seeded
    base = {"--device": DEVICES[0], "--metric": "load", "--from": data.start.isoformat(),
            "--to": data.end.isoformat()}
    given = dict(zip(args[::2], args[1::2], strict=True))
    argv = [x for k, v in {**base, **given}.items() for x in (k, v)]
    result = run(tmp, *argv)
    assert result.returncode == 2, result.stdout
    assert result.stderr.startswith(f"smartiot export: {argument}: "), result.stderr
    assert words in result.stderr
    assert result.stdout == ""


def test_missing_device_is_an_argparse_error(seeded):
    tmp, _ = seeded
    result = run(tmp, "--metric", "load")
    assert result.returncode == 2
    assert "--device" in result.stderr
