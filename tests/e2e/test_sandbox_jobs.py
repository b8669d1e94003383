"""Firmware rollouts run to the end on the aws-local sandbox.

`smartiot aws sandbox` runs as a subprocess (five simulated devices: four
environmental sensors and a pump). Deployments are made as an engineer
through the sandbox's REST API, with a manifest signed on the test's side;
the IoT job is moto's, the rollout, the device API and the abort are the
sandbox's Jobs stand-in (plugins/aws/sandbox/jobs_data.py), and the devices
are the project's simulator with its own OTA code: they take the job over the
Jobs MQTT topics, download the image from the sandbox's S3 with Range
requests, check its manifest, SHA-256 and signature, reboot into it and report
the new version in their status messages."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest

from plugins.aws.console_access.launch import LaunchedSandbox
from tests.e2e.aws_route_sweep import Sweep, q

ROLLOUT_WAIT_S = 240.0


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = ROLLOUT_WAIT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(1.0)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last!r})")


class Sandbox:
    def __init__(self, info: dict[str, Any], home: Path) -> None:
        from core.crypto.keystore import CodeSigningKeys
        from plugins.aws.cognito.signin import CognitoPool, CognitoSignIn

        self.info, self.home = info, home
        pool = CognitoPool(info["region"], info["user_pool_id"], info["user_pool_client_id"],
                           endpoint_url=info["endpoint_url"])
        tokens: dict[str, str] = {}
        for user in info["users"]:
            if user["role"] in ("admin", "engineer"):
                signed_in: Any = CognitoSignIn(pool).sign_in(user["username"], user["password"])
                tokens[user["role"]] = signed_in.id_token
        self.api = Sweep(info["api_url"], tokens)
        self.keys = CodeSigningKeys(home / "codesign")
        self.api.call("POST", "/firmware/keys", body={
            "public_pem": self.keys.public_pem().decode(), "owner": "erin"})

    def client(self, service: str) -> Any:
        return boto3.client(service, region_name=self.info["region"],
                            endpoint_url=self.info["endpoint_url"],
                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")

    def devices(self, prefix: str) -> list[str]:
        return sorted(d for d in self.info["devices"] if d.startswith(prefix))

    def firmware_of(self) -> dict[str, str]:
        rows = self.api.call("GET", "/devices", query={"limit": "100"}).data
        items = rows["items"] if isinstance(rows, dict) else rows
        return {d["device_id"]: d.get("firmware_version") or "" for d in items}

    def import_image(self, device_type: str, version: str, *, downgrade: bool = False) -> str:
        from core.crypto import codesign

        image = os.urandom(200_000)
        made = self.api.call("POST", "/firmware/upload", body={
            "device_type": device_type, "version": version, "allow_downgrade": downgrade,
            "image_base64": base64.b64encode(image).decode(),
            "signature_base64": base64.b64encode(
                codesign.sign(self.keys.signing_key(), image)).decode()}, role="engineer")
        return str(made.data["firmware_id"])

    def deploy(self, firmware_id: str, devices: list[str], config: dict[str, Any]) -> str:
        from tests.e2e.aws_route_sweep import _signed_manifest

        manifest = _signed_manifest(self.api, firmware_id, self.keys)
        made = self.api.call("POST", "/firmware/deployments", body={
            "firmware_id": firmware_id, "target": {"kind": "list", "device_ids": devices},
            "config": config, "manifest": manifest}, role="engineer")
        return str(made.data["deployment_id"])

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.api.call(
            "GET", "/firmware/deployments/{deployment_id}",
            f"/firmware/deployments/{q(deployment_id)}").data
        return data


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("aws-jobs")
    launched = LaunchedSandbox(home / "data", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "5", "--rate", "1"))
    info = launched.start()
    try:
        yield Sandbox(info, home)
    finally:
        launched.stop()


def _status(d: dict[str, Any]) -> str:
    return str(d.get("status"))


def _counts(d: dict[str, Any]) -> dict[str, int]:
    """Executions per status (``PENDING``: targets not released)."""
    return dict(d.get("executions") or {})


def test_a_deployment_runs_to_the_end_with_every_device_on_the_new_version(
        sandbox: Sandbox) -> None:
    office = sandbox.devices("office-")
    assert len(office) == 4
    wait_for("the sensors' first status", lambda: all(
        sandbox.firmware_of().get(d) == "1.4.2" for d in office), 90)
    firmware_id = sandbox.import_image("environmental", "1.5.0")
    # one device every 2 s; an abort criterion that a healthy rollout never trips
    deployment_id = sandbox.deploy(firmware_id, office, {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 30},
        "abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                                          "thresholdPercentage": 50,
                                          "minNumberOfExecutedThings": 2}]},
        "timeoutConfig": {"inProgressTimeoutInMinutes": 10}})

    done = wait_for("the deployment to complete",
                    lambda: (d := sandbox.deployment(deployment_id))
                    and _status(d) == "COMPLETED" and d)
    assert _counts(done).get("SUCCEEDED") == 4, done

    iot = sandbox.client("iot")
    job = iot.describe_job(jobId=deployment_id)["job"]
    assert job["status"] == "COMPLETED"
    assert job["jobProcessDetails"]["numberOfSucceededThings"] == 4
    executions = iot.list_job_executions_for_job(jobId=deployment_id)["executionSummaries"]
    assert {e["thingArn"].rsplit("/", 1)[-1] for e in executions} == set(office)
    assert {e["jobExecutionSummary"]["status"] for e in executions} == {"SUCCEEDED"}
    # released at the job's rate: 4 devices at 30 a minute span at least 6 s (epoch
    # seconds, so at least 4 after rounding); a loaded machine only spreads them more
    queued = sorted(e["jobExecutionSummary"]["queuedAt"] for e in executions)
    assert isinstance(queued[0], datetime)
    assert (queued[-1] - queued[0]).total_seconds() >= 4, queued
    # what the device reported at the end (DescribeJobExecution has the details)
    details = iot.describe_job_execution(jobId=deployment_id, thingName=office[0])[
        "execution"]["statusDetails"]["detailsMap"]
    assert details["step"] == "committed" and details["to_version"] == "1.5.0", details

    # every device rebooted into the image and says so in its status messages
    wait_for("every sensor to report 1.5.0", lambda: all(
        sandbox.firmware_of().get(d) == "1.5.0" for d in office), 120)


def test_an_image_the_devices_reject_trips_the_abort_configuration(sandbox: Sandbox) -> None:
    office = sandbox.devices("office-")
    wait_for("the sensors on 1.5.0 (the first test's rollout)", lambda: all(
        sandbox.firmware_of().get(d) == "1.5.0" for d in office), 120)
    # an older image without allowDowngrade in its signed manifest: every device's
    # manifest check refuses it (REJECTED, "downgrade") before downloading a byte
    firmware_id = sandbox.import_image("environmental", "1.2.0", downgrade=True)
    deployment_id = sandbox.deploy(firmware_id, office, {
        "jobExecutionsRolloutConfig": {"maximumPerMinute": 6},
        "abortConfig": {"criteriaList": [{"failureType": "REJECTED", "action": "CANCEL",
                                          "thresholdPercentage": 50,
                                          "minNumberOfExecutedThings": 1}]}})

    ended = wait_for("the abort", lambda: (d := sandbox.deployment(deployment_id))
                     and _status(d) == "CANCELED" and d)
    deployment = ended
    assert deployment["reason"].startswith("automatic abort: 1 of 1 executed devices "
                                           "(100%) ended REJECTED"), deployment
    counts = _counts(ended)
    # the first device's rejection stopped the rollout: the others were never released
    assert counts.get("REJECTED") == 1 and counts.get("CANCELED") == 3, counts

    job = sandbox.client("iot").describe_job(jobId=deployment_id)["job"]
    assert job["status"] == "CANCELED"
    assert job["comment"] == deployment["reason"]
    rejected = [e for e in sandbox.client("iot").list_job_executions_for_job(
        jobId=deployment_id)["executionSummaries"]]
    assert len(rejected) == 1
    thing = rejected[0]["thingArn"].rsplit("/", 1)[-1]
    details = sandbox.client("iot").describe_job_execution(
        jobId=deployment_id, thingName=thing)["execution"]["statusDetails"]["detailsMap"]
    assert details["reason"] == "downgrade", details
    # the API (and the console's monitor) says why, although the job's listing does not
    listed = sandbox.api.call("GET", "/firmware/deployments/{deployment_id}/executions",
                              f"/firmware/deployments/{q(deployment_id)}/executions").data
    items = listed["items"] if isinstance(listed, dict) else listed
    said = {e["device_id"]: e["status_details"] for e in items if e["status"] == "REJECTED"}
    assert said[thing]["reason"] == "downgrade", said
    assert "older than the running 1.5.0" in said[thing]["message"], said
    # nobody installed it
    time.sleep(3)
    assert all(sandbox.firmware_of().get(d) == "1.5.0" for d in office)


def test_a_device_on_the_official_aws_iot_device_sdk_takes_a_job(sandbox: Sandbox) -> None:
    """An independent device: awsiotsdk's IotJobsClient parses every answer of the
    stand-in with the SDK's own models, as against IoT Core."""
    import hashlib
    import threading
    import urllib.parse
    import urllib.request

    from awscrt import io, mqtt  # type: ignore[import-untyped]
    from awsiot import iotjobs  # type: ignore[import-untyped]

    thing, wait_s, qos = "sdk-sensor-1", 60.0, mqtt.QoS.AT_LEAST_ONCE
    sandbox.api.call("POST", "/devices", body={
        "device_id": thing, "device_type": "environmental", "name": "SDK sensor"},
        role="engineer")
    firmware_id = sandbox.import_image("environmental", "1.6.0")
    sha256 = sandbox.api.call("GET", "/firmware/{firmware_id}",
                              f"/firmware/{q(firmware_id)}").data["sha256"]

    class Inbox:
        def __init__(self) -> None:
            self.items: list[Any] = []
            self._cond = threading.Condition()

        def __call__(self, item: Any) -> None:
            with self._cond:
                self.items.append(item)
                self._cond.notify_all()

        def wait(self, count: int = 1) -> Any:
            with self._cond:
                assert self._cond.wait_for(lambda: len(self.items) >= count, wait_s)
                return self.items[count - 1]

    url = urllib.parse.urlsplit(sandbox.info["mqtt_url"])
    group = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(group, io.DefaultHostResolver(group))
    connection = mqtt.Connection(mqtt.Client(bootstrap, None), url.hostname, url.port, thing,
                                 clean_session=True, keep_alive_secs=30)
    connection.connect().result(wait_s)
    jobs = iotjobs.IotJobsClient(connection)
    one, every = {"thing_name": thing}, {"thing_name": thing, "job_id": "+"}
    inbox = {name: Inbox() for name in ("next", "started", "updated", "rejected")}
    try:
        for subscribe, request, name in (
                (jobs.subscribe_to_next_job_execution_changed_events,
                 iotjobs.NextJobExecutionChangedSubscriptionRequest(**one), "next"),
                (jobs.subscribe_to_start_next_pending_job_execution_accepted,
                 iotjobs.StartNextPendingJobExecutionSubscriptionRequest(**one), "started"),
                (jobs.subscribe_to_update_job_execution_accepted,
                 iotjobs.UpdateJobExecutionSubscriptionRequest(**every), "updated"),
                (jobs.subscribe_to_update_job_execution_rejected,
                 iotjobs.UpdateJobExecutionSubscriptionRequest(**every), "rejected")):
            subscribe(request, qos, inbox[name])[0].result(wait_s)

        deployment_id = sandbox.deploy(firmware_id, [thing], {})
        event = inbox["next"].wait()
        assert event.execution.job_id == deployment_id
        assert event.execution.status == iotjobs.JobStatus.QUEUED

        jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=thing, client_token="start-1",
                status_details={"step": "downloading"}), qos).result(wait_s)
        started = inbox["started"].wait().execution
        assert started.job_id == deployment_id
        assert started.status == iotjobs.JobStatus.IN_PROGRESS
        assert (started.version_number, started.execution_number) == (2, 1)
        # IoT Jobs' presigned URL, here a presigned GET of the sandbox's S3
        with urllib.request.urlopen(started.job_document["url"], timeout=wait_s) as reply:
            assert hashlib.sha256(reply.read()).hexdigest() == sha256

        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=deployment_id, client_token="stale",
            status=iotjobs.JobStatus.SUCCEEDED, expected_version=1), qos).result(wait_s)
        refused = inbox["rejected"].wait()
        assert refused.code == iotjobs.RejectedErrorCode.VERSION_MISMATCH
        assert refused.client_token == "stale" and refused.execution_state.version_number == 2

        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=deployment_id, client_token="done",
            status=iotjobs.JobStatus.SUCCEEDED, expected_version=2,
            status_details={"step": "committed"}, include_job_execution_state=True),
            qos).result(wait_s)
        done = inbox["updated"].wait()
        assert done.client_token == "done"
        assert done.execution_state.status == iotjobs.JobStatus.SUCCEEDED
        assert done.execution_state.version_number == 3
        assert inbox["next"].wait(2).execution is None  # nothing left for this thing
    finally:
        connection.disconnect().result(wait_s)

    finished = wait_for("the SDK device's deployment to complete",
                        lambda: (d := sandbox.deployment(deployment_id))
                        and _status(d) == "COMPLETED" and d, 60)
    assert _counts(finished).get("SUCCEEDED") == 1


def test_an_execution_in_progress_too_long_times_out(sandbox: Sandbox) -> None:
    """``timeoutConfig``: a device that starts the job and then goes quiet is
    TIMED_OUT after ``inProgressTimeoutInMinutes`` and hears there is nothing
    next for it (IoT Jobs' shortest timeout is one minute)."""
    import json
    import queue
    import urllib.parse

    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    thing = "quiet-sensor-1"
    sandbox.api.call("POST", "/devices", body={
        "device_id": thing, "device_type": "environmental", "name": "goes quiet"},
        role="engineer")
    firmware_id = sandbox.import_image("environmental", "1.7.0")
    heard: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
    url = urllib.parse.urlsplit(sandbox.info["mqtt_url"])
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=thing)
    client.on_message = lambda _c, _u, m: heard.put((m.topic, json.loads(bytes(m.payload))))
    client.connect(url.hostname or "", url.port or 0)
    client.loop_start()
    try:
        client.subscribe([(f"$aws/things/{thing}/jobs/notify-next", 1),
                          (f"$aws/things/{thing}/jobs/start-next/accepted", 1)])
        deployment_id = sandbox.deploy(firmware_id, [thing], {
            "timeoutConfig": {"inProgressTimeoutInMinutes": 1}})

        def next_on(suffix: str, timeout_s: float) -> dict[str, Any]:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                try:
                    topic, body = heard.get(timeout=1)
                except queue.Empty:
                    continue
                if topic.endswith(suffix):
                    return body
            raise AssertionError(f"nothing on {suffix} within {timeout_s:.0f} s")

        assert next_on("/notify-next", 60)["execution"]["jobId"] == deployment_id
        client.publish(f"$aws/things/{thing}/jobs/start-next",
                       json.dumps({"clientToken": "quiet-1"}), qos=1)
        started = next_on("/start-next/accepted", 60)
        assert started["execution"]["status"] == "IN_PROGRESS"
        # ... and the device says nothing more
        assert "execution" not in next_on("/notify-next", 180)
    finally:
        client.disconnect()
        client.loop_stop()
    execution = sandbox.client("iot").describe_job_execution(
        jobId=deployment_id, thingName=thing)["execution"]
    assert execution["status"] == "TIMED_OUT"
    assert (execution["lastUpdatedAt"] - execution["startedAt"]).total_seconds() >= 59
    ended = wait_for("the timed-out deployment to end",
                     lambda: (d := sandbox.deployment(deployment_id))
                     and _status(d) == "COMPLETED" and d, 60)
    assert _counts(ended).get("TIMED_OUT") == 1
