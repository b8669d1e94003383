from core.model import Device, DeviceStatus
from core.services.fleet_stats import compute_fleet_statistics


def test_dashboard_shape_matches_backend():
    devices = [
        Device("a", device_type="pump", status=DeviceStatus.ONLINE),
        Device("b", device_type="pump", status=DeviceStatus.WARNING),
        Device("c", device_type="meter", status=DeviceStatus.OFFLINE),
        Device("d", device_type="meter", status=DeviceStatus.ERROR),
        Device("e", device_type="meter", status=DeviceStatus.ONLINE),
        Device("f", device_type="tracker", status=DeviceStatus.DECOMMISSIONED),
    ]
    stats = compute_fleet_statistics(devices)
    assert stats.as_dashboard() == {
        "total": 5,
        "online": 2,
        "offline": 1,
        "warning": 1,
        "error": 1,
        "by_type": {"meter": 3, "pump": 2},
    }
    assert stats.decommissioned == 1


def test_empty_fleet():
    assert compute_fleet_statistics([]).as_dashboard()["total"] == 0
