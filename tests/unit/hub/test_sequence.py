from hypothesis import given
from hypothesis import strategies as st

from plugins.local.hub.sequence import SequenceTracker, Verdict


def run(seqs, uptimes=None):
    tracker = SequenceTracker()
    uptimes = uptimes or [None] * len(seqs)
    return [tracker.track("d", s, u) for s, u in zip(seqs, uptimes, strict=True)]


def test_in_order_stream():
    assert [o.verdict for o in run([5, 6, 7])] == [Verdict.FIRST, Verdict.NEXT, Verdict.NEXT]


def test_gap_counts_loss():
    outcomes = run([1, 2, 6])
    assert outcomes[-1].verdict is Verdict.GAP and outcomes[-1].lost_delta == 3


def test_duplicate_is_rejected():
    outcomes = run([1, 2, 2, 1])
    assert [o.verdict for o in outcomes[2:]] == [Verdict.DUPLICATE, Verdict.DUPLICATE]
    assert not Verdict.DUPLICATE.accepted


def test_reordered_message_fills_the_gap_and_is_rejected():
    outcomes = run([1, 3, 2])
    assert outcomes[1].lost_delta == 1
    assert outcomes[2].verdict is Verdict.OUT_OF_ORDER and outcomes[2].lost_delta == -1


def test_reboot_by_uptime_or_zero():
    by_uptime = run([50, 51, 3], [1000, 1001, 2])
    assert by_uptime[-1].verdict is Verdict.REBOOT
    by_zero = run([50, 51, 0])
    assert by_zero[-1].verdict is Verdict.REBOOT
    tracker = SequenceTracker()
    for s in (50, 51, 0, 1):
        outcome = tracker.track("d", s)
    assert outcome.verdict is Verdict.NEXT


def test_seeded_tracker_continues_across_hub_restarts():
    tracker = SequenceTracker()
    tracker.seed("d", 41)
    assert tracker.track("d", 42).verdict is Verdict.NEXT
    assert tracker.track("d", 41).verdict is Verdict.DUPLICATE


@given(st.lists(st.integers(1, 200), min_size=1, max_size=300))
def test_without_reboots_accepted_seqs_strictly_increase_and_loss_is_consistent(seqs):
    tracker = SequenceTracker()
    lost = 0
    accepted = []
    for index, s in enumerate(seqs):
        outcome = tracker.track("d", s, uptime=index)  # uptime only grows: no reboot
        lost += outcome.lost_delta
        assert lost >= 0
        if outcome.verdict.accepted:
            accepted.append(s)
    assert accepted == sorted(set(accepted))
    # every number between the first and the last accepted seq is either accepted,
    # counted lost, or arrived late (and was rejected as out of order)
    assert lost <= accepted[-1] - accepted[0] + 1 - len(accepted)
