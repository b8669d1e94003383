"""The device OTA state machine, driven synchronously through a fake host: an
in-memory Jobs service, an in-memory file server and a simulated clock. The
same OtaDevice runs on MQTT in the integration tests."""

from __future__ import annotations

import dataclasses
import hashlib
import heapq
import itertools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from core.crypto import codesign
from core.model.semver import SemVer
from core.protocol.ota import OtaJobDocument, sign_manifest
from simulator.ota.device import MAX_FETCH_ATTEMPTS, OtaDevice
from simulator.ota.download import FetchResult
from simulator.ota.faults import OTA_STEPS, OtaFaults
from simulator.ota.slots import Flash, PowerLoss, bootable_after_power_loss, factory_record
from simulator.ota.verify import TrustStore

KEY = codesign.generate_key()
OTHER_KEY = codesign.generate_key()
TERMINAL = {"SUCCEEDED", "FAILED", "REJECTED", "CANCELED"}


def image(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def document(data: bytes, *, version: str = "1.1.0", device_type: str = "pump",
             key: codesign.PrivateKey = KEY, signature: bytes | None = None,
             size: int | None = None, sha256: str | None = None, allow_downgrade: bool = False,
             window: float = 30.0, url: str = "http://files/fw.bin",
             manifest_key: codesign.PrivateKey | None = None, valid_s: int = 3600,
             signed: bool = True) -> dict[str, Any]:
    """A job document as the OTA service makes it: its manifest (signed by
    ``manifest_key``, the image's key by default) vouches for what it says."""
    doc = OtaJobDocument(
        device_type=device_type, version=SemVer.parse(version),
        size=len(data) if size is None else size,
        sha256=sha256 or hashlib.sha256(data).hexdigest(),
        signature=codesign.sign(key, data) if signature is None else signature,
        key_id=codesign.key_id(key), url=url, allow_downgrade=allow_downgrade,
        selftest_window_s=window,
    )
    if signed:
        signer = manifest_key or key
        manifest = doc.manifest_for(key_id=codesign.key_id(signer), issued_at=int(time.time()),
                                    validity_s=valid_s)
        doc = dataclasses.replace(doc, manifest=sign_manifest(
            manifest, lambda b: (codesign.sign(signer, b), codesign.key_id(signer))))
    return doc.to_json()


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._ids = itertools.count()

    def at(self, delay: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._events, (self.t + delay, next(self._ids), action))

    def run(self, until: float = 3600.0, max_events: int = 100_000) -> None:
        for _ in range(max_events):
            if not self._events or self._events[0][0] > until:
                return
            self.t, _, action = heapq.heappop(self._events)
            action()
        raise AssertionError("the device never went quiet")


@dataclass
class Execution:
    job_id: str
    document: dict[str, Any]
    status: str = "QUEUED"
    version: int = 1
    details: dict[str, str] = field(default_factory=dict)
    history: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def wire(self) -> dict[str, Any]:
        return {"jobId": self.job_id, "status": self.status, "versionNumber": self.version,
                "executionNumber": 1, "statusDetails": self.details,
                "jobDocument": self.document}


class Harness:
    """One device, its Jobs service, its file server and its clock."""

    def __init__(self, files: dict[str, bytes], *, faults: OtaFaults | None = None,
                 seed: int = 0, device_type: str = "pump", version: str = "1.0.0",
                 trusted: tuple[codesign.PrivateKey, ...] = (KEY,), chunk: int = 8192,
                 power_cut_at_write: int | None = None) -> None:
        self.clock = Clock()
        self.files = files
        self.jobs: list[Execution] = []
        self.fetches: list[tuple[int, int]] = []
        self.firmware_seen: list[str] = []
        self.restarts = 0
        self.server_down = False
        self.url_token = 0
        self.device_type = device_type
        self.unbootable = 0
        self.cut_op = ""
        self._writes = 0
        self._cut = power_cut_at_write
        self.flash = Flash(factory_record(version), before_write=self._before_write)
        self.device = OtaDevice(self, self.flash,
                                TrustStore(k.public_key() for k in trusted),
                                faults=faults, seed=seed, chunk_bytes=chunk)
        self._boot()

    # ------------------------------------------------------------------ checks
    def _before_write(self, op: str) -> None:
        # The record in place now is what a power cut at this instant leaves.
        if not bootable_after_power_loss(self.flash.record):
            self.unbootable += 1
        self._writes += 1
        if self._cut is not None and self._writes == self._cut:
            self.cut_op = op
            raise PowerLoss(f"cut before write {self._writes} ({op})")

    # ------------------------------------------------------------------ service side
    def queue_job(self, doc: dict[str, Any], job_id: str = "job-1") -> Execution:
        execution = Execution(job_id, doc)
        self.jobs.append(execution)
        self.clock.at(0.05, lambda: self.device.on_notify_next(self._next_wire()))
        return execution

    def cancel(self, job_id: str) -> None:
        for ex in self.jobs:
            if ex.job_id == job_id and ex.status not in TERMINAL:
                ex.status = "CANCELED"
        self.clock.at(0.05, lambda: self.device.on_notify_next(self._next_wire()))

    def _next(self) -> Execution | None:
        for status in ("IN_PROGRESS", "QUEUED"):
            for ex in self.jobs:
                if ex.status == status:
                    return ex
        return None

    def _next_wire(self) -> dict[str, Any] | None:
        ex = self._next()
        return ex.wire() if ex else None

    def _fresh(self, ex: Execution) -> dict[str, Any]:
        wire = ex.wire()
        doc = dict(wire["jobDocument"])
        if "url" in doc:
            doc["url"] = f"{doc['url']}?token={self.url_token}"
        wire["jobDocument"] = doc
        return wire

    def execution(self, job_id: str = "job-1") -> Execution:
        return next(ex for ex in self.jobs if ex.job_id == job_id)

    # ------------------------------------------------------------------ OtaHost
    def start_next(self, resume: bool) -> None:
        def answer() -> None:
            ex = self._next()
            if ex is not None and ex.status == "QUEUED":
                ex.status, ex.version = "IN_PROGRESS", ex.version + 1
            self.device.on_started(self._fresh(ex) if ex else None)
        self.clock.at(0.05, answer)

    def report(self, job_id: str, status: str, details: dict[str, str]) -> None:
        ex = self.execution(job_id)
        assert len(details) <= 10 and all(isinstance(v, str) for v in details.values())
        if ex.status in TERMINAL:
            self.clock.at(0.05, lambda: self.device.on_job_gone(job_id))
            return
        ex.status, ex.details, ex.version = status, details, ex.version + 1
        ex.history.append((status, details))
        if status in TERMINAL:
            self.clock.at(0.05, lambda: self.device.on_report_done(job_id))
            # as IoT Jobs does: the next execution changed
            self.clock.at(0.06, lambda: self.device.on_notify_next(self._next_wire()))

    def fetch(self, url: str, start: int, end: int,
              done: Callable[[FetchResult], None]) -> None:
        self.fetches.append((start, end))
        path, _, token = url.partition("?token=")
        data = self.files.get(path)
        if self.server_down or data is None:
            result = FetchResult(0, error="connection refused")
        elif token != str(self.url_token):
            result = FetchResult(403, error="expired")
        elif start >= len(data):
            result = FetchResult(416, total=len(data))
        else:
            result = FetchResult(206, data[start:end + 1], len(data))
        self.clock.at(0.05, lambda: done(result))

    def refetch_document(self, job_id: str, done: Callable[[Any], None]) -> None:
        self.clock.at(0.05, lambda: done(self._fresh(self.execution(job_id))["jobDocument"]))

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None:
        self.clock.at(delay_s, action)

    def restart(self) -> None:
        self.restarts += 1
        self.device.power_down()
        self.clock.at(3.0, self._boot)

    def _boot(self) -> None:
        self.device.boot()
        if self.device.powered:
            self.device.on_online()

    def set_firmware(self, version: str) -> None:
        self.firmware_seen.append(version)

    @property
    def firmware(self) -> str:
        return self.firmware_seen[-1]

    def steps(self, job_id: str = "job-1") -> list[str]:
        return [d.get("step", "") for _s, d in self.execution(job_id).history]


def run(files: dict[str, bytes], doc: dict[str, Any], **kw: Any) -> Harness:
    h = Harness(files, **kw)
    h.queue_job(doc)
    h.clock.run()
    return h


DATA = image(40_000)
FILES = {"http://files/fw.bin": DATA}


# ---------------------------------------------------------------------- outcomes
def test_update_succeeds_and_device_runs_the_new_version():
    h = run(FILES, document(DATA))
    ex = h.execution()
    assert ex.status == "SUCCEEDED"
    assert ex.details["step"] == "committed"
    assert ex.details["from_version"] == "1.0.0" and ex.details["to_version"] == "1.1.0"
    assert h.firmware == "1.1.0" and h.device.running_version == "1.1.0"
    assert h.flash.record.active == "B" and h.flash.record.job is None
    steps = h.steps()
    assert steps.index("downloading") < steps.index("verifying") < steps.index("installing") \
        < steps.index("rebooting") < steps.index("selftest") < steps.index("committed")
    progress = [d["progress"] for s, d in ex.history
                if "progress" in d and d["step"] == "downloading"]
    assert progress[0] == "0" and progress[-1] == "100"
    assert len(progress) <= 5  # throttled: 0, 25, 50, 75, 100
    assert len(ex.history) <= 11
    assert h.restarts == 1 and h.unbootable == 0
    # every byte fetched once, in order, with Range requests
    assert [s for s, _e in h.fetches] == list(range(0, len(DATA), 8192))


def test_second_update_goes_to_the_other_slot():
    data2 = image(30_000, seed=2)
    h = Harness({**FILES, "http://files/fw2.bin": data2})
    h.queue_job(document(DATA))
    h.clock.run()
    h.queue_job(document(data2, version="1.2.0", url="http://files/fw2.bin"), job_id="job-2")
    h.clock.run()
    assert h.execution("job-2").status == "SUCCEEDED"
    assert h.flash.record.active == "A" and h.firmware == "1.2.0"


@pytest.mark.parametrize(("doc", "reason"), [
    (document(DATA, device_type="tracker"), "wrong-device-type"),
    (document(DATA, version="0.9.0"), "downgrade"),
    (document(DATA, version="1.0.0"), "same-version"),
    (document(DATA, key=OTHER_KEY), "untrusted-key"),
    ({"operation": "ota-update", "firmware": {}}, "bad-document"),
])
def test_document_rejections_need_no_download(doc, reason):
    h = run(FILES, doc)
    ex = h.execution()
    assert ex.status == "REJECTED"
    assert ex.details["reason"] == reason and ex.details["message"]
    assert h.fetches == [] and h.firmware == "1.0.0" and h.restarts == 0


def test_bad_signature_is_rejected_after_download():
    forged = codesign.sign(KEY, DATA[:-1] + b"x")
    h = run(FILES, document(DATA, signature=forged))
    ex = h.execution()
    assert (ex.status, ex.details["reason"]) == ("REJECTED", "bad-signature")
    assert h.fetches and h.firmware == "1.0.0" and h.flash.record.trial is None


def test_allowed_downgrade_installs():
    h = run(FILES, document(DATA, version="0.9.0", allow_downgrade=True))
    assert h.execution().status == "SUCCEEDED" and h.firmware == "0.9.0"


@pytest.mark.parametrize(("files", "doc", "reason"), [
    ({"http://files/fw.bin": DATA[:25_000]}, document(DATA), "truncated"),
    ({"http://files/fw.bin": image(40_000, seed=9)}, document(DATA), "sha256-mismatch"),
    ({}, document(DATA), "download-failed"),
])
def test_failures_report_failed_with_the_reason(files, doc, reason):
    h = run(files, doc)
    ex = h.execution()
    assert (ex.status, ex.details["reason"]) == ("FAILED", reason)
    assert h.firmware == "1.0.0" and h.flash.record.job is None and h.restarts == 0


def test_download_failure_gives_up_after_retries():
    h = run({}, document(DATA))
    assert len(h.fetches) == MAX_FETCH_ATTEMPTS


def test_expired_url_is_refreshed_and_the_download_resumes():
    h = Harness(FILES)
    h.queue_job(document(DATA))
    h.clock.run(until=0.2)  # a couple of blocks in
    assert 0 < len(h.fetches) < 5
    h.url_token += 1        # the presigned URL expires
    h.clock.run()
    assert h.execution().status == "SUCCEEDED"
    starts = [s for s, _e in h.fetches]
    assert len(starts) == len(set(starts)) + 1  # only the refused block was asked twice


def test_stalled_download_resumes_from_written_bytes():
    h = run(FILES, document(DATA), faults=OtaFaults(stall_p=1.0, stall_s=60.0))
    assert h.execution().status == "SUCCEEDED"
    assert h.clock.t > 60.0
    assert [s for s, _e in h.fetches] == list(range(0, len(DATA), 8192))


def test_install_failure_keeps_the_old_image():
    h = run(FILES, document(DATA), faults=OtaFaults(failure_rate=1.0), seed=1)
    ex = h.execution()
    assert ex.status == "FAILED"
    assert ex.details["reason"] in ("install-failed", "selftest-failed")
    assert h.firmware == "1.0.0" and h.flash.record.active == "A"


@pytest.mark.parametrize("mode", ["fail", "hang"])
def test_failing_selftest_rolls_back(mode):
    h = run(FILES, document(DATA, window=20.0),
            faults=OtaFaults(selftest_fail_p=1.0, selftest_mode=mode))
    ex = h.execution()
    assert (ex.status, ex.details["reason"], ex.details["step"]) == (
        "FAILED", "selftest-failed", "rolled_back")
    # ran the new image during the trial, then the old one again
    assert h.firmware_seen[-2:] == ["1.1.0", "1.0.0"]
    assert h.flash.record.active == "A" and h.flash.record.trial is None
    assert h.restarts == 2 and h.unbootable == 0
    if mode == "hang":
        assert h.clock.t >= 20.0  # the window ran out before the rollback


def test_cancel_during_download_stops_cleanly():
    h = Harness(FILES, faults=OtaFaults(stall_p=1.0, stall_s=100.0))
    h.queue_job(document(DATA))
    h.clock.run(until=50.0)
    h.cancel("job-1")
    h.clock.run()
    assert h.execution().status == "CANCELED"
    assert h.flash.record.job is None and h.firmware == "1.0.0"
    assert h.device.busy is False


def test_cancel_during_selftest_rolls_back_to_the_confirmed_image():
    h = Harness(FILES, faults=OtaFaults(selftest_fail_p=1.0, selftest_mode="hang"))
    h.queue_job(document(DATA, window=600.0))
    h.clock.run(until=30.0)
    assert h.flash.in_trial and h.firmware == "1.1.0"
    h.cancel("job-1")
    h.clock.run()
    assert h.firmware == "1.0.0" and h.flash.record.trial is None
    assert h.flash.record.job is None and h.execution().status == "CANCELED"


def test_a_job_queued_while_busy_starts_after_the_first_finishes():
    data2 = image(20_000, seed=3)
    h = Harness({**FILES, "http://files/fw2.bin": data2})
    h.queue_job(document(DATA))
    h.queue_job(document(data2, version="1.2.0", url="http://files/fw2.bin"), job_id="job-2")
    h.clock.run()
    assert h.execution("job-1").status == "SUCCEEDED"
    assert h.execution("job-2").status == "SUCCEEDED"
    assert h.firmware == "1.2.0"


# ---------------------------------------------------------------------- power loss
def _seeded_run(seed: int, step: str) -> Harness:
    rng = random.Random(seed)
    size = rng.randint(5_000, 120_000)
    data = image(size, seed)
    faults = OtaFaults(power_loss_p=1.0, power_loss_step=step,
                       stall_p=rng.choice([0.0, 1.0]), stall_s=rng.uniform(1, 30),
                       failure_rate=rng.choice([0.0, 0.0, 0.5]),
                       selftest_fail_p=rng.choice([0.0, 0.0, 1.0]),
                       selftest_mode=rng.choice(["fail", "hang"]))
    return run({"http://files/fw.bin": data}, document(data, window=rng.uniform(10, 60)),
               faults=faults, seed=seed, chunk=rng.choice([1024, 4096, 16384]))


SEEDS = range(200)


@pytest.mark.parametrize("step", OTA_STEPS)
def test_power_loss_at_every_step_never_bricks(step):
    fired = outcomes = 0
    for seed in SEEDS:
        h = _seeded_run(seed, step)
        ex = h.execution()
        assert not h.device.bricked and h.unbootable == 0, seed
        assert bootable_after_power_loss(h.flash.record), seed
        assert ex.status in ("SUCCEEDED", "FAILED"), (seed, ex.status, ex.details)
        assert h.firmware == ("1.1.0" if ex.status == "SUCCEEDED" else "1.0.0"), seed
        assert h.flash.record.job is None and h.flash.record.trial is None, seed
        fired += h.device.power_losses > 0
        outcomes += ex.status == "SUCCEEDED"
        if step == "selftest" and h.device.power_losses:
            # an unconfirmed trial that loses power is rolled back (MCUboot's test swap)
            assert ex.details["reason"] == "selftest-failed", seed
    # the fault really hit this step in most runs (some never reach it: install failed)
    assert fired >= len(SEEDS) // 2, fired
    if step != "selftest":
        assert outcomes > 0


def test_power_cut_before_every_flash_write():
    clean = run(FILES, document(DATA))
    total = clean._writes  # writes attempted in a run without faults
    assert total >= 10
    for cut in range(1, total + 2):
        h = run(FILES, document(DATA), power_cut_at_write=cut)
        assert h.unbootable == 0 and not h.device.bricked, cut
        ex = h.execution()
        assert h.flash.record.job is None, cut
        if h.cut_op == "commit":
            # power lost before the trial image confirmed itself: rolled back
            assert (ex.status, ex.details["reason"]) == ("FAILED", "selftest-failed")
            assert h.firmware == "1.0.0"
        else:
            assert ex.status == "SUCCEEDED", (cut, h.cut_op, ex.details)
            assert h.firmware == "1.1.0"


def test_power_cut_before_every_write_of_a_rollback():
    faults = OtaFaults(selftest_fail_p=1.0, selftest_mode="fail")
    clean = run(FILES, document(DATA), faults=faults)
    for cut in range(1, clean._writes + 2):
        h = run(FILES, document(DATA), faults=faults, power_cut_at_write=cut)
        assert h.unbootable == 0 and not h.device.bricked, cut
        assert h.execution().status == "FAILED" and h.firmware == "1.0.0", cut


def test_same_seed_same_story():
    def story(seed: int) -> list[Any]:
        h = _seeded_run(seed, "any")
        return [h.execution().history, h.fetches, h.firmware_seen, h.clock.t]

    assert story(7) == story(7)
    assert any(story(7) != story(s) for s in (8, 9, 10))


# ---------------------------------------------------------------------- signed manifest
def _tampered(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Change the unsigned firmware fields, keep the genuine manifest."""
    out = {**doc, "firmware": {**doc["firmware"], **fields}}
    return out


def _payload_edited(doc: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Edit the manifest's payload itself and keep its signature (and match the
    document to it, so only the signature can catch it)."""
    import base64
    import json

    manifest = dict(doc["manifest"])
    payload = json.loads(base64.b64decode(manifest["payload"]))
    payload.update(fields)
    manifest["payload"] = base64.b64encode(
        json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).decode()
    return {**_tampered(doc, **fields), "manifest": manifest}


@pytest.mark.parametrize(("make", "reason"), [
    # no manifest at all: a job document alone instructs nothing
    (lambda: document(DATA, signed=False), "bad-document"),
    # the document claims 9.9.9, the (genuine) manifest says 1.1.0
    (lambda: _tampered(document(DATA), version="9.9.9"), "bad-document"),
    # the manifest itself says 9.9.9: its signature no longer verifies
    (lambda: _payload_edited(document(DATA), version="9.9.9"), "bad-signature"),
    # a downgrade switched on in the document only
    (lambda: {**document(DATA, version="0.9.0"), "allowDowngrade": True}, "bad-document"),
    # signed by a key the device does not trust
    (lambda: document(DATA, manifest_key=OTHER_KEY), "untrusted-key"),
    # expired: a replay of an old deployment's manifest
    (lambda: document(DATA, valid_s=-60), "expired-manifest"),
])
def test_only_a_valid_signed_manifest_is_acted_on(make, reason):
    h = run(FILES, make())
    ex = h.execution()
    assert (ex.status, ex.details["reason"]) == ("REJECTED", reason), ex.details
    assert h.fetches == [] and h.firmware_seen[-1] == "1.0.0" and h.restarts == 0


def test_minimum_version_in_the_manifest_is_enforced():
    doc = OtaJobDocument.parse(document(DATA, version="2.0.0", signed=False))
    manifest = dataclasses.replace(
        doc.manifest_for(key_id=codesign.key_id(KEY), issued_at=int(time.time())),
        min_version=SemVer.parse("1.5.0"))
    signed = sign_manifest(manifest, lambda b: (codesign.sign(KEY, b), codesign.key_id(KEY)))
    h = run(FILES, dataclasses.replace(doc, manifest=signed).to_json())
    ex = h.execution()
    assert (ex.status, ex.details["reason"]) == ("REJECTED", "downgrade")
    assert "1.5.0" in ex.details["message"]


def test_the_device_reports_the_signed_version():
    h = run(FILES, document(DATA, version="1.1.0"))
    assert h.execution().status == "SUCCEEDED" and h.firmware == "1.1.0"


# ---------------------------------------------------------------------- the document's keyId
BOTH = (KEY, OTHER_KEY)


def _legacy(doc: dict[str, Any], signer: codesign.PrivateKey = KEY) -> dict[str, Any]:
    """The same document with a manifest made before it named the image's key."""
    parsed = OtaJobDocument.parse(doc)
    assert parsed.manifest is not None
    manifest = dataclasses.replace(parsed.manifest.manifest(), image_key_id=None)
    signed = sign_manifest(manifest, lambda b: (codesign.sign(signer, b),
                                                codesign.key_id(signer)))
    return dataclasses.replace(parsed, manifest=signed).to_json()


@pytest.mark.parametrize("make", [
    lambda: _tampered(document(DATA), keyId=codesign.key_id(OTHER_KEY)),
    lambda: _tampered(_legacy(document(DATA)), keyId=codesign.key_id(OTHER_KEY)),
], ids=["manifest-names-the-image-key", "older-manifest-binds-its-own-key"])
def test_the_documents_key_id_is_bound_by_the_manifest(make):
    """An edited keyId naming another key the device trusts is refused before any
    download, with the reason."""
    h = run(FILES, make(), trusted=BOTH)
    ex = h.execution()
    assert (ex.status, ex.details["reason"]) == ("REJECTED", "bad-document"), ex.details
    assert f"keyId '{codesign.key_id(OTHER_KEY)}'" in ex.details["message"]
    assert f"signed manifest says '{codesign.key_id(KEY)}'" in ex.details["message"]
    assert h.fetches == [] and h.firmware_seen[-1] == "1.0.0"


def test_an_image_signed_by_one_engineer_and_deployed_by_another_installs():
    h = run(FILES, document(DATA, key=OTHER_KEY, manifest_key=KEY), trusted=BOTH)
    assert h.execution().status == "SUCCEEDED" and h.firmware == "1.1.0"
