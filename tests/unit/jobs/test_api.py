"""The Jobs API maths: routing, request validation, update judgement, payload shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.model import Execution, ExecutionStatus
from plugins.local.jobs import api
from plugins.local.jobs.api import Api, ErrorCode, JobsError

T0 = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)


def _execution(job="ota-1", status=ExecutionStatus.QUEUED, version=1, **kw) -> Execution:
    return Execution(job, "pump-1", status=status, version_number=version, queued_at=T0,
                     updated_at=T0, **kw)


@pytest.mark.parametrize(("tail", "expected"), [
    (("get",), api.Route(Api.GET_PENDING)),
    (("start-next",), api.Route(Api.START_NEXT)),
    (("ota-1", "get"), api.Route(Api.DESCRIBE, "ota-1")),
    (("$next", "get"), api.Route(Api.DESCRIBE, "$next")),
    (("ota-1", "update"), api.Route(Api.UPDATE, "ota-1")),
    # our own replies and notifications: not requests
    (("get", "accepted"), None),
    (("ota-1", "update", "rejected"), None),
    (("notify",), None),
    (("notify-next",), None),
])
def test_route(tail, expected):
    assert api.route(tail) == expected


@pytest.mark.parametrize("tail", [("start-next", "x"), ("$next", "update"), ("a b", "get"),
                                  ("x" * 65, "get"), ("ota-1", "delete"), ("list",)])
def test_topics_that_map_to_no_api_are_invalid_topic(tail):
    with pytest.raises(JobsError) as caught:
        api.route(tail)
    assert caught.value.code is ErrorCode.INVALID_TOPIC


def test_parse_update_defaults_and_fields():
    request = api.parse_update({"status": "IN_PROGRESS", "expectedVersion": "3",
                                "statusDetails": {"step": "downloading"},
                                "executionNumber": 2, "includeJobExecutionState": True,
                                "stepTimeoutInMinutes": 10, "clientToken": "t"})
    assert request == api.UpdateRequest(ExecutionStatus.IN_PROGRESS, "t",
                                        {"step": "downloading"}, 3, 2, True, False, 10)
    assert api.parse_describe({}).include_job_document is True  # "unless set to false"
    assert api.parse_update({"status": "FAILED"}).include_job_document is False


@pytest.mark.parametrize(("request_body", "fragment"), [
    ({}, "status is required"),
    ({"status": "QUEUED"}, "cannot be set by a device"),
    ({"status": "TIMED_OUT"}, "cannot be set by a device"),
    ({"status": 3}, "cannot be set by a device"),
    ({"status": "FAILED", "expectedVersion": -1}, "expectedVersion"),
    ({"status": "FAILED", "expectedVersion": True}, "expectedVersion"),
    ({"status": "FAILED", "statusDetails": []}, "statusDetails must be an object"),
    ({"status": "FAILED", "statusDetails": {"bad key": "x"}}, "'bad key'"),
    ({"status": "FAILED", "statusDetails": {"k": ""}}, "statusDetails.k"),
    ({"status": "FAILED", "statusDetails": {"k": "a\x00b"}}, "control"),
    ({"status": "FAILED", "statusDetails": {"k": "x" * 1025}}, "1-1024"),
    ({"status": "FAILED", "statusDetails": {f"k{i}": "v" for i in range(11)}}, "at most 10"),
    ({"status": "FAILED", "stepTimeoutInMinutes": 0}, "stepTimeoutInMinutes"),
    ({"status": "FAILED", "stepTimeoutInMinutes": 10081}, "stepTimeoutInMinutes"),
    ({"status": "FAILED", "includeJobDocument": "yes"}, "includeJobDocument"),
    ({"status": "FAILED", "clientToken": "x" * 65}, "clientToken"),
    ({"status": "FAILED", "clientToken": 5}, "clientToken"),
])
def test_invalid_update_requests_say_what_is_wrong(request_body, fragment):
    with pytest.raises(JobsError) as caught:
        api.parse_update(request_body)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert fragment in caught.value.message


def test_client_token_is_echoed_only_when_usable():
    assert api.client_token_of({"clientToken": "abc"}) == "abc"
    assert api.client_token_of({"clientToken": 5}) is None
    assert api.client_token_of({"clientToken": "x" * 65}) is None
    assert api.client_token_of(None) is None


def test_judge_update_version_mismatch_before_state():
    current = _execution(status=ExecutionStatus.SUCCEEDED, version=4)
    with pytest.raises(JobsError) as caught:
        api.judge_update(current, api.UpdateRequest(ExecutionStatus.IN_PROGRESS,
                                                    expected_version=3))
    assert caught.value.code is ErrorCode.VERSION_MISMATCH
    assert caught.value.execution is current
    with pytest.raises(JobsError) as caught:
        api.judge_update(current, api.UpdateRequest(ExecutionStatus.IN_PROGRESS,
                                                    expected_version=4))
    assert caught.value.code is ErrorCode.INVALID_STATE_TRANSITION
    assert "ended" in caught.value.message


def test_judge_update_legal_moves_and_execution_number():
    queued = _execution()
    for status in api.DEVICE_STATUSES:
        api.judge_update(queued, api.UpdateRequest(status))
    api.judge_update(_execution(status=ExecutionStatus.IN_PROGRESS),
                     api.UpdateRequest(ExecutionStatus.IN_PROGRESS))
    with pytest.raises(JobsError) as caught:
        api.judge_update(queued, api.UpdateRequest(ExecutionStatus.FAILED, execution_number=2))
    assert caught.value.code is ErrorCode.RESOURCE_NOT_FOUND


def test_describe_of_an_ended_execution_is_terminal_state_reached():
    with pytest.raises(JobsError) as caught:
        api.check_describable(_execution(status=ExecutionStatus.CANCELED, version=2))
    assert caught.value.code is ErrorCode.TERMINAL_STATE_REACHED
    api.check_describable(_execution(status=ExecutionStatus.IN_PROGRESS))


def test_next_pending_prefers_in_progress_then_oldest_queued():
    q1, q2 = _execution("ota-1"), _execution("ota-2")
    running = _execution("ota-3", status=ExecutionStatus.IN_PROGRESS)
    assert api.next_pending([q1, q2]) is q1
    assert api.next_pending([q1, q2, running]) is running
    assert api.next_pending([]) is None


def test_shapes_match_the_aws_data_types():
    e = Execution("ota-1", "pump-1", status=ExecutionStatus.IN_PROGRESS, version_number=3,
                  status_details={"step": "installing"}, execution_number=2, queued_at=T0,
                  started_at=T0.replace(minute=1), updated_at=T0.replace(minute=2))
    epoch = int(T0.timestamp())
    assert api.execution_summary(e) == {"jobId": "ota-1", "queuedAt": epoch,
                                        "startedAt": epoch + 60, "lastUpdatedAt": epoch + 120,
                                        "versionNumber": 3, "executionNumber": 2}
    assert api.execution_state(e) == {"status": "IN_PROGRESS", "versionNumber": 3,
                                      "statusDetails": {"step": "installing"}}
    data = api.execution_data(e, {"operation": "ota-update"})
    assert data == {"jobId": "ota-1", "thingName": "pump-1",
                    "jobDocument": {"operation": "ota-update"}, "status": "IN_PROGRESS",
                    "statusDetails": {"step": "installing"}, "queuedAt": epoch,
                    "startedAt": epoch + 60, "lastUpdatedAt": epoch + 120,
                    "versionNumber": 3, "executionNumber": 2}
    assert "jobDocument" not in api.execution_data(e, None)
    assert api.jobs_changed([e, _execution("ota-2")], 5) == {
        "jobs": {"IN_PROGRESS": [api.execution_summary(e)],
                 "QUEUED": [api.execution_summary(_execution("ota-2"))]}, "timestamp": 5}
    assert api.jobs_changed([], 5) == {"jobs": {}, "timestamp": 5}
    assert api.next_changed(None, None, 5) == {"timestamp": 5}


def test_error_response_carries_execution_state_only_where_aws_does():
    e = _execution(status=ExecutionStatus.IN_PROGRESS, version=2)
    body = api.error_response(JobsError(ErrorCode.VERSION_MISMATCH, "stale", e), "tok", 9)
    assert body == {"code": "VersionMismatch", "message": "stale", "timestamp": 9,
                    "clientToken": "tok", "executionState": api.execution_state(e)}
    body = api.error_response(JobsError(ErrorCode.INVALID_JSON, "bad"), None, 9)
    assert body == {"code": "InvalidJson", "message": "bad", "timestamp": 9}
