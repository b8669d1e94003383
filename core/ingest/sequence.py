"""Per-device ``seq`` accounting: the only way to tell loss from silence.

Each telemetry message carries a per-device counter that restarts at 0 when
the device boots. Within one boot a jump forward is loss, a repeat is a
duplicate and a step back is a late (reordered) message. The hard part is
telling a *new boot* from a late or duplicated message, because both show a
``seq`` that went back. A wrong answer either way is expensive: taking a
reboot for duplicates quarantined a device's data until the new counter
passed the old one (a week for a device that was up a week), and taking one
late message for a reboot would make every following message look like a
duplicate. So a new boot is decided on the strongest signal there is, in
this order:

1. ``uptime`` (seconds since boot, optional in the protocol): with the
   reading time ``ts`` it dates the boot, ``boot = ts - uptime``. Within a
   boot that estimate stays put (to the second ``uptime`` is floored to);
   after a reboot it jumps forward. A late message of the same boot has a
   smaller ``uptime`` too, but the *same* boot time, so it can never pass
   for a reboot.
2. The retained status: on every connect a device publishes ``online``
   with the time of the connect (after a Last Will or a restart). A reading
   taken after that connect whose ``seq`` went back, when the newest
   reading of the boot predates the connect, comes from a restarted
   counter; a QoS 1 redelivery or a store-and-forward backlog keeps its
   original (earlier) ``ts`` and cannot.
   A device without a battery-backed clock may come back with its clock
   *behind* (before NTP): its new boot then dates *earlier* than the old
   one, which alone looks like a late message of an earlier boot. So an
   ``uptime`` that went back, with ``seq`` restarted low or a reconnect
   announced since the last boot began, is a new boot, unless the message
   fits the previous boot's history (its boot time, or an uptime and seq
   that boot already reached): quarantining those readings until ``seq``
   passed the old value was the very defect this module exists to prevent.
3. ``seq`` restarting low, with nothing else to go on: one low message is
   only a candidate; a second one continuing it confirms the reboot (the
   first is counted as the duplicate or late message it looked like).

A ``seq`` that went back within a boot is judged on what the hub knows of
that boot: a seq it counted missing (or one below the first seq it saw of a
boot it tracked from its start, within the window) has never been stored, so
it is new data that arrived late. The broker reorders QoS 1 deliveries to a
slow subscriber, and quarantining those readings lost real data; they are
accepted as ``reordered`` (stored, the loss given back). A seq already seen
is a ``duplicate``; one older than the tracked window cannot be told either
way and is ``out_of_order``. Messages from the boot before the current one
(late, or duplicated) are checked against that boot's own state the same
way, so they neither count as loss twice nor disturb the new boot.
Seqs the hub shed itself (its inbox full, QoS 0) are lost but not kept as
possibly late: the hub reads each shed message's seq and hands them over with
that device's next kept message (``Inbound.shed``), and those are left out of
the gap's missing seqs; the rest of a gap is kept as any other. A copy of a
shed message that comes later is then a duplicate: the hub received it once.
Everything boot detection needs survives a hub restart through
:meth:`SequenceTracker.state` and :meth:`SequenceTracker.restore`; the
missing set does not, so after a restart every seq up to the last one
stored is taken as seen (a redelivery is a duplicate).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from core.ingest.seq_window import MissingSeqs, RecentSeqs

RECENT_WINDOW = 128
MISSING_WINDOW = 1024
# ``uptime`` is floored to whole seconds and the device's clock and uptime
# counter drift apart a little: boot-time estimates within this are one boot.
BOOT_TOLERANCE_MS = 2500
# A restarted counter without uptime or status to prove it: the candidate's
# seq must be at most this, and the confirming message at most this far on.
RESTART_LOW = 3
CONFIRM_GAP = 4


class Verdict(enum.StrEnum):
    FIRST = "first"
    NEXT = "next"
    GAP = "gap"              # accepted; earlier seqs are counted lost
    REBOOT = "reboot"        # accepted; the counter restarted
    REORDERED = "reordered"  # accepted; a seq never stored that arrived after a later one
    DUPLICATE = "duplicate"  # rejected: seen already in its boot
    OUT_OF_ORDER = "out_of_order"  # rejected: too old to tell new from seen

    @property
    def accepted(self) -> bool:
        return self not in (Verdict.DUPLICATE, Verdict.OUT_OF_ORDER)


@dataclass
class _Boot:
    last: int                    # highest seq accepted in this boot
    uptime: int | None           # highest uptime seen in this boot
    last_ts: int | None          # newest reading time (device clock, epoch ms)
    boot_ms: int | None          # estimated start of the boot (ts - uptime)
    first_ts: int | None = None  # oldest reading time of the boot (unknown after a restart)
    recent: RecentSeqs = field(default_factory=lambda: RecentSeqs(RECENT_WINDOW))
    missing: MissingSeqs = field(default_factory=MissingSeqs)
    # The first seq the hub saw of a boot it tracked from its first message (None
    # when restored after a hub restart: everything up to ``last`` was seen then).
    # Seqs below it were never stored; ``early`` holds those that arrived since.
    first: int | None = None
    early: set[int] = field(default_factory=set)
    # seqs below this are not tracked (a gap too wide to record, or trimmed)
    floor: int = 0
    # the first boot-time estimate seen: ``boot_ms`` follows clock corrections,
    # and a late reading from before NTP set the clock forward still dates here
    first_boot_ms: int | None = None

    def note(self, seq: int, uptime: int | None, ts_ms: int | None,
             boot_ms: int | None) -> None:
        self.recent.append(seq)
        if uptime is not None:
            self.uptime = uptime if self.uptime is None else max(self.uptime, uptime)
        if ts_ms is not None:
            self.last_ts = ts_ms if self.last_ts is None else max(self.last_ts, ts_ms)
            self.first_ts = ts_ms if self.first_ts is None else min(self.first_ts, ts_ms)
        if boot_ms is not None and self.first_boot_ms is None:
            self.first_boot_ms = boot_ms
        if boot_ms is not None and (self.boot_ms is None or uptime == self.uptime):
            self.boot_ms = boot_ms  # follow the newest estimate (clock corrections)

    def lose(self, start: int, stop: int) -> None:
        if stop - start <= MISSING_WINDOW:
            self.missing.add_range(start, stop)
            excess = len(self.missing) - MISSING_WINDOW
            if excess > 0:  # the window keeps the newest: the oldest are untracked now
                self.floor = max(self.floor, self.missing.drop_oldest(excess) + 1)
        else:
            self.missing.clear()
            self.floor = stop

    def advance(self, seq: int, shed: tuple[int, ...] = ()) -> int:
        """``seq`` is newer than any seen: the ones skipped are lost (returned).
        Of those, the ``shed`` seqs (the hub dropped them itself) are not kept
        as possibly late: under sustained shedding every device's window filled
        with them, 8 KB each, memory that grew for minutes (docs/benchmarks.md,
        "The overload's seq windows")."""
        gap = seq - self.last - 1
        if gap > 0:
            first = self.last + 1
            if not shed or gap > MISSING_WINDOW:
                self.lose(first, seq)
            else:
                dropped = set(shed)
                start = first  # the runs of the gap the hub did not shed are awaited
                for s in range(first, seq):
                    if s in dropped:
                        if start < s:
                            self.lose(start, s)
                        start = s + 1
                if start < seq:
                    self.lose(start, seq)
        self.last = seq
        return max(gap, 0)

    def judge_back(self, seq: int, where: str) -> Outcome:
        """A ``seq`` at or below the newest of this boot: new data that arrived
        late, a repeat, or too old to tell."""
        if seq in self.recent:
            return Outcome(Verdict.DUPLICATE, 0, f"seq {seq} was already received{where}")
        if seq in self.missing:
            self.missing.discard(seq)
            self.recent.append(seq)
            return Outcome(Verdict.REORDERED, -1, f"seq {seq} fills a gap{where}")
        if seq <= self.last - MISSING_WINDOW or seq < self.floor:
            return Outcome(Verdict.OUT_OF_ORDER, 0,
                           f"seq {seq} is older than the last {MISSING_WINDOW} tracked{where}")
        if self.first is not None and seq < self.first:
            if seq in self.early:
                return Outcome(Verdict.DUPLICATE, 0, f"seq {seq} was already received{where}")
            self.early.add(seq)
            self.recent.append(seq)
            return Outcome(Verdict.REORDERED, 0,
                           f"seq {seq} arrived after seq {self.first}{where}")
        return Outcome(Verdict.DUPLICATE, 0, f"seq {seq} was already received{where}")


@dataclass
class _Device:
    boot: _Boot
    previous: _Boot | None = None
    connected_at: int | None = None  # device clock, from the latest online status
    candidate: int | None = None     # seq of a possible restarted counter
    # An online status arrived and no reading continuing this boot came after
    # it. Kept apart from ``connected_at`` because a clock that came back
    # behind dates the connect before readings of the old boot, so only
    # arrival order tells it is new.
    reconnect_seen: bool = False


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    lost_delta: int = 0  # change to the device's lost count (negative when a gap fills late)
    detail: str = ""     # why, for the quarantine


@dataclass(frozen=True, slots=True)
class BootState:
    """What a restarted hub needs to carry on (stored with the link statistics)."""

    last_seq: int
    last_uptime: int | None
    last_ts_ms: int | None
    boot_at_ms: int | None
    connected_at_ms: int | None


def _boot_ms(ts_ms: int | None, uptime: int | None) -> int | None:
    return None if ts_ms is None or uptime is None else ts_ms - uptime * 1000


def _dated_to(boot: _Boot | None, boot_ms: int | None) -> bool:
    return (boot is not None and boot.boot_ms is not None and boot_ms is not None
            and abs(boot_ms - boot.boot_ms) <= BOOT_TOLERANCE_MS)


def _dated_to_start(boot: _Boot, boot_ms: int | None) -> bool:
    return (boot.first_boot_ms is not None and boot_ms is not None
            and abs(boot_ms - boot.first_boot_ms) <= BOOT_TOLERANCE_MS)


def _fits_previous(previous: _Boot | None, seq: int, uptime: int,
                   boot_ms: int | None) -> bool:
    """Whether a message may be a late one of the previous boot: dated to it, or
    (that boot's start unknown, or the seq one it counted missing) within the
    uptime and seq it reached."""
    if previous is None:
        return False
    if _dated_to(previous, boot_ms):
        return True
    return (previous.uptime is not None and uptime <= previous.uptime + 1
            and seq <= previous.last
            and (previous.boot_ms is None or seq in previous.missing))


class SequenceTracker:
    def __init__(self, persisted: Callable[[str], BootState | None] | None = None) -> None:
        self._devices: dict[str, _Device] = {}
        self._persisted = persisted

    # ------------------------------------------------------------------ persistence
    def seed(self, device_id: str, last_seq: int | None) -> None:
        """Continue from a previous hub run: its whole boot state when ``persisted``
        knows it, else just ``last_seq``."""
        state = self._persisted(device_id) if self._persisted is not None else None
        if state is not None:
            self.restore(device_id, state)
        elif last_seq is not None:
            self.restore(device_id, BootState(last_seq, None, None, None, None))

    def restore(self, device_id: str, state: BootState) -> None:
        """Continue from what a previous hub run persisted (no-op if already tracked)."""
        if device_id in self._devices:
            return
        boot = _Boot(state.last_seq, state.last_uptime, state.last_ts_ms, state.boot_at_ms)
        boot.recent.append(state.last_seq)
        self._devices[device_id] = _Device(boot, connected_at=state.connected_at_ms)

    def state(self, device_id: str) -> BootState | None:
        device = self._devices.get(device_id)
        if device is None:
            return None
        boot = device.boot
        return BootState(boot.last, boot.uptime, boot.last_ts, boot.boot_ms,
                         device.connected_at)

    def boot_fields(self, device_id: str) -> tuple[int, int | None, int | None, int | None,
                                                   int | None] | None:
        """:meth:`state` as a plain tuple (last_seq, last_uptime, last_ts_ms,
        boot_at_ms, connected_at_ms), for the hub's per-message path."""
        device = self._devices.get(device_id)
        if device is None:
            return None
        boot = device.boot
        return boot.last, boot.uptime, boot.last_ts, boot.boot_ms, device.connected_at

    def last_seq(self, device_id: str) -> int | None:
        device = self._devices.get(device_id)
        return None if device is None else device.boot.last

    # ------------------------------------------------------------------ signals
    def connected(self, device_id: str, ts_ms: int | None) -> bool:
        """The device said it (re)connected at ``ts_ms`` (its online status).
        Returns whether anything changed (worth persisting)."""
        device = self._devices.get(device_id)
        if device is None or ts_ms is None:
            return False
        if ts_ms != device.connected_at:
            device.reconnect_seen = True  # not the retained status again
        if device.connected_at is not None and ts_ms <= device.connected_at:
            return False  # the retained status again, or an older one
        device.connected_at = ts_ms
        return True

    def track(self, device_id: str, seq: int, uptime: int | None = None,
              ts_ms: int | None = None, shed: tuple[int, ...] = ()) -> Outcome:
        """``shed``: seqs of this device's messages the hub received and dropped
        itself since its previous one (see ``Inbound.shed``)."""
        device = self._devices.get(device_id)
        boot_ms = _boot_ms(ts_ms, uptime)
        if device is None:
            boot = _Boot(seq, None, None, None, first=seq)
            boot.note(seq, uptime, ts_ms, boot_ms)
            self._devices[device_id] = _Device(boot)
            return Outcome(Verdict.FIRST)
        current = device.boot
        why = self._new_boot(device, current, seq, uptime, ts_ms, boot_ms)
        if why:
            return self._reboot(device, seq, uptime, ts_ms, boot_ms, why)
        if self._from_older_boot(device, current, seq, ts_ms, boot_ms):
            return self._late_from_older_boot(device, seq)
        decided = uptime is not None and current.uptime is not None
        return self._within(device, current, seq, uptime, ts_ms, boot_ms, decided, shed)

    # ------------------------------------------------------------------ decisions
    @staticmethod
    def _new_boot(device: _Device, current: _Boot, seq: int, uptime: int | None,
                  ts_ms: int | None, boot_ms: int | None) -> str:
        connect = device.connected_at
        reconnected = (connect is not None and ts_ms is not None and current.last_ts is not None
                       and current.last_ts < connect <= ts_ms)
        if uptime is not None and current.uptime is not None:
            behind = SequenceTracker._reboot_with_clock_behind(
                device, current, seq, uptime, boot_ms)
            if behind:
                return behind
            # uptime decides; the connect only settles a boot that started later
            # while seq moved on (a hub that was down while the device rebooted)
            if boot_ms is None or current.boot_ms is None or (
                    boot_ms <= current.boot_ms + BOOT_TOLERANCE_MS):
                return ""
            if _dated_to(device.previous, boot_ms):
                return ""  # the previous boot (the clock came back behind after it)
            if uptime + 1 < current.uptime:
                return f"uptime went back from {current.uptime} s to {uptime} s"
            if seq <= current.last:
                return f"seq restarted at {seq} in a boot that started later"
            return "a later boot after the device reconnected" if reconnected else ""
        if reconnected and seq <= current.last:
            return f"seq restarted at {seq} after the device reconnected"
        return ""

    @staticmethod
    def _reboot_with_clock_behind(device: _Device, current: _Boot, seq: int, uptime: int,
                                  boot_ms: int | None) -> str:
        """A new boot that dates earlier than the current one: the device's clock
        came back behind. Told by ``uptime`` going back together with a restarted
        ``seq`` or a reconnect, never when the message fits the previous boot."""
        if (current.uptime is None or uptime + 1 >= current.uptime or boot_ms is None
                or current.boot_ms is None
                or boot_ms >= current.boot_ms - BOOT_TOLERANCE_MS):
            return ""
        if _dated_to_start(current, boot_ms):
            return ""  # this boot's, from before its clock was set forward
        low = seq <= RESTART_LOW and seq not in current.missing
        reconnected = device.reconnect_seen and seq not in current.missing
        if not (low or reconnected):
            return ""
        if _fits_previous(device.previous, seq, uptime, boot_ms):
            return ""
        how = f"seq restarted at {seq}" if low else "the device reconnected"
        return (f"uptime went back from {current.uptime} s to {uptime} s and {how}"
                " (the device's clock is behind)")

    @staticmethod
    def _from_older_boot(device: _Device, current: _Boot, seq: int, ts_ms: int | None,
                         boot_ms: int | None) -> bool:
        previous = device.previous
        if boot_ms is not None and current.boot_ms is not None:
            if abs(boot_ms - current.boot_ms) <= BOOT_TOLERANCE_MS:
                return False
            if _dated_to(previous, boot_ms):
                return True  # earlier, or later when the clock came back behind
            if boot_ms > current.boot_ms:
                return False
            if _dated_to_start(current, boot_ms):
                return False  # this boot's, from before its clock was set forward
            # an earlier boot time with seq moving on is the device's clock stepping back
            return seq <= current.last
        return (previous is not None and ts_ms is not None
                and current.first_ts is not None and ts_ms < current.first_ts
                and seq not in current.missing)

    @staticmethod
    def _late_from_older_boot(device: _Device, seq: int) -> Outcome:
        previous = device.previous
        if previous is None:
            return Outcome(Verdict.OUT_OF_ORDER, 0, "it belongs to an earlier boot")
        where = " in the previous boot"
        if seq > previous.last:
            # the previous boot's tail, never seen: new data
            gap = previous.advance(seq)
            previous.recent.append(seq)
            return Outcome(Verdict.REORDERED, gap,
                           f"seq {seq} is a late message of the previous boot")
        return previous.judge_back(seq, where)

    def _within(self, device: _Device, current: _Boot, seq: int, uptime: int | None,
                ts_ms: int | None, boot_ms: int | None, decided: bool,
                shed: tuple[int, ...] = ()) -> Outcome:
        if seq > current.last:
            if uptime is None or current.uptime is None or uptime >= current.uptime:
                device.reconnect_seen = False  # the boot went on after the connect
            gap = current.advance(seq, shed)
            current.note(seq, uptime, ts_ms, boot_ms)
            device.candidate = None
            return Outcome(Verdict.GAP, gap) if gap else Outcome(Verdict.NEXT)
        # seq went back, and nothing says this is a new boot
        if seq in current.missing:
            # never stored, so storing it is right whatever it is: a reordered
            # delivery, not taken as evidence of a restarted counter
            device.candidate = None
            return current.judge_back(seq, "")
        candidate = device.candidate
        if (not decided and candidate is not None
                and candidate < seq <= candidate + CONFIRM_GAP):
            # a second message continuing a low restart: the counter did restart
            return self._reboot(device, seq, uptime, ts_ms, boot_ms,
                                f"seq restarted ({candidate}, then {seq})", skip=candidate)
        device.candidate = seq if not decided and seq <= RESTART_LOW else None
        return current.judge_back(seq, "")

    def _reboot(self, device: _Device, seq: int, uptime: int | None, ts_ms: int | None,
                boot_ms: int | None, why: str, *, skip: int | None = None) -> Outcome:
        """Start a new boot at ``seq``: the seqs before it in the new boot are lost
        (``skip``: one of them arrived, as the candidate that was not yet believed)."""
        fresh = _Boot(seq, None, None, None, first=0)
        fresh.note(seq, uptime, ts_ms, boot_ms)
        fresh.lose(0, seq)
        lost = seq
        if skip is not None and skip < seq:
            fresh.missing.discard(skip)
            fresh.recent.append(skip)
            lost -= 1
        device.previous = device.boot
        device.boot = fresh
        device.candidate = None
        device.reconnect_seen = False
        return Outcome(Verdict.REBOOT, lost, why)
