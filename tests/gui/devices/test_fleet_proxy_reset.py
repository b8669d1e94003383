"""The devices table's proxy announces a new source model as a complete reset.

A begin without its end left the proxy inside a reset for the life of the
window: Qt printed "beginResetModel called ... without calling endResetModel
first" at every start, and a view attached to the proxy never heard that the
rows it had were replaced.
"""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import QAbstractItemModel
from PySide6.QtTest import QAbstractItemModelTester

from plugins.devices.widgets.fleet_model import DeviceFilterProxy, FleetTableModel
from tests.gui.devices.conftest import make_devices

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _resets(model: QAbstractItemModel) -> list[str]:
    seen: list[str] = []
    model.modelAboutToBeReset.connect(lambda: seen.append("begin"))
    model.modelReset.connect(lambda: seen.append("end"))
    return seen


def test_setting_the_source_is_one_whole_reset(qtbot):
    proxy = DeviceFilterProxy()
    seen = _resets(proxy)
    model = FleetTableModel()
    model.load(make_devices(20, now=NOW))
    proxy.setSourceModel(model)
    assert seen == ["begin", "end"]
    assert proxy.rowCount() == 20

    # a second source (the page rebuilt) is again one begin and one end
    other = FleetTableModel()
    proxy.setSourceModel(other)
    assert seen == ["begin", "end", "begin", "end"]
    assert proxy.rowCount() == 0


def test_a_reload_of_the_source_reaches_the_proxy_as_one_reset(qtbot):
    model, proxy = FleetTableModel(), DeviceFilterProxy()
    proxy.setSourceModel(model)
    QAbstractItemModelTester(proxy, QAbstractItemModelTester.FailureReportingMode.Fatal)
    seen = _resets(proxy)
    model.load(make_devices(30, now=NOW))
    model.load(make_devices(10, now=NOW))
    assert seen.count("begin") == seen.count("end")
    assert proxy.rowCount() == 10
