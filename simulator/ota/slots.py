"""A/B boot slots modelled like real flash (MCUboot / Mender style).

The persistent state of a device is one :class:`FlashRecord`: which slot is
the confirmed (active) one, what each slot holds, a pending *trial boot*
marker with its boot attempt counter, and the context of the update in
progress. Every persistent step replaces the whole record in one atomic write
(real devices use a scratch sector or two copies with a sequence number for
this), so power can fail between any two steps but never inside one. The
image bytes of the slot being written live next to the record, like sectors:
bytes beyond ``written`` are garbage that a resumed download overwrites.

Invariants, checked by the unit tests over every write of many seeded runs:

* the active slot always holds a complete, verified image and is only ever
  replaced by the commit write, which requires a verified image in the slot
  being committed;
* downloads write only the inactive slot, and never while a trial is pending;
* a trial marker is only set on a verified image; the bootloader boots the
  trial slot at most ``MAX_TRIAL_BOOTS`` times and then clears the marker,
  booting the old slot again (rollback).

So whatever write the power cuts after, the next boot finds a bootable image:
the old one, or the new one if it was committed or is in its trial boot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

SLOT_NAMES = ("A", "B")
# Mender's bootlimit / MCUboot's test swap: one trial boot, then roll back
# unless the running image confirmed itself.
MAX_TRIAL_BOOTS = 1


class PowerLoss(Exception):
    """Raised where the simulated power fails; everything in RAM is gone."""


class Bricked(Exception):
    """The bootloader found no bootable image (a broken invariant)."""


class FlashError(Exception):
    """An operation that the flash layout does not allow in this state."""


@dataclass(frozen=True, slots=True)
class SlotImage:
    version: str = ""
    sha256: str = ""
    size: int = 0
    written: int = 0
    verified: bool = False  # fully written and checked (size, SHA-256, signature)

    @property
    def bootable(self) -> bool:
        return self.verified and self.size > 0 and self.written == self.size


@dataclass(frozen=True, slots=True)
class JobContext:
    """The update in progress, kept across reboots like an OTA agent's NV record.
    ``outcome`` is set in the same write as the commit or the rollback, so the
    device reports the right final state even if power fails right after."""

    job_id: str
    from_version: str
    to_version: str
    selftest_window_s: float = 30.0
    outcome: str = ""  # "", "committed", "rolled_back"


COMMITTED = "committed"
ROLLED_BACK = "rolled_back"


@dataclass(frozen=True, slots=True)
class FlashRecord:
    active: str
    a: SlotImage
    b: SlotImage
    trial: str | None = None
    boot_attempts: int = 0
    job: JobContext | None = None

    def slot(self, name: str) -> SlotImage:
        return self.a if name == "A" else self.b

    def with_slot(self, name: str, image: SlotImage) -> FlashRecord:
        return replace(self, a=image) if name == "A" else replace(self, b=image)

    @property
    def inactive(self) -> str:
        return "B" if self.active == "A" else "A"

    def boot_choice(self) -> tuple[str, FlashRecord]:
        """What the bootloader does with this record: the slot it boots and the
        record it writes first (the same record if it writes nothing)."""
        if self.trial is not None:
            if self.slot(self.trial).bootable and self.boot_attempts < MAX_TRIAL_BOOTS:
                return self.trial, replace(self, boot_attempts=self.boot_attempts + 1)
            job = self.job
            if job is not None and not job.outcome:
                job = replace(job, outcome=ROLLED_BACK)
            return self.active, replace(self, trial=None, boot_attempts=0, job=job)
        return self.active, self


def factory_record(version: str) -> FlashRecord:
    """A device as it leaves the factory: ``version`` in slot A, slot B empty."""
    image = SlotImage(version=version, sha256="factory", size=1, written=1, verified=True)
    return FlashRecord(active="A", a=image, b=SlotImage())


class Flash:
    """One device's flash. ``before_write(op)`` runs before every atomic write
    and may raise :class:`PowerLoss`: that write then never happened."""

    def __init__(self, record: FlashRecord,
                 before_write: Callable[[str], None] | None = None) -> None:
        self.record = record
        self.before_write = before_write
        self.writes = 0
        self.booted: str | None = None  # RAM: the slot running now
        self._sectors: dict[str, bytearray] = {"A": bytearray(), "B": bytearray()}

    # ------------------------------------------------------------------ primitives
    def _write(self, op: str, record: FlashRecord) -> None:
        if self.before_write is not None:
            self.before_write(op)
        self.record = record
        self.writes += 1

    def power_off(self) -> None:
        self.booted = None

    @property
    def running_version(self) -> str:
        return self.record.slot(self.booted or self.record.active).version

    @property
    def in_trial(self) -> bool:
        return self.booted is not None and self.booted == self.record.trial

    # ------------------------------------------------------------------ bootloader
    def boot(self) -> str:
        """Run the bootloader: returns the slot booted (and remembers it)."""
        slot, record = self.record.boot_choice()
        if record != self.record:
            self._write("boot", record)
        if not self.record.slot(slot).bootable:
            raise Bricked(f"slot {slot} is not bootable: {self.record}")
        self.booted = slot
        return slot

    # ------------------------------------------------------------------ update steps
    def begin(self, job: JobContext, sha256: str, size: int) -> None:
        """Erase the inactive slot for a new image (one write)."""
        r = self.record
        if r.trial is not None:
            raise FlashError("a trial boot is pending; finish it before a new update")
        slot = r.inactive
        self._sectors[slot] = bytearray()
        self._write("begin", replace(r.with_slot(slot, SlotImage(job.to_version, sha256, size)),
                                     job=job))

    def write_chunk(self, offset: int, data: bytes) -> None:
        """Program ``data`` at ``offset`` of the inactive slot, then record the new
        length: power lost between the two leaves bytes that do not count."""
        r = self.record
        slot = r.inactive
        image = r.slot(slot)
        if r.trial is not None or r.job is None:
            raise FlashError("no download in progress")
        if offset != image.written or offset + len(data) > image.size:
            raise FlashError(f"chunk at {offset}+{len(data)} does not follow "
                             f"{image.written} of {image.size}")
        sector = self._sectors[slot]
        del sector[offset:]
        sector += data
        self._write("chunk", r.with_slot(slot, replace(image, written=offset + len(data))))

    def image(self) -> bytes:
        """The bytes written so far to the inactive slot."""
        slot = self.record.inactive
        return bytes(self._sectors[slot][: self.record.slot(slot).written])

    def mark_verified(self) -> None:
        r = self.record
        slot = r.inactive
        image = r.slot(slot)
        if image.written != image.size:
            raise FlashError("cannot mark an incomplete image verified")
        self._write("verified", r.with_slot(slot, replace(image, verified=True)))
        # The image is now identified by its verified hash; the simulation
        # frees the bytes (a real device keeps them in the slot).
        self._sectors[slot] = bytearray()

    def set_pending(self) -> None:
        """Ask the bootloader to try the inactive slot on the next boot."""
        r = self.record
        if not r.slot(r.inactive).bootable:
            raise FlashError("only a verified image can be tried")
        self._write("pending", replace(r, trial=r.inactive, boot_attempts=0))

    def confirm(self) -> None:
        """The running trial image passed its self-test: make it the active slot."""
        r = self.record
        if not self.in_trial or r.trial is None:
            raise FlashError("only a running trial image can be confirmed")
        job = replace(r.job, outcome=COMMITTED) if r.job is not None else None
        self._write("commit", replace(r, active=r.trial, trial=None, boot_attempts=0, job=job))

    def revert(self) -> None:
        """Drop the trial marker (self-test failed, install failed or job canceled);
        the next boot runs the active slot."""
        r = self.record
        job = r.job
        if job is not None and r.trial is not None and not job.outcome:
            job = replace(job, outcome=ROLLED_BACK)
        self._write("revert", replace(r, trial=None, boot_attempts=0, job=job))

    def finish_job(self) -> None:
        """The final state was reported: forget the job."""
        if self.record.job is not None:
            self._write("finish", replace(self.record, job=None))


def bootable_after_power_loss(record: FlashRecord) -> bool:
    """Would a device whose flash holds ``record`` boot? (the invariant)"""
    slot, after = record.boot_choice()
    return after.slot(slot).bootable
