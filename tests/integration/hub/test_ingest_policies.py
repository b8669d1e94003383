"""Registration policy per organization, internal errors that name their device,
and a log that a flood of one failure cannot flood: the ingestor over a real
SQLite registry."""

from __future__ import annotations

import json
import logging

import pytest

from core.config import load_config
from core.errors import ConfigError, ValidationError
from core.ingest.ingestor import (
    Inbound,
    Ingestor,
    RateLimitedLog,
    RegistrationPolicy,
    registration_policies,
)
from core.ingest.registry_cache import RegistryCache
from core.store import Store

NOW = 1_795_000_000_000


def reading(org, device, seq=1, at=NOW):
    body = {"device_id": device, "seq": seq, "ts": at, "type": "pump", "fw": "1.0.0",
            "metrics": {"t": 1.0}, "uptime": 10 + seq}
    return Inbound(f"dt/{org}/{device}/telemetry", json.dumps(body).encode(), at)


@pytest.fixture
def store(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'hub.db'}")
    yield store
    store.close()


def test_registration_policies_per_organization(store):
    ingestor = Ingestor(RegistryCache(store.registry), registration=registration_policies({
        "closed": "known-only", "busy": "rate-limited 3/min", "*": "open"}))
    batch = ([reading("closed", f"c{i}") for i in range(2)]
             + [reading("busy", f"b{i}", at=NOW + i) for i in range(5)]
             + [reading("other", f"o{i}") for i in range(4)])
    result = ingestor.process(batch, NOW)
    assert sorted({r.device_id for r in result.readings}) == [
        "b0", "b1", "b2", "o0", "o1", "o2", "o3"]
    assert ingestor.rejected_by_reason == {"unregistered": 2, "registration_rate": 2}
    rows = {m.device_id: m.reason for m in result.quarantined}
    assert rows == {"c0": "unregistered", "c1": "unregistered", "b3": "registration_rate",
                    "b4": "registration_rate"}
    # refused ids leave no trace in the registry or the link statistics
    ingestor.cache.flush()
    assert store.registry.find("c0") is None and "c0" not in ingestor.stats
    # a minute later the rate allows new devices again; known ones always pass
    later = ingestor.process([reading("busy", "b9", at=NOW + 61_000),
                              reading("busy", "b0", seq=2, at=NOW + 61_000)], NOW + 61_000)
    assert [r.device_id for r in later.readings] == ["b9", "b0"]


def test_policy_text_is_checked_in_config_and_in_the_hub(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[registration]\nacme = "known-only"\n"*" = "rate-limited 20/min"\n')
    config = load_config(path, tmp_path, env={})
    assert registration_policies(config.registration) == {
        "acme": RegistrationPolicy("known-only"), "*": RegistrationPolicy("rate-limited", 20)}
    path.write_text('[registration]\nacme = "closed"\n')
    with pytest.raises(ConfigError, match=r"registration\.acme"):
        load_config(path, tmp_path, env={})
    with pytest.raises(ValidationError):
        RegistrationPolicy.parse("rate-limited lots")


class Exploding(Ingestor):
    def _telemetry(self, message, org, device_id, now_ms, at, result):
        if device_id.startswith("boom"):
            raise RuntimeError(f"failure for {device_id}")
        super()._telemetry(message, org, device_id, now_ms, at, result)


def test_internal_errors_name_the_device_and_do_not_flood_the_log(store, caplog):
    ingestor = Exploding(RegistryCache(store.registry))
    caplog.set_level(logging.ERROR, logger="core.ingest.ingestor")
    batch = [reading("acme", "boom1", seq=i, at=NOW + i) for i in range(1, 51)]
    batch += [reading("acme", "fine", seq=i, at=NOW + i) for i in range(1, 4)]
    result = ingestor.process(batch, NOW + 100)
    errors = [m for m in result.quarantined if m.reason == "internal_error"]
    assert len(errors) == 50 and {m.device_id for m in errors} == {"boom1"}
    assert "RuntimeError: failure for boom1" in errors[0].detail
    assert len(result.readings) == 3  # the other device lost nothing
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1
    assert ingestor.errors.suppressed == {"internal_error:RuntimeError": 49}


def test_rate_limited_log_tells_the_count_with_the_next_traceback(caplog):
    clock = [0.0]
    limited = RateLimitedLog(logging.getLogger("t.rl"), every_s=60, clock=lambda: clock[0])
    caplog.set_level(logging.ERROR, logger="t.rl")
    for _ in range(5):
        try:
            raise ValueError("x")
        except ValueError:
            limited.exception("r", "failed")
    try:
        raise KeyError("other")
    except KeyError:
        limited.exception("other", "failed differently")
    clock[0] = 61.0
    try:
        raise ValueError("x")
    except ValueError:
        limited.exception("r", "failed")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["failed", "failed differently",
                        "failed (4 more like it in the last 60 s, not shown)"]


def test_a_device_whose_messages_arrive_is_never_marked_offline(store):
    """Quarantined (duplicate, malformed) messages still prove the device alive."""
    from datetime import timedelta

    from core.model import DeviceStatus
    from core.model.timeutil import from_epoch_ms

    cache = RegistryCache(store.registry)
    ingestor = Ingestor(cache)
    ingestor.process([reading("acme", "d1", seq=5, at=NOW)], NOW)
    for minute in range(1, 6):  # five minutes of nothing but rejected messages
        at = NOW + minute * 60_000
        bad = Inbound("dt/acme/d1/telemetry", b"{not json", at)
        again = reading("acme", "d1", seq=5, at=NOW)  # the same reading, redelivered
        result = ingestor.process([Inbound(again.topic, again.payload, at), bad], at)
        assert {m.reason for m in result.quarantined} == {"duplicate", "malformed_json"}
        assert cache.mark_stale(from_epoch_ms(at), timedelta(seconds=120)) == []
    assert cache.get("d1").status is DeviceStatus.ONLINE
    assert cache.get("d1").last_seen == from_epoch_ms(NOW + 5 * 60_000)
