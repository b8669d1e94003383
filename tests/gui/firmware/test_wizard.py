"""The new-deployment wizard walked page by page against the real store: the
live match count, the dry-run plan, downgrade warnings, rollout settings
validated next to their fields, the review, and Create persisting exactly
what was chosen. Also the whole Firmware page (tabs, Ctrl+N) and roles."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWizard

from core.context import AppContext
from core.model import Device, Firmware
from core.model.rollout import (
    AbortCriterion,
    ExponentialRate,
    FailureType,
    JobConfig,
    RetryCriterion,
    RolloutConfig,
)
from core.services.ota import TargetSpec
from core.store import Store
from plugins.firmware.widgets.wizard import DeploymentWizard
from tests.gui.firmware.conftest import WAIT, dispose

pytestmark = pytest.mark.gui
NEXT = QWizard.WizardButton.NextButton
FINISH = QWizard.WizardButton.FinishButton


@pytest.fixture
def wizard(qtbot: Any, context: AppContext, fleet: list[Device],
           images: dict[str, Firmware]) -> Iterator[DeploymentWizard]:
    w = DeploymentWizard(context, ["environmental", "pump"])
    w.open()
    qtbot.waitExposed(w)
    yield w
    dispose(w)


def _choose(combo: Any, data: str) -> None:
    combo.setCurrentIndex(combo.findData(data))


def walk_to_review(qtbot: Any, w: DeploymentWizard, device_type: str, count: int) -> None:
    """Choose a device type, keep the suggested image and settings, reach the review."""
    _choose(w.targets.device_type, device_type)
    qtbot.waitUntil(lambda: w.targets.count_label.text().startswith(f"{count} devices match"),
                    timeout=WAIT)
    w.next()
    qtbot.waitUntil(lambda: w.firmware_page.plan is not None, timeout=WAIT)
    w.next()
    w.next()
    qtbot.waitUntil(lambda: w.review.plan is not None, timeout=WAIT)


def test_walk_every_page_and_create(qtbot: Any, wizard: DeploymentWizard, store: Store) -> None:
    w = wizard
    targets = w.targets
    # 1 targets: nothing narrowed yet means every device; then pumps only, live.
    qtbot.waitUntil(lambda: targets.match is not None, timeout=WAIT)
    assert targets.match.count == 38
    _choose(targets.device_type, "pump")
    qtbot.waitUntil(lambda: targets.count_label.text().startswith("30 devices match"),
                    timeout=WAIT)
    targets.tag.setText("hall-a")
    qtbot.waitUntil(lambda: targets.count_label.text().startswith("15 devices match"),
                    timeout=WAIT)
    assert targets.spec == TargetSpec("group", device_types=("pump",), tag="hall-a")
    targets.tag.clear()
    qtbot.waitUntil(lambda: targets.count_label.text().startswith("30 devices match"),
                    timeout=WAIT)
    assert w.button(NEXT).isEnabled()
    qtbot.keyClick(targets.text, Qt.Key.Key_Return)  # Enter = next
    assert w.currentPage() is w.firmware_page

    # 2 firmware: only pump images; the newest is chosen; 5 pumps run a newer 2.1.0.
    page = w.firmware_page
    qtbot.waitUntil(lambda: page.plan is not None, timeout=WAIT)
    assert page.proxy.rowCount() == 2
    assert page.firmware is not None and page.firmware.firmware_id == "pump@2.0.0"
    assert page.plan_label.text() == "30 devices will get pump@2.0.0"
    qtbot.waitUntil(lambda: "signature: <b>verified" in page.details.text(), timeout=WAIT)
    assert "pump 2.0.0<br>fixes" in page.details.text()
    assert "5 targeted devices run a newer version than 2.0.0" in page.warning.text()
    page.allow_downgrade.setChecked(True)
    assert "Downgrade allowed: 5 devices" in page.warning.text()
    assert w.button(NEXT).isEnabled()
    w.next()

    # 3 rollout and abort: a threshold of 0 is refused next to the criteria.
    page3 = w.rollout
    assert page3.config is not None and w.button(NEXT).isEnabled()
    kind, pct, minimum = page3.abort_row(0)
    pct.setValue(0)
    assert page3.abort_error.isVisible()
    assert page3.abort_error.text() == (
        "criterion 1: abort threshold percentage must be a number from 0.0001 to 100.0, "
        "got 0.0")
    assert not w.button(NEXT).isEnabled()
    pct.setValue(12.5)
    assert not page3.abort_error.isVisible() and w.button(NEXT).isEnabled()
    kind.setCurrentText("FAILED")
    minimum.setValue(8)
    page3.add_abort.click()
    kind2, pct2, min2 = page3.abort_row(1)
    kind2.setCurrentText("TIMED_OUT")
    pct2.setValue(30)
    min2.setValue(10)
    # Exponential: a factor below 1.1 is refused next to the rate.
    page3.exponential.setChecked(True)
    page3.factor.setValue(1.0)
    assert "exponential increment factor must be a number from 1.1 to 5.0" in (
        page3.rate_error.text())
    assert not w.button(NEXT).isEnabled()
    page3.factor.setValue(1.5)
    page3.base.setValue(4)
    _choose(page3.criterion, "succeeded")
    page3.criterion_count.setValue(6)
    page3.cap.setChecked(True)
    page3.cap_value.setValue(50)
    page3.timeout.setValue(20)
    page3.retries["FAILED"].setValue(2)
    page3.retries["TIMED_OUT"].setValue(11)
    assert "number of retries must be a whole number from 0 to 10" in page3.retry_error.text()
    page3.retries["TIMED_OUT"].setValue(1)
    page3.description.setText("pressure drift fix")
    assert w.button(NEXT).isEnabled()
    w.next()

    # 4 review: the plan's count and every setting in words.
    review = w.review
    qtbot.waitUntil(lambda: review.plan is not None, timeout=WAIT)
    summary = review.summary.text()
    for expected in ("pump@2.0.0", "<b style='font-size:13pt'>30</b> will be updated",
                     "type pump", "exponential: 4/min, times 1.5 after every 6 more succeeded, "
                     "at most 50/min", "FAILED ≥ 12.5% (after 8 executed)",
                     "TIMED_OUT ≥ 30% (after 10 executed)", "20 min",
                     "FAILED up to 2 times, TIMED_OUT up to 1 time", "Downgrade",
                     "pressure drift fix", "erin (engineer)"):
        assert expected in summary, expected
    assert w.button(FINISH).text() == "&Create deployment"
    with qtbot.waitSignal(w.created, timeout=WAIT) as created:
        w.button(FINISH).click()
    deployment = created.args[0]
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)

    stored = store.deployments.get(deployment.deployment_id)
    assert stored.config == JobConfig(
        RolloutConfig(50, ExponentialRate(4, 1.5, succeeded=6)),
        (AbortCriterion(FailureType.FAILED, 12.5, 8),
         AbortCriterion(FailureType.TIMED_OUT, 30.0, 10)),
        20,
        (RetryCriterion(FailureType.FAILED, 2), RetryCriterion(FailureType.TIMED_OUT, 1)))
    assert stored.firmware_id == "pump@2.0.0"
    assert len(stored.targets) == 30 and all(t.startswith("pump-") for t in stored.targets)
    assert stored.created_by == "erin"
    assert stored.description == "pressure drift fix"
    assert stored.document["allowDowngrade"] is True
    assert TargetSpec.from_json(stored.target_spec) == TargetSpec("group", device_types=("pump",))


def test_id_list_reports_unknown_and_skipped_devices(qtbot: Any, wizard: DeploymentWizard,
                                                    store: Store) -> None:
    w = wizard
    targets = w.targets
    targets.by_ids.setChecked(True)
    targets.ids.setPlainText("pump-00001, pump-00002\nenv-00003 ghost-1")
    qtbot.waitUntil(lambda: targets.count_label.text().startswith("3 of 4 listed devices found"),
                    timeout=WAIT)
    assert "1 id is not in the registry and will be skipped: ghost-1" in targets.error.text()
    w.next()
    page = w.firmware_page
    qtbot.waitUntil(lambda: page.plan is not None, timeout=WAIT)
    # Both targeted types are offered; the plan leaves the sensor and the unknown id out.
    assert page.proxy.rowCount() == 3
    assert page.select("pump@2.0.0")
    qtbot.waitUntil(lambda: page.plan is not None
                    and page.plan_label.text().startswith("2 devices will get pump@2.0.0"),
                    timeout=WAIT)
    assert "1 unknown device" in page.plan_label.text()
    assert "1 not a pump" in page.plan_label.text()
    w.next()
    page3 = w.rollout
    page3.all_at_once.setChecked(True)
    for spin in page3.retries.values():
        spin.setValue(0)
    page3.timeout_on.setChecked(False)
    w.next()
    qtbot.waitUntil(lambda: w.review.plan is not None, timeout=WAIT)
    summary = w.review.summary.text()
    assert "Skipped: unknown device" in summary and "ghost-1" in summary
    assert "Skipped: not a pump" in summary and "env-00003" in summary
    assert "all targets at once" in summary
    with qtbot.waitSignal(w.created, timeout=WAIT) as created:
        w.button(FINISH).click()
    stored = store.deployments.get(created.args[0].deployment_id)
    assert stored.targets == ("pump-00001", "pump-00002")
    assert stored.config == JobConfig(abort=(AbortCriterion(FailureType.ALL, 10.0, 10),))


def test_abort_rule_that_can_never_trip_is_warned_about(qtbot: Any, wizard: DeploymentWizard
                                                         ) -> None:
    """4 targets and the default "ALL ≥ 10% after 10 executed": the rule waits
    for more devices than the deployment has, so it is flagged next to it."""
    w = wizard
    w.targets.by_ids.setChecked(True)
    w.targets.ids.setPlainText("pump-00001 pump-00002 pump-00003 pump-00004")
    qtbot.waitUntil(lambda: w.targets.count_label.text().startswith("4 of 4 listed devices"),
                    timeout=WAIT)
    w.next()
    qtbot.waitUntil(lambda: w.firmware_page.plan is not None, timeout=WAIT)
    w.next()
    page3 = w.rollout
    kind, _pct, minimum = page3.abort_row(0)
    assert (kind.currentText(), minimum.value()) == ("ALL", 10)
    assert page3.abort_warning.isVisible()
    assert page3.abort_warning.text() == (
        "⚠ Criterion 1 can never trip: it waits for 10 executed devices and this deployment "
        "has only 4 targets. Lower the minimum to 4 or less.")
    assert w.button(NEXT).isEnabled(), "a warning, not an error: AWS accepts the rule"
    minimum.setValue(4)
    assert not page3.abort_warning.isVisible()
    page3.add_abort.click()  # a second criterion, default minimum 20: flagged as criterion 2
    assert page3.abort_warning.text().startswith("⚠ Criterion 2 can never trip")


def test_no_match_blocks_next_and_esc_cancels(qtbot: Any, wizard: DeploymentWizard,
                                             store: Store) -> None:
    w = wizard
    w.targets.text.setText("no-such-device")
    qtbot.waitUntil(lambda: w.targets.count_label.text().startswith("0 devices match"),
                    timeout=WAIT)
    assert "No device matches" in w.targets.error.text()
    assert not w.button(NEXT).isEnabled()
    qtbot.keyClick(w, Qt.Key.Key_Escape)
    assert not w.isVisible()
    assert store.deployments.list() == []


def test_firmware_page_tabs_shortcuts_and_new_deployment(
        qtbot: Any, owned: Any, context: AppContext, fleet: list[Device],
        images: dict[str, Firmware], store: Store) -> None:
    from plugins.firmware.plugin import _page

    page = owned(_page(context))
    page.resize(1300, 850)
    page.show()
    qtbot.waitUntil(lambda: page.library.model.rowCount() == 3, timeout=WAIT)
    qtbot.keyClick(page, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)
    assert page.tabs.currentWidget() is page.deployments
    w = page.deployments.wizard
    assert w is not None and w.isVisible()
    walk_to_review(qtbot, w, "environmental", 8)
    with qtbot.waitSignal(w.created, timeout=WAIT) as created:
        w.button(FINISH).click()
    deployment_id = created.args[0].deployment_id
    # The list shows it, selected, and the monitor follows it.
    tab = page.deployments
    qtbot.waitUntil(lambda: tab.monitor.deployment_id == deployment_id, timeout=WAIT)
    qtbot.waitUntil(lambda: tab.monitor.snapshot is not None, timeout=WAIT)
    assert tab.monitor.progress.maximum() == 8
    assert tab.model.rowCount() == 1
    assert f"Created {deployment_id}" in tab.status.text()
    page.activateWindow()  # the wizard had it; shortcuts need the window active
    qtbot.waitUntil(page.isActiveWindow, timeout=WAIT)
    qtbot.keyClick(page, Qt.Key.Key_I, Qt.KeyboardModifier.ControlModifier)
    assert page.tabs.currentWidget() is page.library
    dialog = page.library.import_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.reject()


def test_technician_cannot_start_the_wizard_and_create_is_refused(
        qtbot: Any, owned: Any, technician: AppContext, fleet: list[Device],
        images: dict[str, Firmware], store: Store) -> None:
    from plugins.firmware.widgets.firmware_page import FirmwarePage

    page = owned(FirmwarePage(technician))
    page.show()
    tab = page.deployments
    assert not tab.new_button.isEnabled()
    assert "may not create deployments" in tab.new_button.toolTip()
    page.new_deployment()
    assert tab.wizard is None
    assert tab.status.text().startswith("Not allowed: technicians may not create deployments")

    # Even a wizard opened some other way is refused by the service, and says so.
    w = owned(DeploymentWizard(technician, ["pump"]))
    w.open()
    walk_to_review(qtbot, w, "pump", 30)
    with qtbot.waitSignal(w.review.failed, timeout=WAIT) as refused:
        w.button(FINISH).click()
    assert refused.args[0].startswith("Not created: Not allowed: tess (technician) may not "
                                      "create deployments")
    assert w.isVisible() and w.review.error.isVisible()
    assert store.deployments.list() == []


def test_ids_the_registry_does_not_know_are_not_called_a_match(
        qtbot: Any, wizard: DeploymentWizard) -> None:
    """Typing four wrong ids said "0 devices match (devices tracker-00000, …)"."""
    targets = wizard.targets
    targets.by_ids.setChecked(True)
    targets.ids.setPlainText("tracker-00000, tracker-00001, tracker-00002, tracker-00003")
    qtbot.waitUntil(lambda: targets.count_label.text() == "0 of 4 listed devices found",
                    timeout=WAIT)
    assert "4 ids are not in the registry" in targets.error.text()
    assert not wizard.button(NEXT).isEnabled()
