from hypothesis import given
from hypothesis import strategies as st

from core.ingest.sequence import SequenceTracker, Verdict

T0 = 1_800_000_000_000  # epoch ms of the first boot


def run(seqs, uptimes=None):
    tracker = SequenceTracker()
    uptimes = uptimes or [None] * len(seqs)
    return [tracker.track("d", s, u) for s, u in zip(seqs, uptimes, strict=True)]


class Device:
    """A device sending one reading a second, with uptime (or without), that reboots."""

    def __init__(self, tracker, *, uptime=True, boot_at=T0):
        self.tracker, self.with_uptime, self.boot_at = tracker, uptime, boot_at
        self.seq, self.up = 0, 0
        self.sent = {}  # seq -> (uptime, ts) of the current boot

    def send(self, seq=None):
        seq = self.seq if seq is None else seq
        self.seq, self.up = seq + 1, self.up + 1
        uptime = self.up
        ts = self.boot_at + uptime * 1000 + 137
        self.sent[seq] = (uptime, ts)
        return self.tracker.track("d", seq, uptime if self.with_uptime else None, ts)

    def resend(self, seq, sent=None):
        uptime, ts = (sent or self.sent)[seq]
        return self.tracker.track("d", seq, uptime if self.with_uptime else None, ts)

    def reboot(self, down_s=3, clock_s=0):
        """``clock_s``: how far the device's clock is off after the boot (no
        battery-backed clock before NTP: negative, behind)."""
        old = dict(self.sent)
        self.boot_at += self.up * 1000 + down_s * 1000 + clock_s * 1000
        self.seq, self.up, self.sent = 0, 0, {}
        return old

    def connect(self):
        self.tracker.connected("d", self.boot_at + self.up * 1000 + 500)


def test_in_order_stream():
    assert [o.verdict for o in run([5, 6, 7])] == [Verdict.FIRST, Verdict.NEXT, Verdict.NEXT]


def test_gap_counts_loss():
    outcomes = run([1, 2, 6])
    assert outcomes[-1].verdict is Verdict.GAP and outcomes[-1].lost_delta == 3


def test_duplicate_is_rejected():
    outcomes = run([1, 2, 2, 1])
    assert [o.verdict for o in outcomes[2:]] == [Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert not Verdict.DUPLICATE.accepted


def test_reordered_message_fills_the_gap_and_is_stored():
    outcomes = run([1, 3, 2, 2])
    assert outcomes[1].lost_delta == 1
    assert outcomes[2].verdict is Verdict.REORDERED and outcomes[2].lost_delta == -1
    assert Verdict.REORDERED.accepted
    assert outcomes[3].verdict is Verdict.DUPLICATE and outcomes[3].lost_delta == 0


def test_a_reordered_burst_is_stored_once_each():
    """The broker redelivers a slow hub's QoS 1 backlog in any order."""
    outcomes = run([0, 1, 9, 5, 2, 8, 3, 4, 6, 7, 5, 9, 10])
    verdicts = [o.verdict for o in outcomes]
    assert verdicts[3:10] == [Verdict.REORDERED] * 7
    assert verdicts[10:12] == [Verdict.DUPLICATE] * 2 and verdicts[12] is Verdict.NEXT
    assert sum(o.lost_delta for o in outcomes) == 0


def test_seqs_before_the_first_one_seen_are_new_data_and_stored_once():
    outcomes = run([7, 8, 5, 6, 5, 7])
    assert [o.verdict for o in outcomes[2:]] == [
        Verdict.REORDERED, Verdict.REORDERED, Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert all(o.lost_delta == 0 for o in outcomes)


def test_a_message_older_than_the_tracked_window_is_out_of_order_with_the_reason():
    tracker = SequenceTracker()
    tracker.track("d", 0)
    tracker.track("d", 3000)  # a gap too wide to track seq by seq
    tracker.track("d", 3001)
    old = tracker.track("d", 10)
    assert old.verdict is Verdict.OUT_OF_ORDER
    assert old.detail == "seq 10 is older than the last 1024 tracked"
    # within the window but before the wide gap's end: not tracked either
    assert tracker.track("d", 2990).verdict is Verdict.OUT_OF_ORDER
    tracker = SequenceTracker()
    for seq in range(0, 4000, 2):  # every odd seq lost: more than the window holds
        tracker.track("d", seq)
    assert tracker.track("d", 3997).verdict is Verdict.REORDERED
    assert tracker.track("d", 3).verdict is Verdict.OUT_OF_ORDER


def test_reboot_at_seq_0_with_uptime_even_while_the_old_seqs_are_in_the_window():
    device = Device(SequenceTracker())
    for _ in range(41):
        device.send()
    device.reboot()
    first = device.send()
    assert first.verdict is Verdict.REBOOT and first.lost_delta == 0
    assert [device.send().verdict for _ in range(40)] == [Verdict.NEXT] * 40


def test_reboot_at_seq_1_counts_seq_0_lost():
    device = Device(SequenceTracker())
    for _ in range(300):
        device.send()
    device.reboot()
    device.seq, device.up = 1, 1  # seq 0 never arrived
    outcome = device.send()
    assert outcome.verdict is Verdict.REBOOT and outcome.lost_delta == 1
    assert device.send().verdict is Verdict.NEXT


def test_late_message_of_the_same_boot_has_a_smaller_uptime_but_is_no_reboot():
    device = Device(SequenceTracker())
    for _ in range(200):
        device.send()
    late = device.resend(50)
    assert late.verdict is Verdict.DUPLICATE
    assert device.send().verdict is Verdict.NEXT
    # and one never seen before (beyond the window): late, not a reboot
    tracker = SequenceTracker()
    device = Device(tracker)
    for seq in range(200):
        if seq != 20:
            device.send(seq)
    device.sent[20] = (21, T0 + 21 * 1000 + 137)
    late = device.resend(20)
    assert late.verdict is Verdict.REORDERED and late.lost_delta == -1  # stored, loss given back
    assert device.resend(20).verdict is Verdict.DUPLICATE
    assert device.send().verdict is Verdict.NEXT


def test_one_late_message_after_a_reboot_is_not_taken_for_another_reboot():
    device = Device(SequenceTracker())
    for seq in range(41):
        if seq != 35:
            device.send(seq)
    device.sent[35] = (36, T0 + 36 * 1000 + 137)
    old = device.reboot()
    assert device.send().verdict is Verdict.REBOOT
    assert device.send().verdict is Verdict.NEXT
    late = device.resend(35, old)  # the old boot's gap fills late: stored
    assert late.verdict is Verdict.REORDERED and late.lost_delta == -1
    assert device.resend(35, old).verdict is Verdict.DUPLICATE
    assert device.resend(40, old).verdict is Verdict.DUPLICATE  # the old boot's last, again
    old[41] = (42, old[40][1] + 1000)
    tail = device.resend(41, old)  # its tail, late: never seen, stored
    assert tail.verdict is Verdict.REORDERED and tail.lost_delta == 0
    assert device.resend(41, old).verdict is Verdict.DUPLICATE
    assert [device.send().verdict for _ in range(3)] == [Verdict.NEXT] * 3


def test_duplicates_after_a_reboot_are_duplicates_not_reboots():
    device = Device(SequenceTracker())
    for _ in range(100):
        device.send()
    device.reboot()
    assert [device.send().verdict for _ in range(3)] == [
        Verdict.REBOOT, Verdict.NEXT, Verdict.NEXT]
    assert device.resend(0).verdict is Verdict.DUPLICATE
    assert device.resend(1).verdict is Verdict.DUPLICATE
    assert device.send().verdict is Verdict.NEXT


def test_status_connect_tells_a_reboot_without_uptime():
    device = Device(SequenceTracker(), uptime=False)
    for _ in range(41):
        device.send()
    device.reboot()
    device.connect()
    assert device.send().verdict is Verdict.REBOOT
    assert device.send().verdict is Verdict.NEXT


def test_redelivery_after_a_reconnect_is_a_duplicate_not_a_reboot():
    device = Device(SequenceTracker(), uptime=False)
    for _ in range(41):
        device.send()
    device.connect()  # link dropped and came back; no reboot
    assert device.resend(40).verdict is Verdict.DUPLICATE  # QoS 1 redelivery, original ts
    assert device.send().verdict is Verdict.NEXT


HOUR = 3600


def _up_for(device, seconds):
    for _ in range(seconds):
        device.send()


def test_reboot_with_the_clock_behind_is_a_reboot_not_an_earlier_boot():
    # up ~1,100 s, back with its clock an hour behind: the new boot dates earlier
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot(clock_s=-HOUR)
    first = device.send()
    assert first.verdict is Verdict.REBOOT and first.lost_delta == 0
    assert "clock is behind" in first.detail
    assert [device.send().verdict for _ in range(5)] == [Verdict.NEXT] * 5


def test_reboot_with_the_clock_behind_at_seq_1_counts_seq_0_lost():
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot(clock_s=-HOUR)
    device.seq, device.up = 1, 1  # seq 0 never arrived
    first = device.send()
    assert first.verdict is Verdict.REBOOT and first.lost_delta == 1
    assert device.send().verdict is Verdict.NEXT


def test_reboot_with_the_clock_behind_after_a_reconnect_status_needs_no_low_seq():
    # the hub missed the new boot's first readings; the online status tells the reconnect
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot(clock_s=-HOUR)
    device.connect()  # dated by the clock that is behind: before the old boot's readings
    device.seq, device.up = 8, 8
    first = device.send()
    assert first.verdict is Verdict.REBOOT and first.lost_delta == 8
    assert "reconnected" in first.detail
    assert [device.send().verdict for _ in range(3)] == [Verdict.NEXT] * 3


def test_the_retained_status_again_is_no_reconnect():
    # booted with the clock behind, NTP then steps it an hour forward: readings from
    # before the step date the boot an hour earlier, so only "no reconnect" keeps a
    # late one of them from passing for a reboot
    device = Device(SequenceTracker(), boot_at=T0 - HOUR * 1000)
    device.send()
    device.connect()
    _up_for(device, 99)
    device.boot_at += HOUR * 1000  # NTP sync
    _up_for(device, 100)
    device.tracker.connected("d", T0 - HOUR * 1000 + 1500)  # the retained status, again
    assert device.resend(50).verdict is Verdict.DUPLICATE
    assert device.resend(2).verdict is Verdict.DUPLICATE
    assert device.send().verdict is Verdict.NEXT


def test_reboot_with_the_clock_ahead_is_a_reboot():
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot(clock_s=HOUR)
    assert device.send().verdict is Verdict.REBOOT
    assert [device.send().verdict for _ in range(3)] == [Verdict.NEXT] * 3


def test_late_messages_of_the_previous_boot_after_a_reboot_with_the_clock_behind():
    device = Device(SequenceTracker())
    for seq in range(1100):
        if seq not in (2, 700):  # lost on the way, for now
            device.send(seq)
    device.sent[2] = (2, T0 + 2 * 1000 + 637)
    device.sent[700] = (699, T0 + 699 * 1000 + 637)
    old = device.reboot(clock_s=-HOUR)
    assert device.send().verdict is Verdict.REBOOT
    _up_for(device, 20)
    device.connect()  # a network blip of the new boot
    # the old boot's seq 2 (low, smaller uptime, later boot time) fills its gap late
    late = device.resend(2, old)
    assert late.verdict is Verdict.REORDERED and late.lost_delta == -1
    assert device.resend(2, old).verdict is Verdict.DUPLICATE
    too_old = device.resend(1, old)  # seen, but beyond what the previous boot tracks
    assert too_old.verdict is Verdict.OUT_OF_ORDER and "previous boot" in too_old.detail
    late = device.resend(700, old)
    assert late.verdict is Verdict.REORDERED and late.lost_delta == -1
    assert device.resend(1099, old).verdict is Verdict.DUPLICATE
    # none of it disturbed the new boot
    assert device.resend(3).verdict is Verdict.DUPLICATE
    assert [device.send().verdict for _ in range(3)] == [Verdict.NEXT] * 3


def test_a_late_low_message_of_the_previous_boot_is_no_reboot_when_both_clocks_agree():
    # previous boot A, current boot B (clock right), the hub is met with A's seq 1
    device = Device(SequenceTracker())
    _up_for(device, 200)
    old = device.reboot()
    assert device.send().verdict is Verdict.REBOOT
    _up_for(device, 30)
    device.connect()
    assert device.resend(1, old).verdict is Verdict.DUPLICATE
    assert device.send().verdict is Verdict.NEXT


def test_duplicates_of_a_new_boot_with_the_clock_behind_are_duplicates():
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot(clock_s=-HOUR)
    device.connect()
    assert [device.send().verdict for _ in range(3)] == [
        Verdict.REBOOT, Verdict.NEXT, Verdict.NEXT]
    assert [device.resend(s).verdict for s in (0, 1, 2, 0)] == [Verdict.DUPLICATE] * 4
    assert device.send().verdict is Verdict.NEXT


def test_a_second_reboot_with_the_clock_behind_after_a_short_boot():
    # A (long) -> B (short, clock right) -> C (clock behind): C must not pass for A's
    device = Device(SequenceTracker())
    _up_for(device, 1100)
    device.reboot()
    assert device.send().verdict is Verdict.REBOOT
    _up_for(device, 10)
    device.reboot(clock_s=-HOUR)
    assert device.send().verdict is Verdict.REBOOT
    assert [device.send().verdict for _ in range(3)] == [Verdict.NEXT] * 3


def test_without_uptime_or_status_a_low_restart_needs_a_second_message():
    # (seqs below the first one the hub saw were never stored: kept as late data)
    lone = run([50, 51, 0, 52])
    assert lone[2].verdict is Verdict.REORDERED and lone[3].verdict is Verdict.NEXT
    confirmed = run([50, 51, 0, 1, 2])
    assert confirmed[2].verdict is Verdict.REORDERED
    assert confirmed[3].verdict is Verdict.REBOOT and confirmed[3].lost_delta == 0
    assert confirmed[4].verdict is Verdict.NEXT
    assert [o.verdict for o in run([50, 51, 7, 8])[2:]] == [Verdict.REORDERED] * 2  # no reboot
    restored = SequenceTracker()
    restored.seed("d", 51)
    assert restored.track("d", 0).verdict is Verdict.DUPLICATE  # seen by the last hub run
    assert restored.track("d", 1).verdict is Verdict.REBOOT


def test_state_survives_a_hub_restart():
    first = SequenceTracker()
    device = Device(first)
    for _ in range(41):
        device.send()
    second = SequenceTracker()
    second.restore("d", first.state("d"))
    device.tracker = second
    assert device.send().verdict is Verdict.NEXT
    # at or before where the previous hub run stopped: a redelivery of what it stored
    assert device.resend(39).verdict is Verdict.DUPLICATE
    device.reboot()
    assert device.send().verdict is Verdict.REBOOT  # no out_of_order after the restart
    # the device rebooted while a third hub was down and its seq passed the old one
    third = SequenceTracker()
    third.restore("d", second.state("d"))
    device.tracker = third
    device.reboot()
    device.connect()
    device.up = 3000
    outcome = device.send(500)
    assert outcome.verdict is Verdict.REBOOT


def test_seeded_tracker_continues_across_hub_restarts():
    tracker = SequenceTracker()
    tracker.seed("d", 41)
    assert tracker.track("d", 42).verdict is Verdict.NEXT
    assert tracker.track("d", 41).verdict is Verdict.DUPLICATE


@given(st.lists(st.integers(1, 200), min_size=1, max_size=300))
def test_without_reboots_every_seq_is_stored_once_and_loss_is_consistent(seqs):
    tracker = SequenceTracker()
    lost = 0
    accepted: list[int] = []
    for index, s in enumerate(seqs):
        # one boot: uptime only grows, the boot time stays put
        outcome = tracker.track("d", s, uptime=index, ts_ms=T0 + index * 1000)
        lost += outcome.lost_delta
        assert lost >= 0
        assert outcome.verdict is not Verdict.REBOOT
        if outcome.verdict.accepted:
            accepted.append(s)
    # every seq is stored at most once, and each one sent is stored (nothing here is
    # older than the tracked window); what never arrived is counted lost
    assert sorted(accepted) == sorted(set(seqs))
    # (counted from the first seq the hub saw: the ones before it were never owed)
    assert lost == max(seqs) - seqs[0] + 1 - len({s for s in seqs if s >= seqs[0]})


@given(st.lists(st.tuples(st.integers(0, 60), st.booleans()), min_size=1, max_size=200))
def test_late_and_repeated_messages_of_one_boot_are_never_a_reboot(picks):
    """Any replay of messages a device really sent in one boot (late, repeated, in
    any order) is never taken for a reboot, with uptime or without."""
    for with_uptime in (True, False):
        tracker = SequenceTracker()
        for seq, _ in picks:
            uptime = seq + 5
            outcome = tracker.track("d", seq, uptime if with_uptime else None,
                                    T0 + uptime * 1000)
            if with_uptime:
                assert outcome.verdict is not Verdict.REBOOT


def test_a_gap_the_hub_shed_itself_is_lost_but_not_kept_as_possibly_late():
    """Under sustained shedding every device's window of possibly-late seqs
    filled (8 KB each); seqs the hub received and dropped itself are not awaited."""
    tracker = SequenceTracker()
    for seq in range(5):
        tracker.track("d", seq)
    outcome = tracker.track("d", 10, shed=(5, 6, 7, 8, 9))
    assert (outcome.verdict, outcome.lost_delta) == (Verdict.GAP, 5)
    assert len(tracker._devices["d"].boot.missing) == 0
    # a gap only partly shed: the rest is awaited, and a late one is stored
    outcome = tracker.track("d", 20, shed=(11, 12, 14))
    assert (outcome.verdict, outcome.lost_delta) == (Verdict.GAP, 9)
    assert list(tracker._devices["d"].boot.missing) == [13, 15, 16, 17, 18, 19]
    assert tracker.track("d", 15).verdict is Verdict.REORDERED
    assert tracker.track("d", 12).verdict is Verdict.DUPLICATE  # received once, shed


def test_shed_seqs_outside_the_gap_leave_the_gap_awaited():
    """What the hub shed need not be the gap: a late message, or a repeat."""
    tracker = SequenceTracker()
    tracker.track("d", 10)
    tracker.track("d", 12)
    # 11 arrived late and was shed; 13 was lost on the way
    assert tracker.track("d", 14, shed=(11,)).verdict is Verdict.GAP
    assert tracker.track("d", 13).verdict is Verdict.REORDERED
    # 16 and a copy of it shed; 17 lost on the way
    assert tracker.track("d", 18, shed=(16, 16)).verdict is Verdict.GAP
    assert tracker.track("d", 17).verdict is Verdict.REORDERED
    assert tracker.track("d", 15).verdict is Verdict.REORDERED
