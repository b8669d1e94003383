"""The deployment monitor on an aws backend: a rollout that is an IoT job on
moto's server (our record in DynamoDB) shows its executions as IoT Jobs lists
them; Pause is greyed out with the reason (the backend says it cannot pause),
and Cancel with force
cancels the IoT job."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from core.context import AppContext
from core.model import Deployment, Device, Firmware, SemVer
from core.model.roles import Actor, Role
from core.model.rollout import ExponentialRate, JobConfig, RolloutConfig
from core.protocol.ota import presigned_placeholder
from plugins.firmware.widgets.monitor import DeploymentMonitor
from tests.gui.firmware.conftest import WAIT, BackendPlugin
from tests.integration.aws.conftest import AwsSandbox, aws, moto_server

__all__ = ["aws", "moto_server"]  # the moto server fixtures, from the aws tests

pytestmark = pytest.mark.gui
IMAGE = b"pump firmware 4.0.0" * 64


@pytest.fixture
def aws_backend(aws: AwsSandbox) -> Any:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.dynamodb.tables import TABLES, create_tables
    from plugins.aws.firmware.s3 import S3FirmwareRepository, create_bucket
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    backend = build_aws_backend_for(settings)
    create_tables(backend.clients.dynamodb, settings, tuple(
        t for t in TABLES if t.role in {"devices", "organizations", "deployments", "audit"}))
    create_bucket(backend.clients.client("s3"), settings)
    backend.registry.upsert_many([Device(f"pump-{i}", device_type="pump")
                                  for i in range(3)])
    assert isinstance(backend.firmware, S3FirmwareRepository)
    backend.firmware.add(Firmware(SemVer.parse("4.0.0"), "pump", len(IMAGE),
                                  hashlib.sha256(IMAGE).hexdigest(), signature=b"s",
                                  key_id="k"), IMAGE)
    return backend


def test_the_monitor_follows_an_iot_job_and_says_pause_is_not_available(
        qtbot: Any, owned: Any, make_context: Any, aws_backend: Any) -> None:
    made = aws_backend.deployments.create(Deployment(
        firmware_id="pump@4.0.0", targets=("pump-0", "pump-1", "pump-2"), created_by="erin",
        config=JobConfig(rollout=RolloutConfig(exponential=ExponentialRate(2, 2.0, notified=2))),
        document={"operation": "ota", "url": presigned_placeholder("firmware/pump@4.0.0")},
        description="pumps to 4.0.0"))
    context: AppContext = make_context(("aws-backend", BackendPlugin(aws_backend)),
                                       actor=Actor("erin", Role.ENGINEER))
    monitor = owned(DeploymentMonitor(context))
    monitor.resize(1200, 800)
    monitor.show()
    with qtbot.waitSignal(monitor.updated, timeout=WAIT):
        monitor.show_deployment(made.deployment_id)
    assert monitor.badge.text() == "IN PROGRESS"
    assert monitor.chips["QUEUED"].text() == "Queued 3"
    assert monitor.chips["PENDING"].text() == "Pending 0"

    # The backend says it cannot pause: the button is greyed out with the reason, before
    # anyone clicks it (the engineer may control deployments; Cancel stays available).
    assert not monitor.pause_button.isEnabled()
    assert monitor.pause_button.toolTip() == ("AWS IoT Jobs cannot pause a rollout; "
                                              "cancel instead")
    assert monitor.cancel_button.isEnabled()
    # and a pause asked for anyway (a script, an old console) is still refused
    with qtbot.waitSignal(monitor.action_failed, timeout=WAIT) as refused:
        monitor.pause()
    assert "pausing is not available on AWS IoT Jobs; cancel instead" in refused.args[0]
    assert "pausing is not available" in monitor.message.text()

    with qtbot.waitSignal(monitor.action_finished, timeout=WAIT):
        monitor.cancel(force=True)
    qtbot.waitUntil(lambda: monitor.badge.text() == "CANCELED", timeout=WAIT)
    qtbot.waitUntil(lambda: monitor.chips["CANCELED"].text() == "Canceled 3", timeout=WAIT)
    job = aws_backend.clients.client("iot").describe_job(jobId=made.deployment_id)["job"]
    assert (job["status"], job["forceCanceled"]) == ("CANCELED", True)
