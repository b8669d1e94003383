"""The hub's stable MQTT client id and its status line (no I/O)."""

from __future__ import annotations

from plugins.local.commands import status_line
from plugins.local.hub.hub import hub_client_id, stable_client_id


def test_client_id_is_stable_per_profile_host_and_database_and_hides_credentials():
    a = stable_client_id("lab", "postgresql://hub:secret@db.lab:5432/fleet", host="hub-1")
    assert a == stable_client_id("lab", "postgresql://hub:other@db.lab:5432/fleet",
                                 host="hub-1")  # a new password is the same hub
    assert "secret" not in a and a.startswith("smartiot-hub-lab-hub-1-")
    assert a != stable_client_id("lab", "postgresql://hub@db.lab:5432/other", host="hub-1")
    assert a != stable_client_id("lab", "postgresql://hub@db.lab:5432/fleet", host="hub-2")
    assert a != stable_client_id("local", "postgresql://hub@db.lab:5432/fleet", host="hub-1")
    long = stable_client_id("p" * 32, "sqlite:///x", host="h" * 300)
    assert len(long.encode()) <= 128 and all(c.isalnum() or c in "-_" for c in long)


def test_client_id_can_be_chosen(monkeypatch):
    monkeypatch.setenv("SMARTIOT_HUB_CLIENT_ID", "hub-berlin")
    assert hub_client_id("lab", "sqlite:///x") == "hub-berlin"


def _snap(**over):
    snap = {"connection": "connected", "messages_per_s": 6012.4, "readings_per_s": 36074.0,
            "readings_written": 1_234_567, "quarantined": 3, "inbox": 120,
            "shed_overload": 0, "outages": 0, "longest_outage_s": 0.0, "degraded": ""}
    snap.update(over)
    return snap


def test_status_line_gives_both_rates_and_says_what_is_wrong():
    line = status_line(_snap())
    assert line == ("hub: connected, 6,012 msg/s, 36,074 readings/s, 1,234,567 readings "
                    "stored, 3 rejected, inbox 120")
    bad = status_line(_snap(degraded="degraded: database unavailable for 42 s",
                            shed_overload=1234, outages=1, longest_outage_s=42.4))
    assert bad.endswith("-- degraded: database unavailable for 42 s")
    assert "1,234 shed (overload)" in bad and "1 database outage(s), longest 42 s" in bad
    assert "160 readings lost while the hub was away" in status_line(_snap(hub_lost=160))
