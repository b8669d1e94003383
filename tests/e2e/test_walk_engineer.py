"""The firmware engineer's staged rollout, paused, resumed and canceled from the window.

The demo's signed pump 2.2.0 goes to three pumps at one device a minute. The first
pump installs it and reboots onto it; the engineer pauses (the banner says nothing
more is notified, the store says PAUSED), resumes, then cancels with the dialog:
the pumps that had not started keep 2.1.0, the one that did runs 2.2.0, and the
monitor, the devices list and the stored targets all agree.
"""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtWidgets import QWizard

from core.model import DeviceStatus
from tests.e2e.test_first_hour import click, fleet_cell, open_tab
from tests.e2e.walk import Console, console_fixture  # noqa: F401 - the console fixture

pytestmark = [pytest.mark.e2e, pytest.mark.gui]

WAIT = 30_000
NEXT, FINISH = QWizard.WizardButton.NextButton, QWizard.WizardButton.FinishButton
PUMPS = ("pump-00004", "pump-00005", "pump-00006")


def _status(monitor: Any) -> str:
    snap = monitor.snapshot
    return "" if snap is None else str(snap.deployment.status.value).lower()


def test_engineer_pauses_resumes_and_cancels_a_staged_rollout(
        console: Console, qtbot: Any) -> None:
    window, backend = console.window, console.backend
    qtbot.waitUntil(lambda: all(backend.link_stats.get(d) for d in PUMPS), timeout=60_000)
    page = window.show_page("firmware")
    library: Any = open_tab(qtbot, page.tabs, "Library")
    qtbot.waitUntil(lambda: library.model.row_of("pump@2.2.0") is not None, timeout=WAIT)

    deployments: Any = open_tab(qtbot, page.tabs, "Deployments")
    click(qtbot, deployments.new_button)
    qtbot.waitUntil(lambda: deployments.wizard is not None and deployments.wizard.isVisible(),
                    timeout=WAIT)
    wizard = deployments.wizard
    click(qtbot, wizard.targets.by_ids)
    qtbot.keyClicks(wizard.targets.ids, " ".join(PUMPS))
    qtbot.waitUntil(lambda: wizard.targets.count_label.text().startswith("3 of 3 listed"),
                    timeout=WAIT)
    click(qtbot, wizard.button(NEXT))
    qtbot.waitUntil(lambda: wizard.firmware_page.plan is not None, timeout=WAIT)
    assert wizard.firmware_page.select("pump@2.2.0")
    qtbot.waitUntil(lambda: wizard.firmware_page.plan_label.text().startswith(
        "3 devices will get pump@2.2.0"), timeout=WAIT)
    click(qtbot, wizard.button(NEXT))
    rollout = wizard.rollout
    click(qtbot, rollout.constant)
    rollout.per_minute.selectAll()
    qtbot.keyClicks(rollout.per_minute, "1")
    assert rollout.per_minute.value() == 1
    console.shot("engineer-1-rate", wizard)
    click(qtbot, wizard.button(NEXT))
    qtbot.waitUntil(lambda: wizard.review.plan is not None, timeout=WAIT)
    with qtbot.waitSignal(wizard.created, timeout=WAIT) as created:
        click(qtbot, wizard.button(FINISH))
    deployment_id = created.args[0].deployment_id
    monitor = deployments.monitor
    qtbot.waitUntil(lambda: monitor.deployment_id == deployment_id, timeout=WAIT)

    # One device a minute: the first installs and reboots onto 2.2.0, the others wait.
    qtbot.waitUntil(lambda: monitor.snapshot is not None
                    and monitor.snapshot.counts.get("SUCCEEDED", 0) == 1, timeout=120_000)
    counts = dict(monitor.snapshot.counts)
    assert counts == {"SUCCEEDED": 1, "PENDING": 2}, counts
    console.shot("engineer-2-first-done")

    # Pause: the banner and the store say so, the button turns into Resume.
    click(qtbot, monitor.pause_button)
    qtbot.waitUntil(lambda: _status(monitor) == "paused", timeout=WAIT)
    qtbot.waitUntil(lambda: monitor.pause_button.text() == "Resume"
                    and monitor.pause_button.isEnabled(), timeout=WAIT)
    assert "No further devices are notified" in monitor.banner.text()
    stored = console.context.api.deployments.status(deployment_id).deployment
    assert str(stored.status.value).lower() == "paused", stored.status
    console.shot("engineer-3-paused")

    click(qtbot, monitor.pause_button)  # Resume
    qtbot.waitUntil(lambda: _status(monitor) in ("in_progress", "scheduled"), timeout=WAIT)

    # Cancel…: the dialog asks, "Cancel deployment" confirms.
    qtbot.waitUntil(monitor.cancel_button.isEnabled, timeout=WAIT)
    click(qtbot, monitor.cancel_button)
    qtbot.waitUntil(lambda: monitor.cancel_dialog is not None
                    and monitor.cancel_dialog.isVisible(), timeout=WAIT)
    qtbot.waitUntil(monitor.cancel_dialog.confirm.isEnabled, timeout=WAIT)  # read afresh
    console.shot("engineer-4-cancel-dialog", monitor.cancel_dialog)
    click(qtbot, monitor.cancel_dialog.confirm)
    qtbot.waitUntil(lambda: _status(monitor) == "canceled", timeout=WAIT)
    qtbot.waitUntil(lambda: monitor.banner.text().startswith("Canceled"), timeout=WAIT)
    console.shot("engineer-5-canceled")

    # What each pump runs, in the list and in the registry.
    rows = {r.device_id: r for r in monitor.snapshot.rows}
    done = [d for d, r in rows.items() if r.state == "SUCCEEDED"]
    assert len(done) == 1, rows
    devices = window.show_page("devices")
    devices.search.clear()
    versions = {d: backend.registry.get(d).firmware_version for d in PUMPS}
    qtbot.waitUntil(lambda: all(fleet_cell(devices, d, "Firmware") == versions[d]
                                for d in PUMPS), timeout=WAIT)
    assert all(versions[d] == ("2.2.0" if d in done else "2.1.0") for d in PUMPS), versions
    # The monitor says why the others never got it.
    assert all(rows[d].state == "CANCELED" for d in PUMPS if d not in done), rows
    assert all(backend.registry.get(d).status is DeviceStatus.ONLINE for d in PUMPS)
