"""What the deployment list and monitor say agrees with itself and with the
store: one state per deployment, one way of counting failures, the
description kept after a pause, real rates on a clock-time axis, a chart
that stops growing once the rollout is over, a Progress column that is
filled, and counted nouns in the cancel dialog."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.context import AppContext
from core.model import Deployment, DeploymentStatus, Execution, ExecutionStatus
from core.model.timeutil import utcnow
from core.store import Store
from plugins.firmware.widgets.deployments_tab import DeploymentsTab
from plugins.firmware.widgets.models import build_rows, rate_series
from plugins.firmware.widgets.monitor import CancelDialog
from plugins.firmware.widgets.rate_chart import RateChart
from tests.gui.firmware.conftest import WAIT

pytestmark = pytest.mark.gui
S = ExecutionStatus


@pytest.fixture
def tab(qtbot: Any, owned: Any, context: AppContext) -> Callable[[], DeploymentsTab]:
    def make() -> DeploymentsTab:
        t = owned(DeploymentsTab(context))
        t.resize(1300, 850)
        t.show()
        qtbot.waitExposed(t)
        return t

    return make


def _list_text(t: DeploymentsTab, deployment_id: str, col: int) -> str:
    row = t.model.row_of(deployment_id)
    assert row is not None
    return str(t.model.index(row, col).data() or "")


def test_list_and_monitor_show_one_state_and_one_counting(
        qtbot: Any, tab: Any, store: Store, make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment(device_ids=["pump-00001", "pump-00002", "pump-00003", "pump-00004"])
    t = tab()
    qtbot.waitUntil(lambda: t.monitor.snapshot is not None, timeout=WAIT)
    assert _list_text(t, d.deployment_id, 2) == "SCHEDULED"

    # The rollout starts (as the hub's engine does) and two devices reject the image.
    store.deployments.release(d.deployment_id, ["pump-00001", "pump-00002"])
    for device_id in ("pump-00001", "pump-00002"):
        store.deployments.update_execution(d.deployment_id, device_id, S.REJECTED,
                                           status_details={"reason": "untrusted-key"})
    # The monitor's poll (every second) brings the list row along with it,
    # before the list's own slower poll.
    t._timer.stop()
    qtbot.waitUntil(lambda: t.monitor.badge.text() == "IN PROGRESS", timeout=WAIT)
    assert _list_text(t, d.deployment_id, 2) == "IN PROGRESS" == t.monitor.badge.text()
    # Failures are counted in the chips' words.
    assert t.model.HEADERS[4] == "Problems"
    assert _list_text(t, d.deployment_id, 4) == "Rejected 2"
    assert t.monitor.chips["REJECTED"].text() == "Rejected 2"
    assert t.monitor.chips["FAILED"].text() == "Failed 0"

    # Pause: the description stays in the Note column, the reason follows it.
    with qtbot.waitSignal(t.monitor.action_finished, timeout=WAIT):
        t.monitor.pause_button.click()
    qtbot.waitUntil(lambda: _list_text(t, d.deployment_id, 2) == "PAUSED", timeout=WAIT)
    assert _list_text(t, d.deployment_id, 7) == "spring update — paused by erin"


def test_cancel_dialog_counts_in_proper_plurals(qtbot: Any, owned: Any,
                                                make_deployment: Callable[..., Deployment]
                                                ) -> None:
    d = make_deployment(device_ids=["pump-00001"])
    dialog = owned(CancelDialog(d, {"PENDING": 1, "IN_PROGRESS": 0}))
    assert "1 device that has not started will not be updated" in dialog.text.text()
    assert "1 devices" not in dialog.text.text()
    assert dialog.force.text() == "Also stop devices that are installing (none is installing now)"
    assert not dialog.force.isEnabled()
    dialog.set_counts({"QUEUED": 1, "IN_PROGRESS": 1})
    assert "Also stop the 1 device that is installing now" in dialog.force.text()
    assert dialog.force.isEnabled()


def _execs(t0: datetime, n: int, finished_after_s: float) -> list[Execution]:
    return [Execution("ota-x", f"dev-{i}", status=S.SUCCEEDED, queued_at=t0,
                      updated_at=t0 + timedelta(seconds=finished_after_s + i))
            for i in range(n)]


def test_rate_of_a_small_rollout_never_exceeds_its_devices_per_minute() -> None:
    """4 devices released at once and done within 5 s: at most 4 per minute
    (10-second bins scaled to a minute made it 12, then 24)."""
    t0 = datetime(2026, 3, 1, 8, 0, 3).astimezone()
    series = rate_series(_execs(t0, 4, 2), t0 + timedelta(seconds=40))
    assert series.bin_s == 10.0
    assert series.notified.max() == 4
    assert series.succeeded.max() == 4
    assert series.totals == {"notified": 4, "succeeded": 4, "failed": 0}


def test_a_finished_deployment_chart_stops_at_its_end(
        qtbot: Any, owned: Any, store: Store, make_deployment: Callable[..., Deployment],
        context: AppContext, monkeypatch: pytest.MonkeyPatch) -> None:
    from plugins.firmware.widgets import monitor as monitor_module
    from plugins.firmware.widgets.monitor import DeploymentMonitor

    d = make_deployment(device_ids=["pump-00001", "pump-00002"])
    store.deployments.release(d.deployment_id, d.targets)
    for device_id in d.targets:
        store.deployments.update_execution(d.deployment_id, device_id, S.SUCCEEDED)
    assert store.deployments.get(d.deployment_id).status is DeploymentStatus.COMPLETED
    # The monitor is looked at an hour after the rollout ended.
    monkeypatch.setattr(monitor_module, "utcnow", lambda: utcnow() + timedelta(hours=1))
    monitor = owned(DeploymentMonitor(context))
    monitor.show()
    with qtbot.waitSignal(monitor.updated, timeout=WAIT):
        monitor.show_deployment(d.deployment_id)
    series = monitor.chart.series
    assert series is not None
    end = store.deployments.get(d.deployment_id).updated_at.timestamp()
    assert series.edges[-1] - end <= series.bin_s, "the axis ends with the rollout, not now"


def test_rate_chart_reads_clock_time_and_keeps_its_legend_off_the_curves(
        qtbot: Any, owned: Any) -> None:
    chart = owned(RateChart())
    chart.resize(900, 220)
    chart.show()
    qtbot.waitExposed(chart)
    axis = chart.getAxis("bottom")
    assert axis.tickValues(0.0, 1.0, 800) == [], "no labels before there is any data"
    t0 = datetime(2026, 3, 1, 11, 0, 5).astimezone().timestamp()
    ticks = axis.tickValues(t0, t0 + 300, 800)
    assert ticks, "five minutes of rollout have ticks"
    step, values = ticks[0]
    labels = axis.tickStrings(values, 1.0, step)
    # whole minutes, as the rate is per minute (tests/gui/firmware/test_rate_chart_axis.py)
    assert labels and all(len(s) == 5 and s.count(":") == 1 for s in labels), labels
    assert "11:01" in labels
    # The legend is the plot's title line, above the view box, not an item inside it.
    assert chart.getPlotItem().legend is None
    assert "Notified" in chart.legend_text and "Succeeded" in chart.legend_text


def test_progress_column_is_filled_after_the_download() -> None:
    """Each status report replaces the details, so "progress" is gone once a
    device verifies or installs; the column still shows how far it got."""
    t0 = utcnow()

    def e(device_id: str, status: S, details: dict[str, str]) -> Execution:
        return Execution("ota-x", device_id, status=status, status_details=details,
                         queued_at=t0, updated_at=t0)

    rows = build_rows(["a", "b", "c", "d", "e", "f"], [
        e("a", S.IN_PROGRESS, {"step": "downloading", "progress": "40"}),
        e("b", S.IN_PROGRESS, {"step": "installing"}),
        e("c", S.SUCCEEDED, {"step": "committed"}),
        e("d", S.QUEUED, {}),
        e("e", S.FAILED, {"step": "downloading", "reason": "download-failed"}),
    ])
    assert [r.progress for r in rows] == [40, 100, 100, None, None, None]
    assert rows[5].state == "PENDING"
    canceled = build_rows(["a", "f"], [e("a", S.CANCELED, {})], canceled=True)
    assert canceled[1].state == "CANCELED" and canceled[1].details.startswith("not started")


def test_an_empty_monitor_counts_no_devices_and_draws_no_milli_axis(tab: Any) -> None:
    """Before any deployment is selected the progress bar said "0 of 1 devices
    finished" and the rate chart's axis read -400…400 "(x0.001)"."""
    t = tab()
    monitor = t.monitor
    assert monitor.deployment_id is None
    assert "devices" not in monitor.progress.text()
    low, high = monitor.chart.getViewBox().viewRange()[1]
    assert (low, high) == (0, 1)
    axis = monitor.chart.getAxis("left")
    assert not axis.autoSIPrefix
    assert "x0.001" not in axis.labelString()
