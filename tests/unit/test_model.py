from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import IllegalTransition, InvalidDeviceId, ValidationError
from core.model import (
    LEGAL_TRANSITIONS,
    Alert,
    AlertState,
    Deployment,
    Device,
    DeviceStatus,
    Execution,
    ExecutionStatus,
    Firmware,
    Location,
    Reading,
    SemVer,
    Severity,
    validate_device_id,
)

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("good", ["a", "pump-01", "thing:name_2", "X" * 128])
def test_valid_device_ids(good):
    assert validate_device_id(good) == good


@pytest.mark.parametrize(
    ("bad", "fragment"),
    [
        ("", "empty"),
        ("X" * 129, "129 characters"),
        ("pump 01", "' '"),
        ("dt/../x", "'./'"),
        ("snow☃", "'☃'"),
        (42, "must be text"),
    ],
)
def test_invalid_device_ids_name_the_problem(bad, fragment):
    with pytest.raises(InvalidDeviceId) as info:
        validate_device_id(bad)
    assert fragment in str(info.value)


def test_device_rejects_naive_datetimes_and_bad_tags():
    with pytest.raises(ValidationError, match="timezone"):
        Device("d1", created_at=datetime(2026, 1, 1))
    with pytest.raises(ValidationError, match="tag"):
        Device("d1", tags=frozenset({" padded"}))


def test_device_status_parse_lists_allowed_values():
    with pytest.raises(ValidationError, match="online, offline, warning, error, decommissioned"):
        Device("d1", status="broken")  # type: ignore[arg-type]


def test_decommissioned_device_is_not_revived_by_status_change():
    device = Device("d1", status=DeviceStatus.DECOMMISSIONED)
    with pytest.raises(IllegalTransition, match="decommissioned"):
        device.with_status(DeviceStatus.ONLINE)


def test_seen_keeps_newest_timestamp():
    device = Device("d1").seen(NOW)
    older = device.seen(NOW - timedelta(minutes=5), firmware_version="1.2.0")
    assert older.last_seen == NOW
    assert older.firmware_version == "1.2.0"


def test_location_bounds():
    with pytest.raises(ValidationError, match="latitude"):
        Location(91.0, 0.0)
    with pytest.raises(ValidationError, match="longitude"):
        Location(0.0, float("nan"))


def test_reading_validation():
    assert Reading("d1", "temperature", NOW, 21).value == 21.0
    with pytest.raises(ValidationError, match="not finite"):
        Reading("d1", "temperature", NOW, float("inf"))
    with pytest.raises(ValidationError, match="not a number"):
        Reading("d1", "temperature", NOW, True)
    with pytest.raises(ValidationError, match="metric name"):
        Reading("d1", "1bad", NOW, 1.0)


def make_alert(**kw):
    defaults = dict(device_id="d1", rule_id="temp-high", severity=Severity.CRITICAL,
                    message="too hot", value=81.5, created_at=NOW, updated_at=NOW)
    defaults.update(kw)
    return Alert(**defaults)


def test_alert_lifecycle_bumps_version_and_records_who():
    alert = make_alert()
    acked = alert.acknowledge("maria", "on my way", at=NOW)
    assert (acked.state, acked.acknowledged_by, acked.ack_comment, acked.version) == (
        AlertState.ACKNOWLEDGED, "maria", "on my way", 2)
    resolved = acked.resolve("maria", at=NOW)
    assert resolved.state is AlertState.RESOLVED and resolved.version == 3
    reopened = resolved.reopen(90.0, "too hot again", at=NOW)
    assert reopened.state is AlertState.ACTIVE and reopened.acknowledged_by is None
    assert reopened.version == 4 and reopened.alert_id == alert.alert_id


def test_second_acknowledge_names_first_person():
    acked = make_alert().acknowledge("maria")
    with pytest.raises(IllegalTransition, match="maria"):
        acked.acknowledge("li")


def test_snooze_must_be_in_future_and_not_on_resolved():
    alert = make_alert()
    with pytest.raises(ValidationError, match="future"):
        alert.snooze(NOW - timedelta(minutes=1), at=NOW)
    snoozed = alert.snooze(NOW + timedelta(hours=1), at=NOW)
    assert snoozed.is_snoozed(NOW) and not snoozed.is_snoozed(NOW + timedelta(hours=2))
    with pytest.raises(IllegalTransition):
        alert.resolve("system").snooze(NOW + timedelta(hours=1), at=NOW)


def test_severity_rank_orders_critical_highest():
    assert sorted(Severity, key=lambda s: s.rank) == [
        Severity.INFO, Severity.WARNING, Severity.CRITICAL]


def test_alert_rejects_non_finite_value():
    with pytest.raises(ValidationError, match="finite"):
        make_alert(value=float("nan"))


def test_firmware_normalises_digest_and_parses_version():
    fw = Firmware(version="2.0.0-rc.1", device_type="pump", size=10, sha256="AB" * 32)  # type: ignore[arg-type]
    assert fw.version == SemVer.parse("2.0.0-rc.1")
    assert fw.sha256 == "ab" * 32
    assert fw.firmware_id == "pump@2.0.0-rc.1"
    with pytest.raises(ValidationError, match="64 hexadecimal"):
        replace(fw, sha256="xyz")


def test_execution_happy_path_and_version_numbers():
    ex = Execution("ota-1", "d1")
    started = ex.transition(ExecutionStatus.IN_PROGRESS, status_details={"step": "download"})
    progress = started.transition(ExecutionStatus.IN_PROGRESS, status_details={"pct": "50"},
                                  expected_version=2)
    assert progress.status_details == {"pct": "50"}, "given details replace the old ones"
    done = progress.transition(ExecutionStatus.SUCCEEDED)
    assert done.status_details == {"pct": "50"}, "omitted details stay as they were"
    assert done.version_number == 4 and done.started_at == started.started_at


def test_execution_version_mismatch():
    ex = Execution("ota-1", "d1").transition(ExecutionStatus.IN_PROGRESS)
    with pytest.raises(IllegalTransition, match="expected version 1"):
        ex.transition(ExecutionStatus.SUCCEEDED, expected_version=1)


@pytest.mark.parametrize("terminal", sorted(s for s in ExecutionStatus if s.is_terminal))
def test_terminal_states_allow_nothing(terminal):
    ex = Execution("ota-1", "d1", status=terminal)
    for target in ExecutionStatus:
        with pytest.raises(IllegalTransition, match="finished"):
            ex.transition(target)


def test_transition_table_covers_every_state():
    assert set(LEGAL_TRANSITIONS) == set(ExecutionStatus)
    assert ExecutionStatus.QUEUED not in LEGAL_TRANSITIONS[ExecutionStatus.IN_PROGRESS]


def test_deployment_rejects_duplicate_and_invalid_targets():
    with pytest.raises(ValidationError, match="twice"):
        Deployment("pump@1.0.0", ("d1", "d1"))
    with pytest.raises(InvalidDeviceId):
        Deployment("pump@1.0.0", ("bad id",))


def test_keep_newest_keeps_per_metric_the_newest_and_of_equal_times_the_later() -> None:
    from core.model import keep_newest

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old = Reading("d-1", "temp", t0, 1.0)
    new = Reading("d-1", "temp", t0 + timedelta(seconds=5), 2.0)
    twin = Reading("d-1", "temp", new.ts, 3.0)
    rssi = Reading("d-1", "rssi", t0, -70.0)
    newest: dict[str, Reading] = {"temp": old}
    keep_newest(newest, [new, rssi, old])  # an older reading after a newer one changes nothing
    assert newest == {"temp": new, "rssi": rssi}
    keep_newest(newest, [twin])
    assert newest["temp"] is twin
