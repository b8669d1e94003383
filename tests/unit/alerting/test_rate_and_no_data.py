from datetime import timedelta

import pytest

from core.errors import ValidationError
from core.model import DeviceStatus
from core.services.alerting import NoDataEvaluator, RateOfChangeEvaluator
from tests.unit.alerting.fakes import T0, device, readings


def test_rate_absolute_fires_on_fast_rise_and_fall_then_clears():
    ev = RateOfChangeEvaluator({"metric": "temp", "max_per_minute": 6, "window_s": 30})
    # 10 s steps: +1 per step = 6/min (not above), then +3 per step = 18/min
    out = ev.observe(device(), readings("temp", [0, 1, 2, 3, 6, 9, 12, 12, 12, 12, 12]), T0)
    assert [c.active for c in out] == [True, False]
    assert out[0].value == pytest.approx(10.0)  # at 40 s: (6 - 1) over the last 30 s
    assert "rising" in out[0].message


def test_rate_signed_watches_one_direction():
    falling = RateOfChangeEvaluator({"metric": "level", "max_per_minute": -6, "mode": "signed"})
    out = falling.observe(device(), readings("level", [100, 90, 80]), T0)
    assert [c.active for c in out] == [True]
    rising_only = RateOfChangeEvaluator({"metric": "level", "max_per_minute": 6,
                                         "mode": "signed"})
    assert rising_only.observe(device(), readings("level", [100, 90, 80]), T0) == []


def test_rate_needs_two_readings_in_the_window():
    ev = RateOfChangeEvaluator({"metric": "temp", "max_per_minute": 1, "window_s": 5})
    assert ev.observe(device(), readings("temp", [0, 50, 100]), T0) == []  # 10 s apart


def test_rate_param_validation():
    with pytest.raises(ValidationError, match="'max_per_minute' must be greater than 0 in abs"):
        RateOfChangeEvaluator({"metric": "t", "max_per_minute": -1})
    with pytest.raises(ValidationError, match="'window_s' must be greater than 0"):
        RateOfChangeEvaluator({"metric": "t", "max_per_minute": 1, "window_s": 0})
    with pytest.raises(ValidationError, match="'mode' must be one of absolute, signed"):
        RateOfChangeEvaluator({"metric": "t", "max_per_minute": 1, "mode": "up"})


def test_no_data_fires_after_n_minutes_of_silence_and_clears_on_data():
    ev = NoDataEvaluator({"minutes": 5})
    dev = device()
    assert ev.observe(dev, readings("temp", [1.0]), T0) == []
    assert ev.tick(dev, T0 + timedelta(minutes=4, seconds=59)) == []
    fired = ev.tick(dev, T0 + timedelta(minutes=5))
    assert [c.active for c in fired] == [True]
    assert "no data for 5 min" in fired[0].message
    assert ev.tick(dev, T0 + timedelta(minutes=9)) == []  # still one edge
    back = ev.observe(dev, readings("temp", [1.0], start=T0 + timedelta(minutes=10)), T0)
    assert [c.active for c in back] == [False]


def test_no_data_for_a_given_metric_ignores_others():
    ev = NoDataEvaluator({"minutes": 1, "metric": "temp", "offline": False})
    dev = device(last_seen=T0 + timedelta(minutes=5))  # registry: recent, but any metric
    ev.observe(dev, readings("temp", [1.0]), T0)
    ev.observe(dev, readings("humidity", [1.0], start=T0 + timedelta(seconds=50)), T0)
    assert [c.active for c in ev.tick(dev, T0 + timedelta(minutes=1))] == [True]


def test_no_data_uses_registry_last_seen_and_first_tick_for_unknown_devices():
    ev = NoDataEvaluator({"minutes": 10, "offline": False})
    quiet = device("quiet")
    assert ev.tick(quiet, T0) == []  # never heard of: watching starts now
    assert ev.tick(quiet, T0 + timedelta(minutes=9)) == []
    assert len(ev.tick(quiet, T0 + timedelta(minutes=10))) == 1
    seen = device("seen", last_seen=T0 + timedelta(minutes=8))
    assert ev.tick(seen, T0 + timedelta(minutes=17)) == []
    assert len(ev.tick(seen, T0 + timedelta(minutes=18))) == 1


def test_no_data_offline_status_for_n_minutes():
    ev = NoDataEvaluator({"minutes": 3})
    dev = device(status=DeviceStatus.OFFLINE, last_seen=T0 + timedelta(hours=1))
    now = T0 + timedelta(minutes=1)
    assert ev.tick(dev, now) == []
    fired = ev.tick(dev, now + timedelta(minutes=3))
    assert [c.active for c in fired] == [True] and "offline for 3 min" in fired[0].message
    online = device(status=DeviceStatus.ONLINE, last_seen=T0 + timedelta(hours=1))
    assert [c.active for c in ev.tick(online, now + timedelta(minutes=4))] == [False]


def test_no_data_param_validation():
    with pytest.raises(ValidationError, match="parameter 'minutes' must be greater than 0"):
        NoDataEvaluator({"minutes": 0})
    with pytest.raises(ValidationError, match="parameter 'offline' must be true or false"):
        NoDataEvaluator({"minutes": 1, "offline": "yes"})
