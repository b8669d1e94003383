"""Each person's tasks on `smartiot --profile aws-local`, beyond the first look that
test_console_on_aws.py takes: what a technician, support, an engineer and a QA
person do in a working hour, on the sandbox with the real console and CLI.

One sandbox for the module (eight simulated devices, so two pumps: a rollout at one
device a minute has a second pump still waiting when the engineer cancels it). Each
step prints how long it took (``-s`` shows them); nothing asserts a duration.

SMARTIOT_SCREENSHOTS=1 under xvfb-run writes docs/screenshots/aws-walk-*.png."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytestqt.exceptions import TimeoutError

from core.model.timeutil import utcnow
from plugins.aws.console_access.launch import LaunchedSandbox
from tests.e2e.test_console_on_aws import WAIT, Sandbox, _shot, sign_in

pytestmark = pytest.mark.gui
__all__ = ["sign_in"]  # the console's sign-in fixture, on this module's sandbox
ROLLOUT = 180_000


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("aws-walk")
    launched = LaunchedSandbox(home / "data", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "8", "--rate", "1"))
    info = launched.start()
    try:
        yield Sandbox(info, home)
    finally:
        launched.stop()


class Steps:
    """How long each step of a walk took, printed at the end (never asserted)."""

    def __init__(self, role: str) -> None:
        self.role, self.start = role, time.monotonic()
        self.rows: list[tuple[str, float]] = []

    def done(self, what: str) -> None:
        now = time.monotonic()
        self.rows.append((what, now - self.start))
        self.start = now
        print(f"[{self.role}] {what}: {self.rows[-1][1]:.1f} s")


def _pump_rows(devices: Any) -> list[int]:
    return [i for i, r in enumerate(devices.model.rows())
            if r.device.device_id.startswith("pump-")]


def test_technician_finds_a_pump_reboots_it_and_reads_its_history(
        sandbox: Sandbox, sign_in: Any, qtbot: Any) -> None:
    steps = Steps("technician")
    window = sign_in("technician")
    steps.done("sign in")
    window.show_page("devices")
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 8, timeout=WAIT)
    steps.done("devices listed")
    devices.search.setText("pump-00001")
    qtbot.waitUntil(lambda: devices.proxy.rowCount() == 1, timeout=WAIT)
    steps.done("found by search")
    devices.open_detail(0)
    detail = devices.detail
    assert detail.device_id == "pump-00001"
    commands = detail.commands
    detail.tabs.setCurrentWidget(commands)
    assert commands.reboot_button.isEnabled()
    asked: list[str] = []

    def confirm(title: str, text: str) -> bool:  # the person answers Yes
        asked.append(text)
        return True

    commands.confirm = confirm
    commands.reboot_button.click()
    assert asked and "pump-00001" in asked[0]
    qtbot.waitUntil(lambda: commands.command_status.text().startswith(("reboot:", "reboot f")),
                    timeout=2 * WAIT)
    _shot(window, qtbot, "walk-technician-reboot")
    assert commands.command_status.text().startswith("reboot: ok"), \
        commands.command_status.text()
    steps.done("reboot answered")

    # The pump's history: the Analytics page's History tab, the last hour by default.
    analytics = window.show_page("analytics")
    history = analytics.history
    analytics.tabs.setCurrentWidget(history)
    qtbot.waitUntil(lambda: "pump-00001" in " ".join(history.picker.device_names()),
                    timeout=WAIT)
    # The pump's first readings reach the store through the stream's 5 s batch window,
    # and the reboot is answered in well under a second: the technician may get here
    # before the pump has a stored reading; the picker offers its metrics once it has.
    history.picker.select(["pump-00001"], ["vibration_rms"])
    qtbot.waitUntil(lambda: "vibration_rms" in history.picker.metric_names(), timeout=WAIT)
    assert history.picker.selected_metrics() == ["vibration_rms"]
    history.reload()
    try:
        qtbot.waitUntil(lambda: history.status.text().endswith(("raw readings", "buckets")),
                        timeout=WAIT)
    except TimeoutError:
        raise AssertionError(f"history status: {history.status.text()!r}") from None
    points = sum(len(s) for s in history.result.series)
    assert points > 0 and history.status.text().startswith(f"{points:,} point"), \
        history.status.text()
    _shot(window, qtbot, "walk-technician-history")
    steps.done("history drawn")


def test_support_snoozes_an_alert_and_dynamodb_holds_until_when(
        sandbox: Sandbox, sign_in: Any, qtbot: Any) -> None:
    steps = Steps("support")
    window = sign_in("support")
    window.show_page("alerts")
    page = window.page_widget("alerts")
    qtbot.waitUntil(lambda: any(a.device_id.startswith("pump-") and a.is_open
                                for a in page.model.alerts()), timeout=WAIT)
    steps.done("sign in, alerts listed")
    alert = next(a for a in page.model.alerts() if a.device_id.startswith("pump-")
                 and a.is_open)
    page.select_alerts([alert.alert_id])
    assert page.snooze_button.isEnabled()
    until = utcnow() + timedelta(hours=2)
    with qtbot.waitSignal(page.actions_done, timeout=WAIT) as done:
        page.snooze_selected(until)
    assert [r.ok for r in done.args[0]] == [True]
    steps.done("snoozed")
    item = sandbox.client("dynamodb").get_item(
        TableName=f"iot-alerts-{sandbox.info['stage']}",
        Key={"alert_id": {"S": alert.alert_id}}, ConsistentRead=True)["Item"]
    assert "snoozed_until" in item
    # the page shows it snoozed (or leaves it out of the queue of what needs a person)
    qtbot.waitUntil(lambda: page.model.row_of(alert.alert_id) is None
                    or next(a for a in page.model.alerts()
                            if a.alert_id == alert.alert_id).is_snoozed(), timeout=WAIT)
    _shot(window, qtbot, "walk-support-snoozed")


def _cli(sandbox: Sandbox, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTIOT_CONFIG": str(sandbox.home / "config" / "config.toml"),
           "SMARTIOT_DATA_DIR": str(sandbox.home / "data")}
    return subprocess.run([sys.executable, "-m", "console.cli", "--profile", "aws-local",
                           *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=120)


def test_engineer_uploads_deploys_to_both_pumps_and_cancels_from_the_monitor(
        sandbox: Sandbox, sign_in: Any, qtbot: Any, tmp_path: Path) -> None:
    from core.crypto.keystore import CodeSigningKeys

    steps = Steps("engineer")
    keys = CodeSigningKeys(sandbox.home / "data" / "codesign")
    admin = sign_in("admin")
    admin.context.api.firmware.trust_key(keys.public_pem(), sandbox.user("engineer")["username"])
    admin.close()
    window = sign_in("engineer")
    steps.done("key trusted, sign in")

    image = tmp_path / "pump-7.7.0.bin"
    image.write_bytes(os.urandom(200_000))
    window.show_page("firmware")
    firmware = window.page_widget("firmware")
    firmware.tabs.setCurrentWidget(firmware.library)
    firmware.library.import_button.click()
    dialog = firmware.library.import_dialog
    qtbot.waitUntil(lambda: dialog is not None and dialog.isVisible(), timeout=WAIT)
    dialog.path.setText(str(image))
    dialog.version.setText("7.7.0")
    dialog.device_type.setCurrentText("pump")
    imported: list[Any] = []
    dialog.imported.connect(imported.append)
    dialog.start_import()
    qtbot.waitUntil(lambda: bool(imported), timeout=WAIT)
    assert dialog.progress.value() == 100
    dialog.close()
    steps.done("upload, signed")

    firmware.tabs.setCurrentWidget(firmware.deployments)
    firmware.deployments.new_button.click()
    wizard = firmware.deployments.wizard
    qtbot.waitUntil(lambda: wizard is not None and wizard.isVisible(), timeout=WAIT)
    targets = wizard.targets
    targets.device_type.setCurrentIndex(targets.device_type.findData("pump"))
    qtbot.waitUntil(lambda: targets.count_label.text().startswith("2 devices match"),
                    timeout=WAIT)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.firmware_page.plan is not None, timeout=WAIT)
    assert wizard.firmware_page.select("pump@7.7.0")
    wizard.next()
    wizard.rollout.constant.setChecked(True)
    wizard.rollout.per_minute.setValue(1)  # the second pump waits a minute
    wizard.next()
    qtbot.waitUntil(lambda: wizard.review.plan is not None, timeout=WAIT)
    with qtbot.waitSignal(wizard.created, timeout=WAIT) as created:
        wizard.button(wizard.WizardButton.FinishButton).click()
    deployment_id = created.args[0].deployment_id
    steps.done("deployment created")

    deployments = firmware.deployments
    monitor = deployments.monitor
    qtbot.waitUntil(lambda: deployments.select(deployment_id), timeout=WAIT)

    def status() -> str:
        snap = monitor.snapshot
        return "" if snap is None or snap.deployment.deployment_id != deployment_id \
            else snap.deployment.status.value

    qtbot.waitUntil(lambda: status() == "IN_PROGRESS", timeout=WAIT)
    assert "constant: 1 device" in monitor.subtitle.text()
    # IoT Jobs cannot pause: the monitor says so before anyone clicks
    assert not monitor.pause_button.isEnabled()
    assert monitor.cancel_button.isEnabled()
    monitor.cancel_button.click()
    cancel = monitor.cancel_dialog
    qtbot.waitUntil(lambda: cancel is not None and cancel.isVisible(), timeout=WAIT)
    qtbot.waitUntil(cancel.confirm.isEnabled, timeout=WAIT)  # its counts read afresh
    _shot(cancel, qtbot, "walk-engineer-cancel-dialog")
    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        cancel.confirm.click()
    qtbot.waitUntil(lambda: status() == "CANCELED", timeout=WAIT)
    steps.done("canceled from the monitor")
    assert f"{deployment_id} canceled." in monitor.message.text()
    assert sandbox.client("iot").describe_job(jobId=deployment_id)["job"]["status"] \
        in {"CANCELED", "DELETION_IN_PROGRESS"}
    _shot(window, qtbot, "walk-engineer-canceled")

    # The CLI on the same profile reads the same deployment, without a false warning
    # about its job document (the API does not send it back).
    password = sandbox.user("engineer")["password"]
    login = _cli(sandbox, "login", "--username", sandbox.user("engineer")["username"],
                 "--password-stdin", stdin=password + "\n")
    assert login.returncode == 0, login.stderr[-2000:]
    shown = _cli(sandbox, "deploy", "status", deployment_id)
    assert shown.returncode == 0, shown.stderr[-2000:]
    assert f"{deployment_id}  CANCELED  pump@7.7.0" in shown.stdout
    assert "devices will refuse it" not in shown.stdout, shown.stdout
    # --devices lists both pumps, the one canceled before its turn too (as the monitor)
    per_device = _cli(sandbox, "deploy", "status", deployment_id, "--devices")
    assert per_device.returncode == 0, per_device.stderr[-2000:]
    lines = [line.split() for line in per_device.stdout.splitlines()
             if line.strip().startswith("pump-")]
    assert sorted(line[0] for line in lines) == ["pump-00000", "pump-00001"], per_device.stdout
    assert "not started: canceled before this device's turn" in per_device.stdout
    steps.done("CLI deploy status")


def test_qa_signs_in_on_the_cli_and_lists_exports_and_acknowledges(
        sandbox: Sandbox, tmp_path: Path) -> None:
    steps = Steps("qa")
    user = sandbox.user("support")
    login = _cli(sandbox, "login", "--username", user["username"], "--password-stdin",
                 stdin=user["password"] + "\n")
    assert login.returncode == 0, login.stderr[-2000:]
    steps.done("smartiot login")
    listed = _cli(sandbox, "devices", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "8 device(s)" in listed.stdout
    steps.done("devices list")
    for command in (("firmware", "list"), ("deploy", "list")):
        out = _cli(sandbox, *command)
        assert out.returncode == 0, (command, out.stderr[-2000:])
        steps.done(" ".join(command))
    alerts = _cli(sandbox, "alerts", "list")
    assert alerts.returncode == 0, alerts.stderr[-2000:]
    steps.done("alerts list")
    # acknowledged as the person signed in; a --user claim is said to be ignored
    short_id = next(line.split()[0] for line in alerts.stdout.splitlines()
                    if " pump-" in line)
    acked = _cli(sandbox, "alerts", "ack", short_id, "--user", "someone.else",
                 "--comment", "checked from the CLI")
    assert acked.returncode == 0, acked.stderr[-2000:]
    assert "--user someone.else is ignored: on the REST API you act as the person signed in" \
        in acked.stderr, acked.stderr
    items = sandbox.client("dynamodb").query(
        TableName=f"iot-alerts-{sandbox.info['stage']}", IndexName="OrganizationStateIndex",
        KeyConditionExpression="org_state = :s",
        ExpressionAttributeValues={":s": {"S": "demo#acknowledged"}})["Items"]
    assert any(i["alert_id"]["S"].startswith(short_id)
               and i["acknowledged_by"]["S"] == user["username"] for i in items), items
    steps.done("alerts ack")

    path = tmp_path / "pump.csv"
    out = _cli(sandbox, "export", "--device", "pump-00000", "--metric", "vibration_rms",
               "--from", "-10m", "-o", str(path))
    assert out.returncode == 0, out.stderr[-2000:]
    rows = path.read_text().splitlines()
    assert rows[0].startswith("device_id,metric,") and len(rows) > 1
    assert all(r.startswith("pump-00000,vibration_rms,") for r in rows[1:])
    steps.done("export csv")
    out = _cli(sandbox, "export", "--device", "pump-00000", "--metric", "vibration_rms",
               "--from", "-10m", "--bucket", "1m", "--format", "json")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout)
    steps.done("export json buckets")

    out = _cli(sandbox, "logout")
    assert out.returncode == 0, out.stderr[-2000:]
    refused = _cli(sandbox, "devices", "list")
    assert refused.returncode != 0 and "not signed in" in refused.stderr


def test_a_bad_device_message_appears_on_the_rejected_page_by_itself(
        sandbox: Sandbox, sign_in: Any, qtbot: Any) -> None:
    """The stream consumer quarantines it; IoT Core's live topics do not carry it, so
    the page must find it by itself (no Refresh clicked)."""
    import urllib.parse

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    steps = Steps("technician")
    window = sign_in("technician")
    window.show_page("rejected")
    page = window.page_widget("rejected")
    qtbot.waitUntil(lambda: page.alerts is not None and page.refresh_button.isEnabled(),
                    timeout=WAIT)
    before = page.model.rowCount()
    url = urllib.parse.urlsplit(sandbox.info["mqtt_url"])
    device = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="walk-bad-pump")
    device.connect(url.hostname or "", url.port or 0)
    device.loop_start()
    try:
        device.publish("dt/demo/pump-00001/telemetry", b"{not json", qos=1).wait_for_publish(10)
    finally:
        device.disconnect()
        device.loop_stop()
    qtbot.waitUntil(lambda: page.model.rowCount() > before, timeout=2 * WAIT)
    message = page.model.message(0)
    assert message.device_id == "pump-00001" and message.payload == b"{not json"
    assert message.reason == "malformed_json"
    assert not page.status.isVisible()  # no "No rejected messages" above the row
    _shot(window, qtbot, "walk-rejected")
    steps.done("rejected message shown")
