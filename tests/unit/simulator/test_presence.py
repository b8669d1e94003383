"""The pieces of `smartiot simulate`'s check for device ids already online."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from simulator.broker_auth import PRESENCE_USER, Acl, acl_rules
from simulator.fleet import DeviceGroup
from simulator.presence import clash_message, with_id_prefix
from simulator.scenario import Scenario


def _scenario() -> Scenario:
    return Scenario(name="two", groups=(
        DeviceGroup("office-env", "environmental", 2, id_prefix="office"),
        DeviceGroup("pumps", "pump", 1),
    ))


def test_id_prefix_goes_before_every_groups_ids() -> None:
    fleet = with_id_prefix(_scenario(), "qa-").build_fleet(seed=1)
    assert fleet.device_ids == ["qa-office-00000", "qa-office-00001", "qa-pumps-00000"]


def test_an_id_prefix_that_makes_invalid_ids_names_the_option() -> None:
    with pytest.raises(ValidationError, match="--id-prefix 'qa/'"):
        with_id_prefix(_scenario(), "qa/")


def test_the_clash_message_names_count_first_ids_and_both_ways_out() -> None:
    text = clash_message([f"office-{i:05d}" for i in range(15)], "mqtt://127.0.0.1:1883", 20)
    assert text.startswith("15 of this run's 20 device ids are already online on "
                           "mqtt://127.0.0.1:1883: office-00000, office-00001, office-00002, "
                           "office-00003, office-00004 and 10 more.")
    assert "--id-prefix PREFIX" in text and "--take-over" in text


def test_the_presence_account_reads_statuses_and_nothing_else() -> None:
    acl = Acl(acl_rules([("ana", "admin")]))
    assert acl.allows(PRESENCE_USER, "read", "dt/+/+/status")
    for topic in ("dt/+/+/telemetry", "cmd/+/+/req", "cmd/+/+/res", "$aws/things/+/shadow/#"):
        assert not acl.allows(PRESENCE_USER, "read", topic), topic
    for topic in ("dt/demo/office-00000/status", "cmd/demo/office-00000/req"):
        assert not acl.allows(PRESENCE_USER, "write", topic), topic
