import itertools
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.services.alerting import ThresholdEvaluator
from tests.unit.alerting.fakes import T0, device, readings


def edges(evaluator, values, **kw):
    return [(c.active, c.value) for c in
            evaluator.observe(device(), readings("temp", values, **kw), T0)]


def test_fires_above_limit_and_clears_only_past_hysteresis():
    ev = ThresholdEvaluator({"metric": "temp", "limit": 80, "hysteresis": 5})
    assert edges(ev, [70, 81, 79, 76, 75, 74.9]) == [(True, 81.0), (False, 74.9)]


def test_below_operator_mirrors_the_band():
    ev = ThresholdEvaluator({"metric": "temp", "op": "below", "limit": 10, "hysteresis": 2})
    assert edges(ev, [11, 9, 11, 12, 12.5]) == [(True, 9.0), (False, 12.5)]


def test_min_duration_ignores_short_spikes():
    ev = ThresholdEvaluator({"metric": "temp", "limit": 80, "min_duration_s": 30})
    # 10 s apart: a 20 s spike, a dip, then 30 s of breach
    assert edges(ev, [85, 85, 85, 70, 85, 85, 85, 85]) == [(True, 85.0)]
    changes = ev.observe(device(), readings("temp", [70]), T0)  # late reading: ignored
    assert changes == []


def test_min_duration_fires_at_the_reading_that_completes_it():
    ev = ThresholdEvaluator({"metric": "temp", "limit": 80, "min_duration_s": 20})
    out = ev.observe(device(), readings("temp", [81, 82, 83, 84]), T0)
    assert [c.at for c in out] == [T0 + timedelta(seconds=20)]
    assert "for 20 s" in out[0].message


def test_other_metrics_and_devices_are_independent():
    ev = ThresholdEvaluator({"metric": "temp", "limit": 80})
    assert ev.observe(device(), readings("humidity", [99]), T0) == []
    assert len(ev.observe(device("a"), readings("temp", [90], device_id="a"), T0)) == 1
    assert len(ev.observe(device("b"), readings("temp", [90], device_id="b"), T0)) == 1


@settings(max_examples=300, deadline=None)
@given(
    limit=st.floats(-100, 100),
    hysteresis=st.floats(0, 20),
    values=st.lists(st.floats(-200, 200), max_size=60),
)
def test_hysteresis_never_flaps_inside_the_band(limit, hysteresis, values):
    ev = ThresholdEvaluator({"metric": "temp", "limit": limit, "hysteresis": hysteresis})
    out = edges(ev, values)
    # edges alternate, fire strictly above the limit, clear strictly below limit - h,
    # so consecutive edges are always more than the band apart
    assert [a for a, _ in out] == [i % 2 == 0 for i in range(len(out))]
    for active, value in out:
        assert value > limit if active else value < limit - hysteresis
    for (_, a), (_, b) in itertools.pairwise(out):
        assert abs(a - b) > hysteresis


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"limit": 1}, "parameter 'metric' is required"),
        ({"metric": "temp"}, "parameter 'limit' is required"),
        ({"metric": "temp", "limit": "hot"}, "parameter 'limit' must be a number, got 'hot'"),
        ({"metric": "temp", "limit": 1, "op": "over"}, "parameter 'op' must be one of above"),
        ({"metric": "temp", "limit": 1, "hysteresis": -1}, "'hysteresis' must be at least 0"),
        ({"metric": "temp", "limit": 1, "min_duration": 5}, "unknown parameter(s) 'min_duration'"),
        ({"metric": "1temp", "limit": 1}, "parameter 'metric' is not a valid metric name"),
    ],
)
def test_invalid_params_name_the_parameter(params, fragment):
    from core.errors import ValidationError

    with pytest.raises(ValidationError, match=None) as info:
        ThresholdEvaluator(params)
    assert fragment in str(info.value)


def test_numeric_strings_are_accepted():
    assert ThresholdEvaluator({"metric": "temp", "limit": "30"}).limit == 30.0
