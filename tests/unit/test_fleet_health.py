"""Health and "needs attention": the one definition every view uses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.model import Alert, AlertState, Device, DeviceStatus, Severity
from core.services.fleet_health import (
    Health,
    attention_counts,
    device_health,
    fleet_health,
    health_of,
    needs_attention,
    status_label,
)
from core.services.fleet_stats import compute_fleet_statistics

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def alert(device: str, severity: Severity, state: AlertState = AlertState.ACTIVE,
          snoozed_for: timedelta | None = None) -> Alert:
    return Alert(device, "r", severity, "m", state=state, created_at=NOW, updated_at=NOW,
                 snoozed_until=NOW + snoozed_for if snoozed_for else None)


def online(device_id: str) -> Device:
    return Device(device_id, status=DeviceStatus.ONLINE)


def test_health_from_link_and_open_alerts():
    assert health_of(online("a"), []) is Health.OK
    assert health_of(online("a"), [alert("a", Severity.INFO)]) is Health.OK
    assert health_of(online("a"), [alert("a", Severity.WARNING)]) is Health.WARNING
    # acknowledged or snoozed: still open, the device is not fixed
    assert health_of(online("a"), [alert("a", Severity.CRITICAL, AlertState.ACKNOWLEDGED),
                                   alert("a", Severity.WARNING, snoozed_for=timedelta(hours=1))]
                     ) is Health.CRITICAL
    assert health_of(online("a"), [alert("a", Severity.CRITICAL, AlertState.RESOLVED)]
                     ) is Health.OK
    assert health_of(online("a"), [alert("b", Severity.CRITICAL)]) is Health.OK  # not its own
    offline = Device("a", status=DeviceStatus.OFFLINE)
    assert health_of(offline, [alert("a", Severity.CRITICAL)]) is Health.OFFLINE
    retired = Device("a", status=DeviceStatus.DECOMMISSIONED)
    assert device_health(retired, Severity.CRITICAL) is Health.DECOMMISSIONED
    # a backend that reports the Smart_IOT statuses itself is heard
    assert device_health(Device("a", status=DeviceStatus.ERROR), None) is Health.CRITICAL
    assert status_label(Health.CRITICAL.status) == "critical"


def test_dashboard_counts_partition_the_fleet_by_health():
    devices = [online("a"), online("b"), online("c"), Device("d", status=DeviceStatus.OFFLINE)]
    health = fleet_health(devices, [alert("a", Severity.WARNING), alert("b", Severity.CRITICAL),
                                    alert("d", Severity.CRITICAL)])
    stats = compute_fleet_statistics(health.devices)
    assert (stats.total, stats.online, stats.warning, stats.error, stats.offline) == (
        4, 1, 1, 1, 1)
    assert health.counts()[Health.OK] == 1
    assert [d.status for d in devices] == [DeviceStatus.ONLINE] * 3 + [DeviceStatus.OFFLINE]


def test_needs_attention_is_active_and_not_snoozed():
    snoozed = alert("a", Severity.WARNING, snoozed_for=timedelta(minutes=30))
    acked = alert("a", Severity.CRITICAL, AlertState.ACKNOWLEDGED)
    active = alert("b", Severity.CRITICAL)
    assert [needs_attention(a, NOW) for a in (snoozed, acked, active)] == [False, False, True]
    assert needs_attention(snoozed, NOW + timedelta(hours=1))  # the snooze is over
    assert attention_counts([snoozed, acked, active], NOW) == {
        Severity.CRITICAL: 1, Severity.WARNING: 0, Severity.INFO: 0}
