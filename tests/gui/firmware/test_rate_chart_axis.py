"""The monitor's "devices / min" chart starts when the deployment was created
and reads in minutes: its axis started before the deployment existed (the
first bin rounded down) and was labelled every few seconds. Real monitor on a
SQLite store, its real chart; and a screenshot of it under the offscreen
platform for a person to look at."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.context import AppContext
from core.model import Deployment, ExecutionStatus
from core.store import Store
from plugins.firmware.widgets.monitor import DeploymentMonitor
from plugins.firmware.widgets.rate_chart import MIN_SPAN_S
from tests.gui.firmware.conftest import WAIT

pytestmark = pytest.mark.gui


def test_rate_chart_starts_at_creation_in_whole_minutes(
        qtbot: Any, owned: Any, store: Store, context: AppContext, tmp_path: Path,
        make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment(device_ids=["pump-00001", "pump-00002"])
    store.deployments.release(d.deployment_id, ["pump-00001"])
    store.deployments.update_execution(d.deployment_id, "pump-00001",
                                       ExecutionStatus.IN_PROGRESS)
    monitor = owned(DeploymentMonitor(context))
    monitor.resize(1100, 700)
    monitor.show()
    qtbot.waitExposed(monitor)
    with qtbot.waitSignal(monitor.updated, timeout=WAIT):
        monitor.show_deployment(d.deployment_id)
    series = monitor.chart.series
    assert series is not None and not series.empty
    created = d.created_at.timestamp()
    assert series.edges[0] == pytest.approx(created), "the axis starts at creation"
    (low, high), _ = monitor.chart.getViewBox().viewRange()
    assert low >= created - 1, "no time before the deployment existed"
    assert high - low >= MIN_SPAN_S - 1, "a young rollout's minute is not stretched out"
    axis = monitor.chart.getAxis("bottom")
    width = axis.geometry().width()
    ticks = axis.tickValues(low, high, width)
    step, values = ticks[0]
    assert step >= 60 and values
    labels = axis.tickStrings(values, 1.0, step)
    assert all(len(s) == 5 and s[2] == ":" for s in labels), labels
    qtbot.wait(300)
    monitor.grab().save(str(tmp_path / "monitor.png"))
