"""A device written with the official AWS IoT Device SDK for Python (awsiotsdk)
runs an OTA job against the local hub, unchanged: the classic IotJobsClient
(publish/subscribe, the SDK's own jobs sample flow) and the request-response
IotJobsClientV2 (which correlates answers by clientToken)."""

from __future__ import annotations

import hashlib
import threading
import urllib.request

from awscrt import io, mqtt, mqtt_request_response
from awsiot import ServiceStreamOptions, V2ServiceException, iotjobs

from core.model import DeploymentStatus, ExecutionStatus
from tests.integration.hub.conftest import wait_until
from tests.integration.jobs.conftest import TIMEOUT, add_firmware

QOS = mqtt.QoS.AT_LEAST_ONCE


def _sdk_connection(broker, client_id):
    group = io.EventLoopGroup(1)
    bootstrap = io.ClientBootstrap(group, io.DefaultHostResolver(group))
    client = mqtt.Client(bootstrap, None)  # plain TCP on loopback; IoT Core would add mTLS
    connection = mqtt.Connection(client, broker.host, broker.port, client_id,
                                 clean_session=True, keep_alive_secs=30)
    connection.connect().result(TIMEOUT)
    return connection


class Inbox:
    """Collects one kind of SDK callback and lets the test wait for the n-th."""

    def __init__(self) -> None:
        self.items: list = []
        self._cond = threading.Condition()

    def __call__(self, item) -> None:
        with self._cond:
            self.items.append(item)
            self._cond.notify_all()

    def wait(self, count: int = 1, what: str = "message"):
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.items) >= count, TIMEOUT):
                raise AssertionError(f"fewer than {count} {what}(s) arrived")
            return self.items[count - 1]


def test_sdk_jobs_client_runs_an_ota_job(jobs_rig, mosquitto_broker):
    thing = "sdk-pump-1"
    firmware, image = add_firmware(jobs_rig.store, size=200_000)
    connection = _sdk_connection(mosquitto_broker, thing)
    jobs = iotjobs.IotJobsClient(connection)
    one_thing = {"thing_name": thing}
    every_job = {"thing_name": thing, "job_id": "+"}  # as the SDK's jobs sample subscribes
    subscriptions = {
        "next": (jobs.subscribe_to_next_job_execution_changed_events,
                 iotjobs.NextJobExecutionChangedSubscriptionRequest(**one_thing)),
        "changed": (jobs.subscribe_to_job_executions_changed_events,
                    iotjobs.JobExecutionsChangedSubscriptionRequest(**one_thing)),
        "started": (jobs.subscribe_to_start_next_pending_job_execution_accepted,
                    iotjobs.StartNextPendingJobExecutionSubscriptionRequest(**one_thing)),
        "start_rejected": (jobs.subscribe_to_start_next_pending_job_execution_rejected,
                           iotjobs.StartNextPendingJobExecutionSubscriptionRequest(**one_thing)),
        "updated": (jobs.subscribe_to_update_job_execution_accepted,
                    iotjobs.UpdateJobExecutionSubscriptionRequest(**every_job)),
        "update_rejected": (jobs.subscribe_to_update_job_execution_rejected,
                            iotjobs.UpdateJobExecutionSubscriptionRequest(**every_job)),
        "described": (jobs.subscribe_to_describe_job_execution_accepted,
                      iotjobs.DescribeJobExecutionSubscriptionRequest(**every_job)),
        "describe_rejected": (jobs.subscribe_to_describe_job_execution_rejected,
                              iotjobs.DescribeJobExecutionSubscriptionRequest(**every_job)),
        "pending": (jobs.subscribe_to_get_pending_job_executions_accepted,
                    iotjobs.GetPendingJobExecutionsSubscriptionRequest(**one_thing)),
        "pending_rejected": (jobs.subscribe_to_get_pending_job_executions_rejected,
                             iotjobs.GetPendingJobExecutionsSubscriptionRequest(**one_thing)),
    }
    inboxes = {name: Inbox() for name in subscriptions}

    try:
        for name, (subscribe, request) in subscriptions.items():
            future, _topic = subscribe(request, QOS, inboxes[name])
            future.result(TIMEOUT)

        job_id = jobs_rig.deploy(firmware, [thing]).deployment_id

        # notify-next: a typed NextJobExecutionChangedEvent with the document
        event = inboxes["next"].wait(what="notify-next")
        assert event.execution.job_id == job_id
        assert event.execution.status == iotjobs.JobStatus.QUEUED
        assert event.execution.thing_name == thing
        assert event.execution.job_document["firmware"]["version"] == "2.0.0"
        changed = inboxes["changed"].wait(what="notify")
        assert [s.job_id for s in changed.jobs["QUEUED"]] == [job_id]

        jobs.publish_get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(
            thing_name=thing, client_token="pending-1"), QOS).result(TIMEOUT)
        pending = inboxes["pending"].wait(what="get/accepted")
        assert pending.client_token == "pending-1"
        assert [s.job_id for s in pending.queued_jobs] == [job_id]
        assert pending.in_progress_jobs == []

        jobs.publish_start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(
                thing_name=thing, client_token="start-1", step_timeout_in_minutes=15,
                status_details={"step": "downloading"}), QOS).result(TIMEOUT)
        started = inboxes["started"].wait(what="start-next/accepted")
        assert started.client_token == "start-1"
        execution = started.execution
        assert execution.job_id == job_id and execution.status == iotjobs.JobStatus.IN_PROGRESS
        assert execution.version_number == 2 and execution.execution_number == 1
        assert execution.started_at is not None  # epoch seconds parsed by the SDK

        # the device downloads from the presigned URL in its job document
        with urllib.request.urlopen(execution.job_document["url"], timeout=TIMEOUT) as resp:
            assert hashlib.sha256(resp.read()).hexdigest() == firmware.sha256 == \
                hashlib.sha256(image).hexdigest()

        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=job_id, client_token="upd-1",
            status=iotjobs.JobStatus.IN_PROGRESS, expected_version=2,
            status_details={"step": "installing", "progress": "100"},
            include_job_execution_state=True), QOS).result(TIMEOUT)
        updated = inboxes["updated"].wait(what="update/accepted")
        assert updated.client_token == "upd-1"
        assert updated.execution_state.version_number == 3
        assert updated.execution_state.status_details == {"step": "installing",
                                                          "progress": "100"}

        jobs.publish_describe_job_execution(iotjobs.DescribeJobExecutionRequest(
            thing_name=thing, job_id=job_id, client_token="desc-1", include_job_document=True),
            QOS).result(TIMEOUT)
        described = inboxes["described"].wait(what="get/accepted")
        assert described.client_token == "desc-1"
        assert described.execution.job_document["firmware"]["sha256"] == firmware.sha256
        assert described.execution.status_details["step"] == "installing"

        # a stale version is refused the way IoT Jobs refuses it
        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=job_id, client_token="upd-stale",
            status=iotjobs.JobStatus.SUCCEEDED, expected_version=2), QOS).result(TIMEOUT)
        error = inboxes["update_rejected"].wait(what="update/rejected")
        assert error.code == iotjobs.RejectedErrorCode.VERSION_MISMATCH
        assert error.client_token == "upd-stale"
        assert error.execution_state.version_number == 3

        jobs.publish_update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=job_id, client_token="upd-2",
            status=iotjobs.JobStatus.SUCCEEDED, expected_version=3,
            status_details={"step": "committed"}), QOS).result(TIMEOUT)
        done = inboxes["updated"].wait(2, "update/accepted")
        assert done.client_token == "upd-2"

        # nothing left: notify-next without an execution
        empty = inboxes["next"].wait(2, "notify-next")
        assert empty.execution is None

        jobs.publish_get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(
            thing_name=thing, client_token="pending-2"), QOS).result(TIMEOUT)
        pending = inboxes["pending"].wait(2, "get/accepted")
        assert pending.queued_jobs == [] and pending.in_progress_jobs == []
        assert not inboxes["start_rejected"].items and not inboxes["describe_rejected"].items
        assert not inboxes["pending_rejected"].items
    finally:
        connection.disconnect().result(TIMEOUT)

    execution = jobs_rig.store.deployments.execution(job_id, thing)
    assert execution.status is ExecutionStatus.SUCCEEDED
    assert execution.status_details == {"step": "committed"}, "given details replace the old"
    wait_until(lambda: jobs_rig.store.deployments.get(job_id).status
               is DeploymentStatus.COMPLETED, TIMEOUT, "deployment did not complete")


def test_sdk_v2_request_response_client_correlates_by_client_token(jobs_rig, mosquitto_broker):
    thing = "sdk-pump-2"
    firmware, _ = add_firmware(jobs_rig.store, size=1000)
    connection = _sdk_connection(mosquitto_broker, thing)
    jobs = iotjobs.IotJobsClientV2(connection, mqtt_request_response.ClientOptions(
        max_request_response_subscriptions=4, max_streaming_subscriptions=2,
        operation_timeout_in_seconds=int(TIMEOUT)))
    nexts = Inbox()
    subscribed = threading.Event()
    stream = jobs.create_next_job_execution_changed_stream(
        iotjobs.NextJobExecutionChangedSubscriptionRequest(thing_name=thing),
        ServiceStreamOptions(
            incoming_event_listener=nexts,
            subscription_status_listener=lambda event: subscribed.set()))
    try:
        stream.open()
        assert subscribed.wait(TIMEOUT)
        job_id = jobs_rig.deploy(firmware, [thing]).deployment_id
        assert nexts.wait(what="notify-next").execution.job_id == job_id

        started = jobs.start_next_pending_job_execution(
            iotjobs.StartNextPendingJobExecutionRequest(thing_name=thing)).result(TIMEOUT)
        assert started.execution.job_id == job_id
        assert started.execution.status == iotjobs.JobStatus.IN_PROGRESS

        described = jobs.describe_job_execution(iotjobs.DescribeJobExecutionRequest(
            thing_name=thing, job_id=job_id, include_job_document=True)).result(TIMEOUT)
        assert described.execution.job_document["url"].startswith("http://127.0.0.1:")

        try:
            jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
                thing_name=thing, job_id=job_id, status=iotjobs.JobStatus.SUCCEEDED,
                expected_version=1)).result(TIMEOUT)
            raise AssertionError("a stale expectedVersion was accepted")
        except V2ServiceException as exc:
            assert exc.modeled_error.code == "VersionMismatch"

        updated = jobs.update_job_execution(iotjobs.UpdateJobExecutionRequest(
            thing_name=thing, job_id=job_id, status=iotjobs.JobStatus.SUCCEEDED,
            expected_version=2, include_job_execution_state=True)).result(TIMEOUT)
        assert updated.execution_state.status == iotjobs.JobStatus.SUCCEEDED

        pending = jobs.get_pending_job_executions(iotjobs.GetPendingJobExecutionsRequest(
            thing_name=thing)).result(TIMEOUT)
        assert pending.queued_jobs == [] and pending.in_progress_jobs == []
    finally:
        del stream  # the SDK closes a stream when it is released
        connection.disconnect().result(TIMEOUT)
