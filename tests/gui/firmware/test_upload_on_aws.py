"""The Firmware page's import on an AWS session: the console's HTTP client
(the one an aws profile signs in with) against the REST API over the aws
backend (moto's server as S3, DynamoDB, IoT). The engineer's own key signs
on this machine, the bytes go to S3 through presigned URLs in parts with the
progress bar counting them, a Cancel mid-upload keeps the parts sent, and a
restarted console resumes from them; the image then shows in the Library.
A deployment made in the wizard on the same session becomes an IoT job."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.model.roles import Actor, Role
from plugins.api.client.fleet import HttpFleetApi
from plugins.api.client.transport import StaticToken
from plugins.firmware.widgets.import_dialog import ImportDialog
from plugins.firmware.widgets.library_tab import LibraryTab
from tests.gui.firmware.conftest import WAIT, BackendPlugin
from tests.integration.aws.conftest import aws, moto_server
from tests.integration.aws.firmware_api_fixtures import FirmwareApi, firmware_api

__all__ = ["aws", "firmware_api", "moto_server"]

pytestmark = pytest.mark.gui
MiB = 1 << 20
PART = 8 * MiB  # the client's default part: a 12 MiB image is two parts


def console_api(api: FirmwareApi, tmp_path: Path) -> HttpFleetApi:
    """What an aws profile's session gives the pages: the REST client, with
    this person's key signing here and upload tickets kept in the data dir."""
    http = HttpFleetApi(api.base_url, StaticToken(
        api.client.token(Role.ENGINEER, "erin", "acme")), timeout_s=30)
    http.sign_locally(api.erin, tmp_path / "console-data" / "uploads")
    return http


def open_dialog(qtbot: Any, owned: Any, make_context: Any, api: FirmwareApi,
                tmp_path: Path, image: Path) -> tuple[ImportDialog, Any]:
    context = make_context(("aws-backend", BackendPlugin(api.backend)),
                           actor=Actor("erin", Role.ENGINEER, "acme"))
    context._api = console_api(api, tmp_path)  # the session a signed-in console holds
    dialog = owned(ImportDialog(context, ["pump"]))
    dialog.resize(620, 420)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.path.setText(str(image))
    dialog.version.setText("5.0.0")
    dialog.device_type.setCurrentText("pump")
    return dialog, context


def test_upload_with_progress_cancel_and_resume_after_a_restart(
        qtbot: Any, owned: Any, make_context: Any, firmware_api: FirmwareApi,
        tmp_path: Path) -> None:
    api = firmware_api
    api.trust(api.erin, "erin")
    data = os.urandom(12 * MiB + 4321)
    image = tmp_path / "pump-5.0.0.bin"
    image.write_bytes(data)

    # First attempt: the person presses Cancel once the first part is in S3.
    dialog, _context = open_dialog(qtbot, owned, make_context, api, tmp_path, image)
    seen: list[tuple[int, int]] = []

    def press_cancel_after_part_one(done: int, total: int) -> None:
        seen.append((done, total))
        if done >= PART:  # runs on the upload's thread: the next write stops it
            dialog._stop = True

    dialog._relay.progressed.connect(press_cancel_after_part_one,
                                     Qt.ConnectionType.DirectConnection)
    dialog.start_import()
    qtbot.waitUntil(lambda: "Stopped at" in dialog.message.text(), timeout=WAIT * 4)
    assert "import the same file again to resume" in dialog.message.text()
    assert seen[0] == (0, len(data)) and seen[-1][0] < len(data)
    assert all(total == len(data) for _done, total in seen)
    assert [d for d, _t in seen] == sorted(d for d, _t in seen)  # only ever forward
    assert api.backend.firmware.list() == []
    (upload,) = api.aws.client("s3").list_multipart_uploads(
        Bucket=f"iot-firmware-{api.aws.stage}")["Uploads"]
    parts = api.aws.client("s3").list_parts(Bucket=f"iot-firmware-{api.aws.stage}",
                                            Key=upload["Key"], UploadId=upload["UploadId"])
    assert [p["PartNumber"] for p in parts["Parts"]] == [1]

    # The console restarts: a new session and dialog; the same file resumes at part 2.
    dialog2, context2 = open_dialog(qtbot, owned, make_context, api, tmp_path, image)
    resumed: list[tuple[int, int]] = []
    dialog2._relay.progressed.connect(lambda d, t: resumed.append((d, t)))
    with qtbot.waitSignal(dialog2.imported, timeout=WAIT * 4) as imported:
        dialog2.start_import()
    assert resumed[0] == (PART, len(data))  # part 1 was not sent again
    assert resumed[-1] == (len(data), len(data))
    assert dialog2.progress.value() == 100
    assert "MiB" in dialog2.rate_text and f"{len(data) / MiB:.1f} MiB" in dialog2.rate_text
    firmware = imported.args[0]
    assert firmware.firmware_id == "pump@5.0.0"
    assert firmware.key_id == api.erin.current_key_id()

    library = owned(LibraryTab(context2))
    with qtbot.waitSignal(library.loaded, timeout=WAIT):
        library.refresh()
    assert library.model.rowCount() == 1
    row = [library.model.index(0, c).data() for c in range(3)]
    assert row[:2] == ["pump", "5.0.0"]
    verified = api.client.call("POST", "/firmware/pump@5.0.0/verify", role=Role.SUPPORT)
    assert verified.data["ok"] is True


def test_a_deployment_made_in_the_wizard_signs_its_manifest_here_and_is_an_iot_job(
        qtbot: Any, owned: Any, make_context: Any, firmware_api: FirmwareApi,
        tmp_path: Path) -> None:
    from PySide6.QtWidgets import QWizard

    from plugins.firmware.widgets.wizard import DeploymentWizard
    from tests.gui.firmware.test_wizard import walk_to_review

    api = firmware_api
    api.trust(api.erin, "erin")
    image = tmp_path / "pump-6.0.0.bin"
    image.write_bytes(os.urandom(200_000))
    context = make_context(("aws-backend", BackendPlugin(api.backend)),
                           actor=Actor("erin", Role.ENGINEER, "acme"))
    context._api = console_api(api, tmp_path)
    context._api.firmware.import_file(image, version="6.0.0", device_type="pump")

    wizard = owned(DeploymentWizard(context, ["pump"]))
    wizard.open()
    qtbot.waitExposed(wizard)
    walk_to_review(qtbot, wizard, "pump", 3)
    with qtbot.waitSignal(wizard.created, timeout=WAIT) as created:
        wizard.button(QWizard.WizardButton.FinishButton).click()
    deployment = created.args[0]

    iot = api.aws.client("iot")
    job = iot.describe_job(jobId=deployment.deployment_id)["job"]
    assert sorted(t.rsplit("/", 1)[-1] for t in job["targets"]) == ["pump-0", "pump-1",
                                                                    "pump-2"]
    document = json.loads(iot.get_job_document(jobId=deployment.deployment_id)["document"])
    assert document["manifest"]["keyId"] == api.erin.current_key_id()  # signed on this machine
    assert document["firmware"]["version"] == "6.0.0"
    (entry,) = [e for e in api.audit() if e.action == "deployment.create"]
    assert entry.actor == "erin" and entry.details["manifest_signed_by"] == \
        api.erin.current_key_id()
