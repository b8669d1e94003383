"""The cancel dialog counts the devices as they are when it opens, not as the
monitor's last poll saw them: right after a rollout was created it said "2
devices that have not started … none is installing now" while one already
installed. Real monitor on a SQLite store; its poll is held back so that only
the dialog's own read can bring the change in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from core.context import AppContext
from core.model import Deployment, ExecutionStatus
from core.store import Store
from plugins.firmware.widgets.monitor import DeploymentMonitor
from tests.gui.firmware.conftest import WAIT

pytestmark = pytest.mark.gui


def test_cancel_dialog_reads_the_counts_afresh_before_it_can_be_confirmed(
        qtbot: Any, owned: Any, store: Store, context: AppContext,
        make_deployment: Callable[..., Deployment]) -> None:
    d = make_deployment(device_ids=["pump-00001", "pump-00002"])
    monitor = owned(DeploymentMonitor(context))
    monitor.show()
    with qtbot.waitSignal(monitor.updated, timeout=WAIT):
        monitor.show_deployment(d.deployment_id)
    assert monitor.snapshot is not None
    assert monitor.snapshot.counts.get("IN_PROGRESS", 0) == 0
    monitor._timer.stop()  # the next poll has not come yet

    # the rollout goes on meanwhile (as the hub's engine and a device do)
    store.deployments.release(d.deployment_id, ["pump-00001"])
    store.deployments.update_execution(d.deployment_id, "pump-00001",
                                       ExecutionStatus.IN_PROGRESS,
                                       status_details={"step": "installing"})
    monitor.ask_cancel()
    dialog = monitor.cancel_dialog
    assert dialog is not None
    assert not dialog.confirm.isEnabled(), "no confirming counts that may be stale"
    qtbot.waitUntil(dialog.confirm.isEnabled, timeout=WAIT)
    assert "1 device that has not started will not be updated" in dialog.text.text()
    assert "Also stop the 1 device that is installing now" in dialog.force.text()
    assert dialog.force.isEnabled()
    assert not monitor._timer.isActive(), "the dialog's read, not a poll, brought it"
    dialog.reject()
