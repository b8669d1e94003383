"""Every Jobs device API topic against the real hub over a real mosquitto:
accepted and rejected answers, notify/notify-next, $next, versions, status details."""

from __future__ import annotations

import hashlib
import time
import urllib.request

from core.errors import NotFound
from core.model import DeploymentStatus, ExecutionStatus
from tests.integration.hub.conftest import wait_until
from tests.integration.jobs.conftest import TIMEOUT, add_firmware


def _released(rig, deployment, thing):
    return wait_until(lambda: _execution_or_none(rig, deployment.deployment_id, thing),
                      TIMEOUT, f"{thing} was not released")


def _execution_or_none(rig, job_id, thing):
    try:
        return rig.store.deployments.execution(job_id, thing)
    except NotFound:
        return None


def test_get_pending_with_nothing_pending_echoes_token_and_epoch_seconds(jobs_rig):
    device = jobs_rig.device("pump-api-0")
    before = int(time.time())
    suffix, body = device.request(("get",), token="tok-1")
    assert suffix == "accepted"
    assert body["clientToken"] == "tok-1"
    assert body["inProgressJobs"] == [] and body["queuedJobs"] == []
    assert before - 1 <= body["timestamp"] <= int(time.time()) + 1  # seconds, not ms


def test_release_notifies_and_delivers_a_working_presigned_url(jobs_rig):
    firmware, _ = add_firmware(jobs_rig.store)
    device = jobs_rig.device("pump-api-1")
    deployment = jobs_rig.deploy(firmware, [device.thing])

    nxt = device.wait_for("notify-next")[0]
    execution = nxt["execution"]
    assert execution["jobId"] == deployment.deployment_id
    assert execution["thingName"] == device.thing
    assert execution["status"] == "QUEUED"
    assert execution["versionNumber"] == 1 and execution["executionNumber"] == 1
    assert isinstance(execution["queuedAt"], int) and "startedAt" not in execution
    document = execution["jobDocument"]
    assert document["firmware"]["sha256"] == firmware.sha256
    url = document["url"]
    assert url.startswith(jobs_rig.hub.files.base_url + "/firmware/")
    assert "expires=" in url and "sig=" in url
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        assert hashlib.sha256(response.read()).hexdigest() == firmware.sha256
    # the stored document keeps the placeholder; only deliveries carry URLs
    assert jobs_rig.store.deployments.get(deployment.deployment_id).document["url"].startswith(
        "${aws:iot:s3-presigned-url:")

    notify = device.wait_for("notify")[0]
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == [deployment.deployment_id]
    assert set(notify["jobs"]["QUEUED"][0]) == {"jobId", "queuedAt", "lastUpdatedAt",
                                                "versionNumber", "executionNumber"}

    suffix, pending = device.request(("get",))
    assert suffix == "accepted"
    assert [s["jobId"] for s in pending["queuedJobs"]] == [deployment.deployment_id]
    assert pending["inProgressJobs"] == []


def test_full_run_start_next_progress_versions_and_success(jobs_rig):
    firmware, _ = add_firmware(jobs_rig.store)
    device = jobs_rig.device("pump-api-2")
    deployment = jobs_rig.deploy(firmware, [device.thing])
    job = deployment.deployment_id
    device.wait_for("notify-next")

    suffix, started = device.request(("start-next",), {
        "statusDetails": {"step": "downloading", "progress": "0"},
        "stepTimeoutInMinutes": 30})
    assert suffix == "accepted"
    execution = started["execution"]
    assert execution["jobId"] == job and execution["status"] == "IN_PROGRESS"
    assert execution["statusDetails"] == {"step": "downloading", "progress": "0"}
    assert execution["versionNumber"] == 2 and isinstance(execution["startedAt"], int)
    assert execution["jobDocument"]["url"].startswith("http://")

    # a second start-next returns the same in-progress job, details untouched
    suffix, again = device.request(("start-next",), {"statusDetails": {"step": "x"}})
    assert suffix == "accepted" and again["execution"]["jobId"] == job
    assert again["execution"]["statusDetails"]["step"] == "downloading"
    assert again["execution"]["versionNumber"] == 2

    # stale expectedVersion: VersionMismatch carrying the current state
    suffix, error = device.request((job, "update"), {"status": "IN_PROGRESS",
                                                     "expectedVersion": 1})
    assert suffix == "rejected" and error["code"] == "VersionMismatch"
    assert error["executionState"] == {"status": "IN_PROGRESS", "versionNumber": 2,
                                       "statusDetails": {"step": "downloading",
                                                         "progress": "0"}}
    assert "clientToken" in error and isinstance(error["timestamp"], int)

    suffix, updated = device.request((job, "update"), {
        "status": "IN_PROGRESS", "expectedVersion": 2,
        "statusDetails": {"progress": "50", "bytes": "150000"},
        "includeJobExecutionState": True})
    assert suffix == "accepted"
    assert updated["executionState"] == {
        "status": "IN_PROGRESS", "versionNumber": 3,
        # Given statusDetails replace the previous ones (UpdateJobExecution).
        "statusDetails": {"progress": "50", "bytes": "150000"}}
    assert "jobDocument" not in updated
    # persisted before /accepted was sent
    stored = jobs_rig.store.deployments.execution(job, device.thing)
    assert stored.version_number == 3 and stored.status_details["progress"] == "50"

    suffix, described = device.request((job, "get"), {"includeJobDocument": False})
    assert suffix == "accepted" and "jobDocument" not in described["execution"]
    assert described["execution"]["statusDetails"]["bytes"] == "150000"
    suffix, described = device.request(("$next", "get"))
    assert suffix == "accepted" and described["execution"]["jobId"] == job
    assert described["execution"]["jobDocument"]["firmware"]["version"] == "2.0.0"

    suffix, done = device.request((job, "update"), {
        "status": "SUCCEEDED", "expectedVersion": 3,
        "statusDetails": {"step": "committed"}, "includeJobDocument": True})
    assert suffix == "accepted" and done["jobDocument"]["operation"] == "ota-update"
    stored = jobs_rig.store.deployments.execution(job, device.thing)
    assert stored.status is ExecutionStatus.SUCCEEDED and stored.version_number == 4
    wait_until(lambda: jobs_rig.store.deployments.get(job).status
               is DeploymentStatus.COMPLETED, TIMEOUT, "deployment did not complete")

    # leaving the pending list: notify with nothing, notify-next with no execution
    wait_until(lambda: any(n["jobs"] == {} for n in device.on("notify")), TIMEOUT,
               "no empty notify")
    wait_until(lambda: any("execution" not in n for n in device.on("notify-next")), TIMEOUT,
               "no empty notify-next")

    # ended: describe says TerminalStateReached, a further update InvalidStateTransition
    suffix, error = device.request((job, "get"))
    assert suffix == "rejected" and error["code"] == "TerminalStateReached"
    suffix, error = device.request((job, "update"), {"status": "IN_PROGRESS"})
    assert suffix == "rejected" and error["code"] == "InvalidStateTransition"
    assert error["executionState"]["status"] == "SUCCEEDED"
    suffix, nothing = device.request(("$next", "get"))
    assert suffix == "accepted" and "execution" not in nothing
    suffix, nothing = device.request(("start-next",))
    assert suffix == "accepted" and "execution" not in nothing


def test_next_prefers_in_progress_and_notify_next_follows_it(jobs_rig):
    first_fw, _ = add_firmware(jobs_rig.store, version="2.0.0", size=1000)
    second_fw, _ = add_firmware(jobs_rig.store, version="2.1.0", size=1000)
    device = jobs_rig.device("pump-api-3")
    j1 = jobs_rig.deploy(first_fw, [device.thing]).deployment_id
    _released(jobs_rig, type("D", (), {"deployment_id": j1}), device.thing)
    time.sleep(1.1)  # queuedAt is in seconds: make the order unambiguous
    j2 = jobs_rig.deploy(second_fw, [device.thing]).deployment_id
    device.wait_for("notify", count=2)
    assert [n["execution"]["jobId"] for n in device.on("notify-next")] == [j1]  # J1 stays next
    notify = device.on("notify")[-1]
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == [j1, j2]

    suffix, described = device.request(("$next", "get"))
    assert described["execution"]["jobId"] == j1

    # J2 goes IN_PROGRESS while J1 is still queued: J2 becomes next (AWS's own example)
    suffix, _ = device.request((j2, "update"), {"status": "IN_PROGRESS"})
    assert suffix == "accepted"
    nexts = device.wait_for("notify-next", count=2)
    assert nexts[-1]["execution"]["jobId"] == j2
    assert nexts[-1]["execution"]["status"] == "IN_PROGRESS"
    suffix, pending = device.request(("get",))
    assert [s["jobId"] for s in pending["inProgressJobs"]] == [j2]
    assert [s["jobId"] for s in pending["queuedJobs"]] == [j1]

    # J2 fails: J1 is next again
    suffix, _ = device.request((j2, "update"), {"status": "FAILED",
                                                "statusDetails": {"reason": "truncated"}})
    assert suffix == "accepted"
    nexts = device.wait_for("notify-next", count=3)
    assert nexts[-1]["execution"]["jobId"] == j1


def test_rejections_name_what_is_wrong_and_are_counted(jobs_rig):
    firmware, _ = add_firmware(jobs_rig.store, size=1000)
    device = jobs_rig.device("pump-api-4")
    job = jobs_rig.deploy(firmware, [device.thing]).deployment_id
    device.wait_for("notify-next")

    suffix, error = device.request(("ota-doesnotexist", "get"))
    assert suffix == "rejected" and error["code"] == "ResourceNotFound"
    suffix, error = device.request(("ota-doesnotexist", "update"), {"status": "IN_PROGRESS"})
    assert suffix == "rejected" and error["code"] == "ResourceNotFound"

    device.publish_raw((job, "update"), b"{not json")
    error = device.wait_for(job, "update", "rejected")[0]
    assert error["code"] == "InvalidJson" and "not valid JSON" in error["message"]

    suffix, error = device.request((job, "update"), {"status": "DONE"})
    assert suffix == "rejected" and error["code"] == "InvalidRequest"
    assert "DONE" in error["message"] and "SUCCEEDED" in error["message"]
    suffix, error = device.request((job, "update"), {"status": "CANCELED"})
    assert suffix == "rejected" and error["code"] == "InvalidRequest"
    suffix, error = device.request((job, "update"), {"status": "IN_PROGRESS",
                                                     "statusDetails": {"progress": 5}})
    assert suffix == "rejected" and "statusDetails.progress" in error["message"]
    suffix, error = device.request((job, "update"), {})
    assert suffix == "rejected" and "status is required" in error["message"]
    suffix, error = device.request((job, "get"), {"executionNumber": 7})
    assert suffix == "rejected" and error["code"] == "ResourceNotFound"

    device.publish_raw(("start-next", "bogus"), b"{}")
    error = device.wait_for("start-next", "bogus", "rejected")[0]
    assert error["code"] == "InvalidTopic"
    device.publish_raw(("$next", "update"), b'{"status":"IN_PROGRESS"}')
    assert device.wait_for("$next", "update", "rejected")[0]["code"] == "InvalidTopic"

    counts = wait_until(lambda: jobs_rig.hub.snapshot()["jobs"]["rejected_by_code"], TIMEOUT)
    assert counts == {"ResourceNotFound": 3, "InvalidJson": 1, "InvalidRequest": 4,
                      "InvalidTopic": 2}
    # nothing reached the execution
    stored = jobs_rig.store.deployments.execution(job, device.thing)
    assert stored.status is ExecutionStatus.QUEUED and stored.version_number == 1


def test_cancel_withdraws_queued_and_announces_the_next_job(jobs_rig):
    first_fw, _ = add_firmware(jobs_rig.store, version="2.0.0", size=1000)
    second_fw, _ = add_firmware(jobs_rig.store, version="2.1.0", size=1000)
    device = jobs_rig.device("pump-api-5")
    j1 = jobs_rig.deploy(first_fw, [device.thing]).deployment_id
    device.wait_for("notify-next")
    time.sleep(1.1)
    j2 = jobs_rig.deploy(second_fw, [device.thing]).deployment_id
    device.wait_for("notify", count=2)

    jobs_rig.store.deployments.cancel(j1, reason="wrong image")  # as a console does
    nexts = device.wait_for("notify-next", count=2)
    assert nexts[-1]["execution"]["jobId"] == j2
    notify = device.wait_for("notify", count=3)[-1]
    assert [s["jobId"] for s in notify["jobs"]["QUEUED"]] == [j2]
    suffix, error = device.request((j1, "update"), {"status": "IN_PROGRESS"})
    assert suffix == "rejected" and error["code"] == "InvalidStateTransition"
    assert error["executionState"]["status"] == "CANCELED"

    jobs_rig.store.deployments.cancel(j2)
    nexts = device.wait_for("notify-next", count=3)
    assert "execution" not in nexts[-1]
    suffix, pending = device.request(("get",))
    assert pending["queuedJobs"] == [] and pending["inProgressJobs"] == []


def test_force_cancel_of_an_in_progress_execution(jobs_rig):
    firmware, _ = add_firmware(jobs_rig.store, size=1000)
    device = jobs_rig.device("pump-api-6")
    job = jobs_rig.deploy(firmware, [device.thing]).deployment_id
    device.wait_for("notify-next")
    assert device.request(("start-next",))[0] == "accepted"
    jobs_rig.store.deployments.cancel(job, force=True, reason="bad batch")
    nexts = device.wait_for("notify-next", count=2)
    assert "execution" not in nexts[-1]
    suffix, error = device.request((job, "update"), {"status": "SUCCEEDED"})
    assert suffix == "rejected" and error["code"] == "InvalidStateTransition"
    assert error["executionState"]["status"] == "CANCELED"


def test_paused_deployment_releases_no_one_new_but_notified_devices_continue(jobs_rig):
    from core.model.rollout import JobConfig, RolloutConfig

    firmware, _ = add_firmware(jobs_rig.store, size=1000)
    first = jobs_rig.device("pump-api-7")
    second = jobs_rig.device("pump-api-8")
    deployment = jobs_rig.deploy(firmware, [first.thing, second.thing],
                                 config=JobConfig(RolloutConfig(maximum_per_minute=1)))
    job = deployment.deployment_id
    first.wait_for("notify-next")  # one token at the start: the first device only
    jobs_rig.store.deployments.set_status(job, DeploymentStatus.PAUSED, reason="watching")
    suffix, _ = first.request((job, "update"), {"status": "IN_PROGRESS"})
    assert suffix == "accepted"
    suffix, _ = first.request((job, "update"), {"status": "SUCCEEDED"})
    assert suffix == "accepted"
    time.sleep(2.0)  # several rollout ticks while paused
    assert second.on("notify-next") == []
    assert jobs_rig.store.deployments.counts(job)["PENDING"] == 1
