"""Scenario files: the bundled ones load; every mistake names file, line and key."""

from importlib import resources
from pathlib import Path

import pytest

from simulator.scenario import ScenarioError, load_scenario, parse_scenario, single_group

BUNDLED = Path(str(resources.files("resources") / "scenarios"))

GOOD = """
name = "plant"
seed = 3

[[groups]]
name = "pumps"
model = "pump"
count = 30
interval_s = 5

[[groups]]
name = "meters"
model = "power_meter"
count = 20
params = { weekend_factor = 0.5 }

[[faults]]
kind = "bearing_failure"
group = "pumps"
fraction = 0.1
start_s = 300

[[faults]]
kind = "drop"
fraction = 0.2
start_s = 600
duration_s = 60
"""


@pytest.mark.parametrize(("name", "devices"), [
    ("office", 20), ("factory", 500), ("trackers", 5000), ("chaos", 60)])
def test_bundled_scenarios_load(name, devices):
    scenario = load_scenario(BUNDLED / f"{name}.toml")
    assert scenario.device_count == devices
    assert scenario.name == name


def test_factory_scenario_has_the_timeline_from_the_design():
    scenario = load_scenario(BUNDLED / "factory.toml")
    kinds = [(s.kind, s.start_s, s.fraction, s.group) for s in scenario.faults.specs]
    assert ("bearing_failure", 300, 0.1, "pumps") in kinds
    assert ("drop", 600, 0.2, None) in kinds


def test_good_scenario_builds_a_fleet():
    scenario = parse_scenario(GOOD, "plant.toml")
    fleet = scenario.build_fleet(start_s=1_795_000_000.0)
    assert fleet.size == 50
    assert fleet.device_info(0)[0] == "pumps-00000"
    assert fleet.interval(0) == 5.0 and fleet.interval(30) == 10.0


@pytest.mark.parametrize(("text", "expected"), [
    (GOOD.replace("count = 30", 'count = "30"'), "plant.toml:8: groups[0].count: must be a whole"),
    (GOOD.replace('model = "pump"', 'model = "pmp"'),
     "plant.toml:7: groups[0].model: unknown sensor model 'pmp'"),
    (GOOD.replace("interval_s = 5", "intervall_s = 5"),
     "plant.toml:9: groups[0].intervall_s: unknown key"),
    (GOOD.replace('group = "pumps"', 'group = "pump"'),
     "plant.toml:19: faults[0].group: no group named 'pump'"),
    (GOOD.replace('kind = "drop"', 'kind = "teleport"'),
     "plant.toml:24: faults[1].kind: unknown fault kind 'teleport'"),
    (GOOD.replace("weekend_factor", "weekend_factr"),
     "plant.toml:15: groups[1].params: model 'power_meter': unknown parameter(s) 'weekend_factr'"),
    (GOOD.replace('name = "plant"', ""), "plant.toml: 'name' is required"),
    (GOOD + "\n[[groups\n", "plant.toml:29: not valid TOML"),
    ('name = "x"\n', "plant.toml: a scenario needs at least one [[groups]] entry"),
])
def test_errors_name_file_line_and_key(text, expected):
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, "plant.toml")
    assert str(info.value).startswith(expected), str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "nope.toml")


def test_single_group_for_command_line_runs():
    scenario = single_group(100, "tracker", interval_s=0.5)
    assert scenario.device_count == 100
    with pytest.raises(ScenarioError, match="not a sensor model"):
        single_group(1, "toaster")
    with pytest.raises(ScenarioError, match="between 1 and"):
        single_group(0, "pump")
