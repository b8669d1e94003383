"""OTA settings in scenarios and on the fleet: trusted keys, fault knobs per
fleet and group, errors that name file:line:key, and telemetry that carries the
firmware a device runs without changing anything for fleets that never update."""

from __future__ import annotations

import importlib.resources as resources
from pathlib import Path

import pytest

from core.crypto import codesign
from simulator.fleet import DeviceGroup, Fleet
from simulator.ota.faults import OtaConfig, OtaFaults
from simulator.scenario import Scenario, ScenarioError, load_scenario, parse_scenario

KEY = codesign.generate_key()
BUNDLED = Path(str(resources.files("resources") / "scenarios"))

SCENARIO = """\
name = "ota"

[ota]
trusted_key_files = ["keys/signing.pub"]
failure_rate = 0.1
download_stall = { p = 0.5, duration_s = 12 }
power_loss = { p = 0.2, step = "any" }

[[groups]]
name = "pumps"
model = "pump"
count = 3

[[groups]]
name = "meters"
model = "power_meter"
count = 2

[groups.ota]
selftest_fail = { p = 0.5, mode = "hang" }
"""


def test_scenario_ota_table_and_group_faults(tmp_path):
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "signing.pub").write_bytes(codesign.public_pem(KEY))
    path = tmp_path / "ota.toml"
    path.write_text(SCENARIO)
    scenario = load_scenario(path)
    assert scenario.ota.trusted_keys == (codesign.public_pem(KEY),)
    assert scenario.ota.faults == OtaFaults(failure_rate=0.1, stall_p=0.5, stall_s=12,
                                            power_loss_p=0.2)
    fleet = scenario.build_fleet()
    assert fleet.ota_faults(0) == scenario.ota.faults            # a pump: the fleet's
    assert fleet.ota_faults(4) == OtaFaults(selftest_fail_p=0.5, selftest_mode="hang")
    extra = codesign.public_pem(codesign.generate_key())
    assert scenario.build_fleet(trusted_keys=[extra]).ota.trusted_keys[-1] == extra
    override = OtaFaults(power_loss_p=1.0)
    assert scenario.build_fleet(ota_faults=override).ota_faults(0) == override


@pytest.mark.parametrize(("text", "where"), [
    (SCENARIO.replace('step = "any"', 'step = "flashing"'),
     ':6: ota.power_loss.step: must be'),
    (SCENARIO.replace("failure_rate = 0.1", "failure_rate = 2"),
     ":4: ota.failure_rate: must be a probability"),
    (SCENARIO.replace('trusted_key_files = ["keys/signing.pub"]', 'trusted_keys = ["nope"]'),
     ":4: ota.trusted_keys: key 1: not a PEM public key"),
    (SCENARIO.replace('mode = "hang"', 'mode = "sulk"'),
     ":19: groups[1].ota.selftest_fail.mode: must be 'fail' or 'hang'"),
    (SCENARIO + 'trusted_keys = []\n', ":20: groups[1].ota.trusted_keys: unknown key"),
])
def test_bad_ota_settings_name_file_line_and_key(text, where):
    with pytest.raises(ScenarioError) as err:
        parse_scenario(text.replace('trusted_key_files = ["keys/signing.pub"]\n', ""),
                       "lab.toml")
    assert str(err.value).startswith("lab.toml:"), str(err.value)
    assert where in str(err.value), str(err.value)


def test_bundled_ota_scenario_loads():
    scenario = load_scenario(BUNDLED / "ota_lab.toml")
    assert scenario.device_count == 60 and scenario.ota.faults.power_loss_p == 0.1
    meters = scenario.groups[2]
    assert meters.ota is not None and meters.ota.power_loss_step == "rebooting"


def _payloads(fleet: Fleet) -> list[bytes]:
    return [payload for _t, _i, payload in fleet.generate(60, step_s=1.0)]


def group() -> DeviceGroup:
    return DeviceGroup("pumps", "pump", 5, firmware="1.0.0", interval_s=2.0)


def test_ota_settings_do_not_change_the_telemetry_of_fleets_without_jobs():
    plain = _payloads(Fleet([group()], seed=3, start_s=1e9))
    configured = _payloads(Fleet([group()], seed=3, start_s=1e9, ota=OtaConfig(
        (codesign.public_pem(KEY),), OtaFaults(power_loss_p=1.0, stall_p=1.0))))
    assert plain == configured and plain


def test_telemetry_carries_the_firmware_each_device_runs():
    fleet = Fleet([group()], seed=3, start_s=1e9)
    fleet.set_firmware(2, "1.1.0")
    assert fleet.device_info(2)[3] == "1.1.0" and fleet.device_info(1)[3] == "1.0.0"
    seen = {(m.device_id, m.firmware) for _i, m in fleet.tick(1e9 + 10)}
    assert ("pumps-00002", "1.1.0") in seen and ("pumps-00001", "1.0.0") in seen


def test_scenarios_built_in_python_accept_keys():
    scenario = Scenario(name="py", groups=(group(),))
    fleet = scenario.build_fleet(trusted_keys=[codesign.public_pem(KEY).decode()])
    assert fleet.ota.trusted_keys == (codesign.public_pem(KEY),)
    with pytest.raises(Exception, match="not a PEM public key"):
        scenario.build_fleet(trusted_keys=["garbage"])
