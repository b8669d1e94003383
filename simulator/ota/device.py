"""The device side of an OTA update, independent of MQTT and HTTP.

:class:`OtaDevice` reacts to job executions and drives the flash through
download, verification, install, trial boot, self-test and commit (or
rollback). Everything it needs from the outside world goes through an
:class:`OtaHost`: the MQTT agent implements it with the Jobs MQTT API, the
fleet runtime and an HTTP worker pool; the unit tests implement it with a
synchronous fake, so the same code runs both.

What survives a power loss is the flash record only; RAM state (the job
being worked on, the parsed document, pending callbacks) is dropped at
:meth:`OtaDevice.power_down` and rebuilt from the flash after
:meth:`OtaDevice.boot` when the Jobs service hands the execution back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from core.protocol.ota import (
    DETAIL_BYTES,
    DETAIL_FROM,
    DETAIL_MESSAGE,
    DETAIL_PROGRESS,
    DETAIL_REASON,
    DETAIL_SLOT,
    DETAIL_STEP,
    DETAIL_TO,
    OtaFailure,
    OtaJobDocument,
    OtaStep,
)
from simulator.ota.download import FetchResult
from simulator.ota.faults import FaultDraw, OtaFaults, draw_faults
from simulator.ota.slots import COMMITTED, ROLLED_BACK, Flash, JobContext, PowerLoss
from simulator.ota.verify import (
    TrustStore,
    Verdict,
    check_document,
    check_image,
    check_manifest,
    parse_document,
)

log = logging.getLogger(__name__)

CHUNK_BYTES = 32 * 1024
MAX_FETCH_ATTEMPTS = 5
MAX_URL_REFRESHES = 3
RETRY_BACKOFF_S = 2.0
REBOOT_AFTER_S = 0.5      # let the "rebooting" report leave before the link drops
SELFTEST_S = 2.0          # how long the self-test runs (capped by a third of the window)
PROGRESS_STEP_PCT = 25    # progress reports at 0, 25, 50, 75, 100 %
MESSAGE_CHARS = 200

SUCCEEDED, FAILED, REJECTED, IN_PROGRESS = "SUCCEEDED", "FAILED", "REJECTED", "IN_PROGRESS"


class OtaHost(Protocol):
    """What the device needs from its surroundings. Delays are simulated seconds."""

    @property
    def device_type(self) -> str: ...

    def start_next(self, resume: bool) -> None:
        """Ask for the next pending execution (answer: :meth:`OtaDevice.on_started`)."""

    def report(self, job_id: str, status: str, details: dict[str, str]) -> None:
        """Update the execution; a terminal one ends with :meth:`OtaDevice.on_report_done`."""

    def fetch(self, url: str, start: int, end: int,
              done: Callable[[FetchResult], None]) -> None: ...

    def refetch_document(self, job_id: str, done: Callable[[Any], None]) -> None:
        """The job document again (with a fresh URL), or None."""

    def call_later(self, delay_s: float, action: Callable[[], None]) -> None: ...

    def restart(self) -> None:
        """Reset the device now: the host calls power_down(), then boot() and
        on_online() when it is back."""

    def set_firmware(self, version: str) -> None: ...


class OtaDevice:
    def __init__(self, host: OtaHost, flash: Flash, trust: TrustStore, *,
                 faults: OtaFaults | None = None, seed: int = 0, device_index: int = 0,
                 chunk_bytes: int = CHUNK_BYTES,
                 clock: Callable[[], float] = time.time) -> None:
        self.host = host
        # Wall-clock time for manifest expiry (simulated time may run faster).
        self.clock = clock
        self.flash = flash
        self.trust = trust
        self.faults = faults or OtaFaults()
        self.seed = seed
        self.device_index = device_index
        self.chunk_bytes = chunk_bytes
        self.powered = True
        self.power_losses = 0
        self.bricked = False
        # The environment's memory, not the device's: which faults were drawn and
        # have fired survives power loss, so each fires at most once per job.
        self._draws: dict[str, FaultDraw] = {}
        self._fired: set[tuple[str, str]] = set()
        self._epoch = 0
        self._reset_ram()

    # ------------------------------------------------------------------ RAM
    def _reset_ram(self) -> None:
        self._epoch += 1  # callbacks scheduled before this belong to nobody
        self.job_id: str | None = None
        self.doc: OtaJobDocument | None = None
        self.step = ""
        self._attempts = 0
        self._refreshes = 0
        self._reported_pct = -1
        self._terminal_sent = False
        self._next_wanted = False

    @property
    def busy(self) -> bool:
        return self.job_id is not None

    @property
    def running_version(self) -> str:
        return self.flash.running_version

    # ------------------------------------------------------------------ guards
    def _run(self, action: Callable[[], None]) -> None:
        if not self.powered:
            return
        try:
            action()
        except PowerLoss:
            self.power_losses += 1
            self.host.restart()

    def _later(self, delay_s: float, action: Callable[[], None]) -> None:
        epoch = self._epoch
        self.host.call_later(delay_s, lambda: self._alive(epoch, action))

    def _alive(self, epoch: int, action: Callable[[], None]) -> None:
        """Callbacks from before a reset belong to a device that no longer exists."""
        if epoch == self._epoch:
            self._run(action)

    def _checkpoint(self, step: str, position: float) -> None:
        """Power fails here if this job's draw says so: at the first checkpoint of
        ``step`` at or past the drawn position (1.0 is a step's last)."""
        job = self.job_id or (self.flash.record.job.job_id if self.flash.record.job else None)
        draw = self._draws.get(job) if job else None
        if draw is None or draw.power_loss_step != step or (job, step) in self._fired:
            return
        if position >= draw.power_loss_at or position >= 1.0:
            self._fired.add((str(job), step))
            raise PowerLoss(f"power lost while {step}")

    # ------------------------------------------------------------------ lifecycle
    def power_down(self) -> None:
        self.powered = False
        self.flash.power_off()
        self._reset_ram()

    def boot(self) -> None:
        """Power is back: run the bootloader and start the image it picked."""
        self.powered = True
        self._reset_ram()
        record = self.flash.record
        trial = record.trial is not None and record.job is not None
        try:
            if trial:
                self._checkpoint(OtaStep.REBOOTING, 0.5)
            self.flash.boot()
            if trial:
                self._checkpoint(OtaStep.REBOOTING, 1.0)
        except PowerLoss:
            self.power_losses += 1
            self.flash.power_off()
            self.host.restart()
            return
        except Exception:
            self.bricked = True
            raise
        self.host.set_firmware(self.flash.running_version)
        if self.flash.in_trial:
            job = self.flash.record.job
            window = job.selftest_window_s if job is not None else 30.0
            self._later(window, self._watchdog)

    def on_online(self) -> None:
        """Connected to the Jobs service (after a boot or a lost link)."""
        if self.powered and not self.busy:
            self.host.start_next(self.flash.record.job is not None)

    # ------------------------------------------------------------------ job events
    def on_notify_next(self, execution: dict[str, Any] | None) -> None:
        self._run(lambda: self._notified(execution))

    def _notified(self, execution: dict[str, Any] | None) -> None:
        job_id = execution.get("jobId") if execution else None
        if self.job_id is None:
            if job_id:
                self.host.start_next(self.flash.record.job is not None)
            return
        if self._terminal_sent:
            self._next_wanted = self._next_wanted or bool(job_id)
            return
        if job_id == self.job_id:
            return
        # Our execution is no longer the next one: it was canceled or removed.
        self._drop_job("canceled")
        if job_id and self.powered:
            self.host.start_next(False)

    def on_started(self, execution: dict[str, Any] | None) -> None:
        self._run(lambda: self._started(execution))

    def _started(self, execution: dict[str, Any] | None) -> None:
        job_id = execution.get("jobId") if execution else None
        if not isinstance(job_id, str) or not job_id or execution is None:
            working = self.job_id is not None and not self._terminal_sent
            remembered = self.job_id is None and self.flash.record.job is not None
            if working or remembered:
                self._drop_job("no longer queued")
            return
        if job_id == self.job_id:
            return  # asked again after a reconnect: already on it
        if self.job_id is not None:
            if self._terminal_sent:
                self._next_wanted = True
                return
            self._drop_job("replaced")
        stale = self.flash.record.job
        if stale is not None and stale.job_id != job_id and self._drop_job("stale"):
            return  # rolling back first; the execution comes again after the boot
        self.job_id = job_id
        number = execution.get("executionNumber", 1)
        self._draws.setdefault(job_id, draw_faults(
            self.faults, self.seed, self.device_index, job_id,
            number if isinstance(number, int) else 1))
        context = self.flash.record.job
        if context is not None and (context.outcome or self.flash.in_trial):
            self._resume(context)  # nothing left that needs the document
            return
        parsed = parse_document(execution.get("jobDocument"))
        if isinstance(parsed, Verdict):
            self._finish(parsed)
            return
        self.doc = parsed
        if context is not None:
            # Resuming after a reset: the manifest must still be signed and describe
            # the image already half-written; an update under way is not cut off by
            # its expiry.
            resumed = self._matches_flash(parsed, context.to_version)
            if resumed is not None:
                self._finish(resumed)
                return
            self._resume(context)
            return
        manifest = check_manifest(parsed, self.trust, now=self.clock())
        if isinstance(manifest, Verdict):
            self._finish(manifest)
            return
        verdict = check_document(parsed, device_type=self.host.device_type,
                                 running_version=self.running_version, trust=self.trust,
                                 manifest=manifest)
        if verdict is not None:
            self._finish(verdict)
            return
        self.flash.begin(JobContext(job_id, self.running_version, str(parsed.version),
                                    parsed.selftest_window_s), parsed.sha256, parsed.size)
        self.step = OtaStep.DOWNLOADING
        self._report_progress(force=True)
        self._checkpoint(OtaStep.DOWNLOADING, 0.0)
        self._download()

    def _matches_flash(self, doc: OtaJobDocument, to_version: str) -> Verdict | None:
        manifest = check_manifest(doc, self.trust, now=self.clock(), check_expiry=False)
        if isinstance(manifest, Verdict):
            return manifest
        record = self.flash.record
        slot = record.slot(record.inactive)
        if str(manifest.version) != to_version or (slot.version == to_version and (
                (manifest.sha256, manifest.size) != (slot.sha256, slot.size))):
            return Verdict(OtaFailure.BAD_DOCUMENT,
                           f"the job's manifest ({manifest.version}) is not the update under "
                           f"way ({to_version})")
        return None

    def _resume(self, context: JobContext) -> None:
        record = self.flash.record
        if context.outcome == COMMITTED:
            self.step = OtaStep.COMMITTED
            self._report_terminal(SUCCEEDED, {})
        elif context.outcome == ROLLED_BACK:
            self.step = OtaStep.ROLLED_BACK
            self._finish(Verdict(OtaFailure.SELFTEST_FAILED,
                                 f"{context.to_version} was not confirmed; rolled back to "
                                 f"{self.running_version}"))
        elif self.flash.in_trial:
            self._selftest()
        elif record.slot(record.inactive).bootable:
            self._install()
        else:
            self.step = OtaStep.DOWNLOADING
            self._report_progress(force=True)
            self._download()

    def on_report_done(self, job_id: str) -> None:
        """A terminal status was accepted (or the service already had it)."""
        self._run(lambda: self._report_done(job_id))

    def _report_done(self, job_id: str) -> None:
        if job_id != self.job_id or not self._terminal_sent:
            return
        self.flash.finish_job()
        wanted = self._next_wanted
        self._reset_ram()
        if wanted:
            self.host.start_next(False)

    def on_job_gone(self, job_id: str) -> None:
        """The service says the execution is over (canceled, removed, timed out)."""
        if job_id != self.job_id:
            return
        if self._terminal_sent:
            self.on_report_done(job_id)
        else:
            self._run(self._cancel)

    def _cancel(self) -> None:
        self._drop_job("canceled")

    def _drop_job(self, why: str) -> bool:
        """Stop cleanly: never leave a half-confirmed image behind. True if the
        device is restarting to boot its confirmed image again."""
        log.info("device %s drops its OTA job (%s)", self.device_index, why)
        restart = self.flash.in_trial
        if self.flash.record.trial is not None:
            self.flash.revert()
        self.flash.finish_job()
        self._reset_ram()
        if restart:
            self.host.restart()
        return restart

    # ------------------------------------------------------------------ download
    def _download(self) -> None:
        doc, record = self.doc, self.flash.record
        assert doc is not None and self.job_id is not None
        written = record.slot(record.inactive).written
        if written >= doc.size:
            self._verify()
            return
        draw = self._draws[self.job_id]
        stall = (self.job_id, "stall")
        if draw.stall_at is not None and stall not in self._fired and (
                written >= draw.stall_at * doc.size):
            self._fired.add(stall)
            self._later(self.faults.stall_s, self._download)
            return
        end = min(doc.size, written + self.chunk_bytes) - 1
        epoch = self._epoch
        self.host.fetch(doc.url, written, end,
                        lambda result: self._alive(epoch, lambda: self._fetched(written, result)))

    def _fetched(self, start: int, result: FetchResult) -> None:
        doc, job_id = self.doc, self.job_id
        assert doc is not None and job_id is not None
        if result.expired:
            self._refreshes += 1
            if self._refreshes > MAX_URL_REFRESHES:
                self._finish(Verdict(OtaFailure.DOWNLOAD_FAILED, "the download URL keeps "
                                     "expiring"))
                return
            epoch = self._epoch
            self.host.refetch_document(
                job_id, lambda document: self._alive(epoch, lambda: self._refreshed(document)))
            return
        if result.past_end or (result.ok and not result.data):
            self._verify()  # the file ends before the size the document promised
            return
        if not result.ok:
            self._attempts += 1
            if self._attempts >= MAX_FETCH_ATTEMPTS:
                self._finish(Verdict(OtaFailure.DOWNLOAD_FAILED,
                                     f"{self._attempts} attempts failed: {result.error}"))
            else:
                self._later(RETRY_BACKOFF_S * 2 ** (self._attempts - 1), self._download)
            return
        self._attempts = 0
        data = result.data[: doc.size - start]
        self.flash.write_chunk(start, data)
        written = start + len(data)
        self._report_progress()
        self._checkpoint(OtaStep.DOWNLOADING, written / doc.size)
        if result.total is not None and written >= result.total:
            self._verify()  # nothing more to fetch: verification decides
            return
        self._download()

    def _refreshed(self, document: Any) -> None:
        parsed = parse_document(document)
        if isinstance(parsed, Verdict) or self.doc is None or (
                parsed.sha256, parsed.size) != (self.doc.sha256, self.doc.size) or (
                parsed.manifest != self.doc.manifest):
            self._finish(Verdict(OtaFailure.DOWNLOAD_FAILED,
                                 "could not get a fresh download URL"))
            return
        self.doc = parsed
        self._download()

    def _report_progress(self, *, force: bool = False) -> None:
        assert self.doc is not None
        record = self.flash.record
        written = record.slot(record.inactive).written
        pct = written * 100 // self.doc.size
        bucket = pct - pct % PROGRESS_STEP_PCT
        if force or bucket > self._reported_pct:
            self._reported_pct = bucket
            self._report(IN_PROGRESS, {DETAIL_PROGRESS: str(pct), DETAIL_BYTES: str(written)})

    # ------------------------------------------------------------------ verify, install
    def _verify(self) -> None:
        assert self.doc is not None
        self.step = OtaStep.VERIFYING
        data = self.flash.image()
        # the last progress report may have been coalesced away: say where it ended
        self._report(IN_PROGRESS, {DETAIL_PROGRESS: str(len(data) * 100 // self.doc.size),
                                   DETAIL_BYTES: str(len(data))})
        self._checkpoint(OtaStep.VERIFYING, 0.5)
        verdict = check_image(self.doc, data, self.trust)
        if verdict is not None:
            self._finish(verdict)
            return
        self.flash.mark_verified()
        self._checkpoint(OtaStep.VERIFYING, 1.0)
        self._install()

    def _install(self) -> None:
        assert self.job_id is not None
        self.step = OtaStep.INSTALLING
        self._report(IN_PROGRESS, {})
        self._checkpoint(OtaStep.INSTALLING, 0.5)
        if self._draws[self.job_id].install_fails:
            self._finish(Verdict(OtaFailure.INSTALL_FAILED,
                                 "writing the boot marker failed (injected)"))
            return
        self.flash.set_pending()
        self._checkpoint(OtaStep.INSTALLING, 1.0)
        self.step = OtaStep.REBOOTING
        self._report(IN_PROGRESS, {})
        self._later(REBOOT_AFTER_S, self.host.restart)

    # ------------------------------------------------------------------ trial boot
    def _selftest(self) -> None:
        context = self.flash.record.job
        assert context is not None
        self.step = OtaStep.SELFTEST
        self._report(IN_PROGRESS, {})
        self._checkpoint(OtaStep.SELFTEST, 0.5)
        self._later(min(SELFTEST_S, context.selftest_window_s / 3), self._selftest_done)

    def _selftest_done(self) -> None:
        assert self.job_id is not None
        self._checkpoint(OtaStep.SELFTEST, 1.0)
        if self._draws[self.job_id].selftest_fails:
            if self.faults.selftest_mode == "hang":
                return  # never confirms: the watchdog rolls back at the window's end
            self.flash.revert()
            self.host.restart()
            return
        self.step = OtaStep.COMMITTED
        self._checkpoint("committing", 0.5)
        self.flash.confirm()
        self._checkpoint("committing", 1.0)
        self._report_terminal(SUCCEEDED, {})

    def _watchdog(self) -> None:
        """The self-test window ran out without a confirmation: reset; the
        bootloader, out of trial boots, returns to the confirmed slot."""
        if self.flash.in_trial:
            log.info("device %s: self-test window over, rolling back", self.device_index)
            self.host.restart()

    # ------------------------------------------------------------------ reports
    def _details(self, extra: dict[str, str]) -> dict[str, str]:
        record = self.flash.record
        context = record.job
        details = {DETAIL_STEP: str(self.step)}
        if context is not None:
            details[DETAIL_FROM] = context.from_version
            details[DETAIL_TO] = context.to_version
            details[DETAIL_SLOT] = (self.flash.booted or record.active
                                    if self.step in (OtaStep.SELFTEST, OtaStep.COMMITTED,
                                                     OtaStep.ROLLED_BACK)
                                    else record.inactive)
        elif self.doc is not None:
            details[DETAIL_FROM] = self.running_version
            details[DETAIL_TO] = str(self.doc.version)
        details.update(extra)
        return details

    def _report(self, status: str, extra: dict[str, str]) -> None:
        assert self.job_id is not None
        self.host.report(self.job_id, status, self._details(extra))

    def _report_terminal(self, status: str, extra: dict[str, str]) -> None:
        self._terminal_sent = True
        self._report(status, extra)

    def _finish(self, verdict: Verdict) -> None:
        status = REJECTED if verdict.reason.is_rejection else FAILED
        log.log(logging.WARNING if verdict.reason.is_rejection else logging.INFO,
                "device %s refuses job %s: %s: %s", self.device_index, self.job_id,
                verdict.reason, verdict.message)
        if not self.step:
            self.step = OtaStep.VERIFYING if verdict.reason.is_rejection else OtaStep.DOWNLOADING
        self._report_terminal(status, {DETAIL_REASON: str(verdict.reason),
                                       DETAIL_MESSAGE: verdict.message[:MESSAGE_CHARS]})
