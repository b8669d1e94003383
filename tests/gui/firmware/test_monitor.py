"""The deployment monitor against the real DeploymentService: what it shows
mid-rollout, the buttons (pause, resume, retry, cancel with force) changing
the store, an automatic abort by the real rollout engine shown with its
reason, roles, and 10,000 targets polled without resetting the table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from core.context import AppContext
from core.model import Deployment, DeploymentStatus, Device, Execution, ExecutionStatus
from core.model.rollout import AbortCriterion, FailureType, JobConfig
from core.model.timeutil import utcnow
from core.services.rollout import RolloutEngine
from core.store import Store
from plugins.firmware.widgets.monitor import DeploymentMonitor
from tests.gui.firmware.conftest import WAIT, pumps

pytestmark = pytest.mark.gui
S = ExecutionStatus


@pytest.fixture
def make_monitor(qtbot: Any, owned: Any) -> Callable[[AppContext, str], DeploymentMonitor]:
    def make(context: AppContext, deployment_id: str) -> DeploymentMonitor:
        monitor = owned(DeploymentMonitor(context))
        monitor.resize(1200, 800)
        monitor.show()
        with qtbot.waitSignal(monitor.updated, timeout=WAIT):
            monitor.show_deployment(deployment_id)
        return monitor

    return make


def drive(store: Store, d: Deployment, plan: dict[str, list[tuple[S, dict[str, str]]]]) -> None:
    """Release the devices in ``plan`` and walk each through its updates."""
    store.deployments.release(d.deployment_id, list(plan))
    for device_id, steps in plan.items():
        for status, details in steps:
            store.deployments.update_execution(d.deployment_id, device_id, status,
                                               status_details=details)


def mid_rollout(store: Store, d: Deployment) -> None:
    ids = list(d.targets)
    ok = [(S.IN_PROGRESS, {"step": "downloading", "progress": "10"}),
          (S.SUCCEEDED, {"step": "committed", "progress": "100", "from_version": "1.0.0",
                         "to_version": "2.0.0"})]
    plan: dict[str, list[tuple[S, dict[str, str]]]] = {i: ok for i in ids[:5]}
    plan.update({i: [(S.IN_PROGRESS, {"step": "downloading", "progress": "40"})]
                 for i in ids[5:8]})
    plan.update({i: [(S.IN_PROGRESS, {"step": "verifying"}),
                     (S.FAILED, {"reason": "sha256-mismatch",
                                 "message": "image hash differs after download"})]
                 for i in ids[8:10]})
    plan.update({i: [] for i in ids[10:12]})
    drive(store, d, plan)


@pytest.fixture
def running(make_monitor: Any, store: Store, make_deployment: Callable[..., Deployment]
            ) -> Callable[[AppContext], tuple[Deployment, DeploymentMonitor]]:
    """A deployment mid-rollout and a monitor showing it to ``context``'s user."""

    def open_(context: AppContext) -> tuple[Deployment, DeploymentMonitor]:
        d = make_deployment()
        mid_rollout(store, d)
        return d, make_monitor(context, d.deployment_id)

    return open_


def texts(monitor: DeploymentMonitor, device_id: str) -> list[str]:
    row = monitor.model.row_of(device_id)
    assert row is not None
    return [monitor.model.index(row, c).data() or "" for c in range(monitor.model.columnCount())]


def test_mid_rollout_counts_progress_chart_table_and_filters(
        qtbot: Any, running: Any, context: AppContext, store: Store) -> None:
    d, monitor = running(context)
    ids = list(d.targets)

    chips = {s: c.text() for s, c in monitor.chips.items() if c.isVisible()}
    assert chips == {"PENDING": "Pending 8", "QUEUED": "Queued 2", "IN_PROGRESS": "In progress 3",
                     "SUCCEEDED": "Succeeded 5", "FAILED": "Failed 2", "REJECTED": "Rejected 0",
                     "TIMED_OUT": "Timed out 0", "CANCELED": "Canceled 0"}
    # The bar fills with updated devices only; failures and what is left are named.
    assert (monitor.progress.value(), monitor.progress.maximum()) == (5, 20)
    assert monitor.progress.text() == "5 of 20 updated · 2 failed · 13 to go"
    assert monitor.badge.text() == "IN PROGRESS"
    assert "pump@2.0.0" in monitor.subtitle.text() and "erin" in monitor.subtitle.text()
    assert "constant: 10 devices per minute" in monitor.subtitle.text()
    assert not monitor.banner.isVisible()

    # One row per target, in target order; details from the device's status report.
    assert monitor.model.rowCount() == 20
    assert texts(monitor, ids[0])[:6] == [ids[0], "succeeded", "committed", "100%",
                                          "1.0.0 → 2.0.0", "#1"]
    assert texts(monitor, ids[5])[1:4] == ["in progress", "downloading", "40%"]
    assert texts(monitor, ids[8])[4] == "sha256-mismatch: image hash differs after download"
    assert texts(monitor, ids[19])[1] == "pending"

    # The chart has notified and finished devices in it.
    series = monitor.chart.series
    assert series is not None and not series.empty
    assert series.totals == {"notified": 12, "succeeded": 5, "failed": 2}
    assert "Notified (12)" in monitor.chart.legend_text

    # Filters: a state (also by clicking its chip) and text.
    monitor.chips["FAILED"].click()
    assert monitor.proxy.rowCount() == 2
    assert monitor.shown_label.text() == "2 of 20"
    monitor.chips["FAILED"].click()  # again: all states
    assert monitor.proxy.rowCount() == 20
    monitor.search.setText("sha256")
    assert monitor.proxy.rowCount() == 2
    monitor.search.clear()
    monitor.state_filter.setCurrentIndex(monitor.state_filter.findData("IN_PROGRESS"))
    assert monitor.proxy.rowCount() == 3

    # Buttons an engineer may use on a running deployment.
    assert monitor.pause_button.isEnabled() and monitor.pause_button.text() == "Pause"
    assert monitor.cancel_button.isEnabled()
    assert monitor.retry_button.isEnabled()

    # A device reports progress: the next poll shows it without a reset.
    resets: list[int] = []
    monitor.model.modelReset.connect(lambda: resets.append(1))
    store.deployments.update_execution(d.deployment_id, ids[6], S.IN_PROGRESS,
                                       status_details={"progress": "85"})
    qtbot.waitUntil(lambda: texts(monitor, ids[6])[3] == "85%", timeout=WAIT)
    assert resets == []
    assert monitor.proxy.rowCount() == 3  # the state filter survived the poll


def test_pause_resume_retry_and_forced_cancel_change_the_store(
        qtbot: Any, running: Any, context: AppContext, store: Store) -> None:
    d, monitor = running(context)
    failed = [e.device_id for e in store.deployments.executions(d.deployment_id)
              if e.status is S.FAILED]

    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        monitor.pause_button.click()
    assert store.deployments.get(d.deployment_id).status is DeploymentStatus.PAUSED
    qtbot.waitUntil(lambda: monitor.pause_button.text() == "Resume", timeout=WAIT)
    assert monitor.badge.text() == "PAUSED"
    assert monitor.banner.text().startswith("Paused by erin.")

    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        monitor.pause_button.click()
    assert store.deployments.get(d.deployment_id).status is DeploymentStatus.IN_PROGRESS
    qtbot.waitUntil(lambda: monitor.pause_button.text() == "Pause", timeout=WAIT)

    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        monitor.retry_button.click()
    assert monitor.message.text() == "2 devices queued for another attempt."
    for device_id in failed:
        e = store.deployments.execution(d.deployment_id, device_id)
        assert (e.status, e.execution_number) == (S.QUEUED, 2)
    qtbot.waitUntil(lambda: texts(monitor, failed[0])[1] == "queued", timeout=WAIT)
    assert texts(monitor, failed[0])[5] == "#2"
    qtbot.waitUntil(lambda: not monitor.retry_button.isEnabled(), timeout=WAIT)  # none left

    monitor.cancel_button.click()
    dialog = monitor.cancel_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.force.isEnabled()  # three devices are installing
    # 8 pending + 4 queued have not started; the dialog follows the polls.
    assert "12 devices that have not started will not be updated" in dialog.text.text()
    assert "Also stop the 3 devices that are installing" in dialog.force.text()
    queued = next(r.device_id for r in monitor.model.rows if r.state == "QUEUED")
    store.deployments.update_execution(d.deployment_id, queued, S.IN_PROGRESS)
    qtbot.waitUntil(lambda: "11 devices that have not started" in dialog.text.text(),
                    timeout=WAIT)
    assert "Also stop the 4 devices that are installing" in dialog.force.text()
    dialog.force.setChecked(True)
    qtbot.waitUntil(dialog.confirm.isEnabled, timeout=WAIT)
    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        dialog.confirm.click()
    stored = store.deployments.get(d.deployment_id)
    assert stored.status is DeploymentStatus.CANCELED
    assert stored.reason == "canceled by erin (forced)"
    counts = store.deployments.counts(d.deployment_id)
    # 4 installing + 3 queued + the 8 never released: all CANCELED, nothing PENDING.
    assert counts.get("IN_PROGRESS", 0) == 0 and counts["CANCELED"] == 4 + 3 + 8
    assert counts["PENDING"] == 0 and sum(counts.values()) == len(d.targets)
    qtbot.waitUntil(lambda: monitor.chips["CANCELED"].text() == "Canceled 15", timeout=WAIT)
    assert monitor.chips["PENDING"].text() == "Pending 0"
    assert texts(monitor, d.targets[19])[1] == "canceled"
    assert texts(monitor, d.targets[19])[4].startswith("not started")
    qtbot.waitUntil(lambda: monitor.badge.text() == "CANCELED", timeout=WAIT)
    assert monitor.banner.text() == "Canceled by erin (forced)."
    # Canceled is final but no success: the bar stays at the updated devices and
    # says what became of the others (it read "20 of 20 devices finished (100%)").
    assert (monitor.progress.value(), monitor.progress.maximum()) == (5, 20)
    assert monitor.progress.text() == "5 of 20 updated · 15 canceled"
    assert not monitor.cancel_button.isEnabled()
    assert not monitor.pause_button.isEnabled()
    assert not monitor.retry_button.isEnabled()


class _Notifier:
    def released(self, deployment: Deployment, executions: list[Execution]) -> None:
        pass

    def canceled(self, deployment: Deployment, device_ids: list[str]) -> None:
        pass


def test_automatic_abort_by_the_rollout_engine_is_shown_with_its_reason(
        qtbot: Any, make_monitor: Any, context: AppContext, store: Store,
        make_deployment: Callable[..., Deployment]) -> None:
    config = JobConfig(abort=(AbortCriterion(FailureType.FAILED, 10.0, 5),))
    d = make_deployment(config=config)
    now = [utcnow()]
    engine = RolloutEngine(store.deployments, _Notifier(), clock=lambda: now[0])
    engine.tick()  # no rate: every target released at once
    assert store.deployments.counts(d.deployment_id)["QUEUED"] == 20
    monitor = make_monitor(context, d.deployment_id)
    assert not monitor.banner.isVisible()

    for i, device_id in enumerate(d.targets[:5]):
        status = S.SUCCEEDED if i < 3 else S.FAILED
        e = store.deployments.update_execution(d.deployment_id, device_id, status,
                                               status_details={"reason": "selftest-failed"}
                                               if status is S.FAILED else {})
        engine.execution_updated(e)
    stored = store.deployments.get(d.deployment_id)
    assert stored.status is DeploymentStatus.CANCELED
    assert stored.reason.startswith("automatic abort: 2 of 5 executed devices (40%) ended FAILED")

    qtbot.waitUntil(lambda: monitor.banner.isVisible(), timeout=WAIT)
    assert monitor.banner.text().startswith("⚠ Canceled automatically — " + stored.reason)
    assert monitor.banner.property("role") == "error"
    assert monitor.badge.text() == "CANCELED"
    assert monitor.chips["CANCELED"].text() == "Canceled 15"
    assert not monitor.cancel_button.isEnabled()
    assert not monitor.pause_button.isEnabled()
    assert not monitor.retry_button.isEnabled()  # a canceled deployment is not retried


def test_technician_sees_greyed_buttons_and_a_clear_refusal(
        qtbot: Any, running: Any, technician: AppContext, store: Store) -> None:
    d, monitor = running(technician)
    for button in (monitor.pause_button, monitor.cancel_button, monitor.retry_button):
        assert not button.isEnabled()
        assert "that needs the role engineer or admin" in button.toolTip()

    # The service layer refuses even when the buttons are bypassed.
    with qtbot.waitSignal(monitor.action_failed, timeout=WAIT) as refused:
        monitor.cancel()
    assert refused.args[0].startswith("Not allowed: tess (technician) may not cancel")
    assert monitor.message.isVisible() and monitor.message.property("role") == "error"
    with qtbot.waitSignal(monitor.action_failed, timeout=WAIT):
        monitor.pause()
    assert store.deployments.get(d.deployment_id).status is DeploymentStatus.IN_PROGRESS


def test_ten_thousand_targets_poll_as_ranges_not_resets(
        qtbot: Any, make_monitor: Any, context: AppContext, store: Store,
        make_deployment: Callable[..., Deployment], fleet: list[Device]) -> None:
    many = pumps(10_000, start=1000)
    store.registry.upsert_many(many)
    d = make_deployment([x.device_id for x in many])
    store.deployments.release(d.deployment_id, d.targets[:9000])
    monitor = make_monitor(context, d.deployment_id)
    assert monitor.model.rowCount() == 10_000
    assert monitor.chips["QUEUED"].text() == "Queued 9000"

    resets: list[int] = []
    ranges: list[tuple[int, int]] = []
    monitor.model.modelReset.connect(lambda: resets.append(1))
    monitor.model.dataChanged.connect(lambda a, b, *_: ranges.append((a.row(), b.row())))
    for i in (10, 11, 12, 5000):
        store.deployments.update_execution(d.deployment_id, d.targets[i], S.IN_PROGRESS,
                                           status_details={"progress": "5"})
    qtbot.waitUntil(lambda: monitor.chips["IN_PROGRESS"].text() == "In progress 4",
                    timeout=WAIT)
    assert resets == []
    assert sorted(set(ranges)) == [(10, 12), (5000, 5000)]


def test_rate_series_bins_release_and_finish_times() -> None:
    from plugins.firmware.widgets.models import rate_series

    t0 = datetime(2026, 3, 1, 8, 0, 0).astimezone()
    execs = []
    for i in range(30):
        queued = t0 + timedelta(seconds=2 * i)
        status = S.SUCCEEDED if i < 20 else S.FAILED if i < 25 else S.QUEUED
        execs.append(Execution("ota-x", f"dev-{i}", status=status, queued_at=queued,
                               updated_at=queued + timedelta(seconds=30)))
    series = rate_series(execs, t0 + timedelta(minutes=5))
    assert series.bin_s == 10.0
    assert series.totals == {"notified": 30, "succeeded": 20, "failed": 5}
    assert series.notified.max() == 30  # a device every 2 s: 30 in the busiest minute
