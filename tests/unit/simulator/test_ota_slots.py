"""A/B slots: the update path, rollback, refused operations, and the invariant
that power lost after any write of any sequence leaves a bootable image."""

from __future__ import annotations

import hashlib
import random

import pytest

from simulator.ota.slots import (
    COMMITTED,
    MAX_TRIAL_BOOTS,
    ROLLED_BACK,
    Flash,
    FlashError,
    JobContext,
    PowerLoss,
    bootable_after_power_loss,
    factory_record,
)

DATA = bytes(range(256)) * 40
SHA = hashlib.sha256(DATA).hexdigest()


def downloaded(flash: Flash, version: str = "1.1.0") -> Flash:
    flash.begin(JobContext("job", flash.running_version, version), SHA, len(DATA))
    for offset in range(0, len(DATA), 1000):
        flash.write_chunk(offset, DATA[offset:offset + 1000])
    return flash


def booted(version: str = "1.0.0") -> Flash:
    flash = Flash(factory_record(version))
    assert flash.boot() == "A"
    return flash


def test_update_commit_and_reboot_into_the_new_slot():
    flash = downloaded(booted())
    assert flash.image() == DATA
    flash.mark_verified()
    flash.set_pending()
    flash.power_off()
    assert flash.boot() == "B" and flash.in_trial
    assert flash.record.boot_attempts == 1
    flash.confirm()
    assert flash.record.active == "B" and flash.record.trial is None
    assert flash.record.job is not None and flash.record.job.outcome == COMMITTED
    flash.finish_job()
    flash.power_off()
    assert flash.boot() == "B" and flash.running_version == "1.1.0"


def test_unconfirmed_trial_rolls_back_on_the_next_boot():
    flash = downloaded(booted())
    flash.mark_verified()
    flash.set_pending()
    flash.power_off()
    for _ in range(MAX_TRIAL_BOOTS):
        assert flash.boot() == "B"
        flash.power_off()
    assert flash.boot() == "A" and flash.running_version == "1.0.0"
    assert flash.record.trial is None
    assert flash.record.job is not None and flash.record.job.outcome == ROLLED_BACK


def test_revert_during_the_trial_boots_the_old_slot():
    flash = downloaded(booted())
    flash.mark_verified()
    flash.set_pending()
    flash.power_off()
    flash.boot()
    flash.revert()
    flash.power_off()
    assert flash.boot() == "A"
    assert flash.record.job is not None and flash.record.job.outcome == ROLLED_BACK


def test_refused_operations_write_nothing():
    flash = booted()
    with pytest.raises(FlashError):
        flash.write_chunk(0, b"x")  # no download begun
    downloaded(flash)
    with pytest.raises(FlashError):
        flash.write_chunk(5, b"x")  # not where the image ends
    with pytest.raises(FlashError):
        flash.confirm()             # not running a trial
    flash.begin(JobContext("job", "1.0.0", "1.1.0"), SHA, len(DATA))
    with pytest.raises(FlashError):
        flash.set_pending()         # image not verified
    with pytest.raises(FlashError):
        flash.mark_verified()       # image incomplete
    downloaded(flash)
    flash.mark_verified()
    flash.set_pending()
    writes = flash.writes
    with pytest.raises(FlashError):
        flash.begin(JobContext("job2", "1.0.0", "1.2.0"), SHA, len(DATA))  # trial pending
    assert flash.writes == writes


def test_bytes_past_the_recorded_length_do_not_count():
    flash = booted()
    flash.begin(JobContext("job", "1.0.0", "1.1.0"), SHA, len(DATA))
    flash.write_chunk(0, DATA[:1000])

    def cut(op: str) -> None:
        raise PowerLoss(op)

    flash.before_write = cut
    with pytest.raises(PowerLoss):
        flash.write_chunk(1000, DATA[1000:2000])
    flash.before_write = None
    assert flash.record.slot("B").written == 1000 and flash.image() == DATA[:1000]
    flash.write_chunk(1000, DATA[1000:2000])  # the resumed download overwrites them
    assert flash.image() == DATA[:2000]


OPS = ("begin", "chunk", "verified", "pending", "boot", "confirm", "revert", "finish", "power")


def _random_walk(seed: int, steps: int = 60) -> tuple[int, int]:
    """Random operations (legal or not), power cut before a random write;
    returns (writes, power cuts). Asserts the invariant after every step."""
    rng = random.Random(seed)
    cut_at = rng.randint(1, 40)
    counter = {"writes": 0, "cuts": 0}

    def before_write(op: str) -> None:
        counter["writes"] += 1
        if counter["writes"] % cut_at == 0:
            counter["cuts"] += 1
            raise PowerLoss(op)

    flash = Flash(factory_record("1.0.0"), before_write)

    def power_on() -> None:
        while True:  # the bootloader's own write can lose power too
            try:
                flash.boot()  # raises Bricked if the invariant were wrong
                return
            except PowerLoss:
                assert bootable_after_power_loss(flash.record), (seed, flash.record)

    power_on()
    version = 1
    for _ in range(steps):
        op = rng.choice(OPS)
        try:
            if op == "begin":
                version += 1
                flash.begin(JobContext(f"job{version}", flash.running_version, f"1.{version}.0"),
                            SHA, len(DATA))
            elif op == "chunk":
                written = flash.record.slot(flash.record.inactive).written
                size = rng.choice([500, 3000, len(DATA)])
                flash.write_chunk(written, DATA[written:written + size])
            elif op == "verified":
                flash.mark_verified()
            elif op == "pending":
                flash.set_pending()
            elif op == "boot":
                flash.power_off()
                power_on()
            elif op == "confirm":
                flash.confirm()
            elif op == "revert":
                flash.revert()
            elif op == "finish":
                flash.finish_job()
            else:
                flash.power_off()
        except FlashError:
            pass
        except PowerLoss:
            flash.power_off()
        assert bootable_after_power_loss(flash.record), (seed, flash.record)
        if flash.booted is None:
            power_on()
    return counter["writes"], counter["cuts"]


def test_power_cut_after_any_write_of_random_sequences_leaves_a_bootable_image():
    writes = cuts = 0
    for seed in range(2000):
        w, c = _random_walk(seed)
        writes, cuts = writes + w, cuts + c
    assert writes > 20_000 and cuts > 1_000  # the walk really exercised the flash
