"""Shadow requests, jobs requests, OTA job documents and signed manifests:
value or typed error (ProtocolError, JobsError, ValidationError), nothing else."""

from __future__ import annotations

import base64
import json

from hypothesis import given
from hypothesis import strategies as st

from core.errors import ValidationError
from core.ports.shadows import ShadowDocument
from core.protocol.ota import OtaJobDocument, OtaManifest, SignedManifest
from core.protocol.payloads import ProtocolError, decode_json_object
from plugins.local.hub.shadow_engine import (
    MAX_STATE_BYTES,
    handle_delete,
    handle_get,
    handle_update,
)
from plugins.local.jobs import api
from plugins.local.jobs.api import JobsError
from tests.fuzz.conftest import (
    HOSTILE_TEXT,
    JSON_VALUES,
    SCALARS,
    count,
    fuzz_settings,
    payloads,
    variants,
)

NOW = 1_795_000_000
SECTION = st.dictionaries(st.sampled_from(["interval", "a", "b", "x" * 70]) | HOSTILE_TEXT,
                          JSON_VALUES, max_size=4) | SCALARS
SHADOW = st.fixed_dictionaries(
    {"state": st.fixed_dictionaries({}, optional={"desired": SECTION, "reported": SECTION})
     | SCALARS},
    optional={"clientToken": HOSTILE_TEXT | SCALARS, "version": SCALARS},
)
STORED = ShadowDocument("d1", {"interval": 5, "setpoints": {"a": 1}}, {"interval": 2}, 7)


@given(payloads(SHADOW), st.integers())
@fuzz_settings(300)
def test_shadow_requests(payload, seed):
    for case in variants(payload, seed):
        check_shadow(case)


def check_shadow(payload):
    count("shadow")
    try:
        request = decode_json_object(payload, "shadow update", document=True)
    except ProtocolError as exc:
        assert exc.reason
        return
    for current in (None, STORED):
        outcome = handle_update("d1", current, request, NOW)
        for reply in outcome.replies:
            json.dumps(reply.body, allow_nan=False)
        if outcome.document is not None:
            state = {"desired": outcome.document.desired, "reported": outcome.document.reported}
            assert len(json.dumps(state, separators=(",", ":")).encode()) <= MAX_STATE_BYTES + 40
        for handler in (handle_get, handle_delete):
            for reply in handler(current, request, NOW).replies:
                json.dumps(reply.body, allow_nan=False)


JOBS = st.fixed_dictionaries(
    {},
    optional={"status": st.sampled_from(["IN_PROGRESS", "SUCCEEDED", "CANCELED"]) | SCALARS,
              "clientToken": HOSTILE_TEXT | SCALARS,
              "statusDetails": st.dictionaries(HOSTILE_TEXT | st.text(max_size=5),
                                               HOSTILE_TEXT | SCALARS, max_size=12) | SCALARS,
              "expectedVersion": SCALARS, "executionNumber": SCALARS,
              "includeJobDocument": SCALARS, "includeJobExecutionState": SCALARS,
              "stepTimeoutInMinutes": SCALARS | st.integers(-5, 20_000)},
)
TAILS = st.lists(st.sampled_from(["get", "update", "start-next", "$next", "job-1", "",
                                  "notify", "accepted", "x" * 70, "\u202e"]), max_size=4)


@given(payloads(JOBS), TAILS, st.integers())
@fuzz_settings(300)
def test_jobs_requests(payload, tail, seed):
    count("jobs_topics")
    try:
        api.route(tail)
    except JobsError as exc:
        assert exc.code
    for case in variants(payload, seed):
        check_jobs(case)


def check_jobs(payload):
    count("jobs")
    try:
        request = decode_json_object(payload, "jobs request", document=True)
    except ProtocolError as exc:
        assert exc.reason
        return
    token = api.client_token_of(request)
    assert token is None or isinstance(token, str)
    for parse in (api.parse_update, api.parse_start_next, api.parse_describe,
                  api.parse_get_pending):
        try:
            parse(request)
        except JobsError as exc:
            assert exc.code and exc.message


SHA = "ab" * 32
B64 = base64.b64encode(b"sig").decode()
FIRMWARE = st.fixed_dictionaries(
    {"deviceType": st.sampled_from(["pump", ""]) | HOSTILE_TEXT | SCALARS,
     "version": st.sampled_from(["1.2.3", "1.2", "01.2.3", "1.2.3-rc.1+b"]) | SCALARS,
     "size": st.integers(-2, 2**64) | SCALARS,
     "sha256": st.sampled_from([SHA, SHA.upper(), "ab"]) | SCALARS,
     "signature": st.sampled_from([B64, "not base64!"]) | SCALARS,
     "keyId": HOSTILE_TEXT | SCALARS, "url": st.sampled_from(["http://h/f", ""]) | SCALARS},
    optional={"allowDowngrade": SCALARS, "selftestWindowSeconds": SCALARS},
)
JOB_DOCUMENT = st.fixed_dictionaries(
    {"operation": st.sampled_from(["firmware-update"]) | SCALARS,
     "firmware": FIRMWARE | JSON_VALUES},
    optional={"manifest": st.fixed_dictionaries(
        {"payload": st.sampled_from([B64, "???"]) | SCALARS,
         "signature": st.sampled_from([B64]) | SCALARS,
         "signatureAlgorithm": SCALARS, "keyId": HOSTILE_TEXT | SCALARS}) | JSON_VALUES},
)
MANIFEST = st.fixed_dictionaries(
    {"format": st.sampled_from(["smartiot-ota-manifest/1"]) | SCALARS,
     "deviceType": HOSTILE_TEXT | SCALARS, "version": SCALARS | st.just("1.0.0"),
     "size": SCALARS, "sha256": st.just(SHA) | SCALARS, "issuedAt": SCALARS,
     "expires": SCALARS, "allowDowngrade": SCALARS},
    optional={"minVersion": SCALARS, "keyId": SCALARS},
)


@given(payloads(JOB_DOCUMENT), payloads(MANIFEST), st.integers())
@fuzz_settings(200)
def test_ota_job_documents_and_manifests(document, manifest, seed):
    for case in variants(document, seed):
        count("ota_documents")
        try:
            parsed = decode_json_object(case, "job document", document=True)
        except ProtocolError:
            continue
        for parse in (OtaJobDocument.parse, SignedManifest.parse):
            try:
                parse(parsed.get("manifest") if parse is SignedManifest.parse else parsed)
            except ValidationError as exc:
                assert str(exc)
    for case in variants(manifest, seed):
        count("firmware_manifests")
        try:
            OtaManifest.parse(case)
        except ValidationError as exc:
            assert str(exc)
