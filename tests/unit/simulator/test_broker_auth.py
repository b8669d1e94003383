"""The broker's logins and ACL model: mosquitto's semantics, evaluated in Python
for the amqtt fallback, and the files the team broker loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulator.broker_auth import (
    COMMANDER_USER,
    HUB_USER,
    Acl,
    BrokerAuthError,
    BrokerCredentials,
    TeamListeners,
    acl_rules,
    acl_text,
    device_password,
    mosquitto_hash,
    mosquitto_team_conf,
    parse_console,
    password_lines,
    read_device_list,
    verify_mosquitto_hash,
)

CONSOLES = [("maria", "engineer"), ("sam", "support"), ("tom", "technician")]


@pytest.fixture(scope="module")
def acl() -> Acl:
    return Acl.parse(acl_text(CONSOLES))


def test_hash_has_mosquittos_pbkdf2_format_and_verifies() -> None:
    hashed = mosquitto_hash("s3cret", salt=b"0123456789ab")
    assert hashed.startswith("$7$101$MDEyMzQ1Njc4OWFi$")
    assert verify_mosquitto_hash("s3cret", hashed)
    assert not verify_mosquitto_hash("s3cret!", hashed)
    assert not verify_mosquitto_hash("s3cret", "$6$abc$def")
    assert not verify_mosquitto_hash("s3cret", "$7$notanumber$x$y")


def test_device_passwords_differ_per_device_and_per_fleet() -> None:
    assert device_password("fleet", "a") == device_password("fleet", "a")
    assert device_password("fleet", "a") != device_password("fleet", "b")
    assert device_password("fleet", "a") != device_password("other", "a")


@pytest.mark.parametrize(("user", "access", "topic", "allowed"), [
    ("pump-1", "write", "dt/acme/pump-1/telemetry", True),
    ("pump-1", "write", "dt/acme/pump-2/telemetry", False),
    ("pump-1", "write", "dt/acme/pump-1/status", True),
    ("pump-1", "read", "dt/acme/pump-2/telemetry", False),
    ("pump-1", "read", "cmd/acme/pump-1/req", True),
    ("pump-1", "read", "cmd/acme/pump-2/req", False),
    ("pump-1", "write", "cmd/acme/pump-1/req", False),
    ("pump-1", "write", "cmd/acme/pump-1/res", True),
    ("pump-1", "write", "$aws/things/pump-1/shadow/update", True),
    ("pump-1", "write", "$aws/things/pump-1/shadow/update/accepted", False),
    ("pump-1", "write", "$aws/things/pump-1/shadow/update/delta", False),
    ("pump-1", "read", "$aws/things/pump-1/shadow/update/delta", True),
    ("pump-1", "read", "$aws/things/pump-2/shadow/update/delta", False),
    ("pump-1", "write", "$aws/things/pump-1/jobs/start-next", True),
    ("pump-1", "write", "$aws/things/pump-1/jobs/$next/get", True),
    ("pump-1", "write", "$aws/things/pump-1/jobs/job-7/update", True),
    ("pump-1", "write", "$aws/things/pump-2/jobs/job-7/update", False),
    ("pump-1", "write", "$aws/things/pump-1/jobs/notify-next", False),
    ("pump-1", "write", "$aws/things/pump-1/jobs/start-next/accepted", False),
    ("pump-1", "read", "$aws/things/pump-1/jobs/+/update/accepted", True),  # a filter
    ("pump-1", "read", "$aws/things/pump-1/jobs/#", False),
    ("pump-1", "read", "$aws/things/+/jobs/notify-next", False),
    (HUB_USER, "read", "dt/+/+/telemetry", True),
    (HUB_USER, "write", "$aws/things/pump-1/jobs/notify-next", True),
    # The ingest login never commands: commands people send through the REST API
    # go out as the commander, after the server checked the person's role.
    (HUB_USER, "write", "cmd/acme/pump-1/req", False),
    (COMMANDER_USER, "write", "cmd/acme/pump-1/req", True),
    (COMMANDER_USER, "read", "cmd/+/+/res", True),
    (COMMANDER_USER, "write", "$aws/things/pump-1/shadow/update", True),
    (COMMANDER_USER, "write", "cmd/acme/pump-1/res", False),
    (COMMANDER_USER, "write", "$aws/things/pump-1/jobs/notify-next", False),
    (COMMANDER_USER, "write", "dt/acme/pump-1/telemetry", False),
    (HUB_USER, "write", "dt/acme/pump-1/telemetry", False),
    ("console.maria", "write", "cmd/acme/pump-1/req", True),
    ("console.maria", "write", "$aws/things/pump-1/shadow/update", True),
    ("console.maria", "write", "$aws/things/pump-1/jobs/job-7/update", False),
    ("console.tom", "write", "cmd/acme/pump-1/req", True),
    ("console.sam", "write", "cmd/acme/pump-1/req", False),
    ("console.sam", "write", "$aws/things/pump-1/shadow/update", False),
    ("console.sam", "read", "dt/+/+/telemetry", True),
    ("console.sam", "read", "cmd/+/+/res", True),
    ("console.sam", "read", "cmd/+/+/req", False),
    ("console.nobody", "read", "dt/+/+/telemetry", False),
    ("", "read", "dt/+/+/telemetry", False),
    ("a/b", "write", "dt/acme/a/b/telemetry", False),
])
def test_acl(acl: Acl, user: str, access: str, topic: str, allowed: bool) -> None:
    assert acl.allows(user, access, topic) is allowed


def test_leading_wildcards_never_match_dollar_topics() -> None:
    acl = Acl.parse("user x\ntopic readwrite #\ntopic read +/things/#\n")
    assert acl.allows("x", "write", "dt/a/b/telemetry")
    assert not acl.allows("x", "write", "$aws/things/a/jobs/notify")
    assert not acl.allows("x", "read", "$aws/things/a/jobs/notify")


def test_acl_file_round_trips_the_rules() -> None:
    text = acl_text(CONSOLES)
    parsed = Acl.parse(text)
    rules = acl_rules(CONSOLES)
    assert len(parsed.patterns) + sum(map(len, parsed.by_user.values())) == len(rules)


def test_unreadable_acl_line_is_named() -> None:
    with pytest.raises(BrokerAuthError, match="acl line 2: cannot read 'topic sideways x'"):
        Acl.parse("user a\ntopic sideways x\n", "acl")


def test_password_file_refuses_ids_mosquitto_cannot_hold() -> None:
    creds = BrokerCredentials.generate()
    with pytest.raises(BrokerAuthError, match="cannot contain ':'"):
        list(password_lines(["pump:1"], creds))
    with pytest.raises(BrokerAuthError, match="'bad id'"):
        list(password_lines(["bad id"], creds))
    lines = list(password_lines(["pump-1"], creds))
    assert [line.split(":", 1)[0] for line in lines] == [HUB_USER, "pump-1"]


def test_device_list_errors_name_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "devices.txt"
    path.write_text("# fleet\npump-1\n\npump-2  # spare\npump 3\n")
    with pytest.raises(BrokerAuthError, match=r"devices.txt line 5: .*'pump 3'"):
        read_device_list(path)
    path.write_text("pump-1\npump-1\n")
    with pytest.raises(BrokerAuthError, match="line 2: device 'pump-1' is listed twice"):
        read_device_list(path)
    path.write_text("pump-1\npump-2  # spare\n")
    assert read_device_list(path) == ["pump-1", "pump-2"]


def test_console_specs() -> None:
    assert parse_console("maria:Engineer") == ("maria", "engineer")
    with pytest.raises(BrokerAuthError, match="USER:ROLE"):
        parse_console("maria")
    with pytest.raises(BrokerAuthError, match="'boss' is not one of"):
        parse_console("maria:boss")
    with pytest.raises(BrokerAuthError, match="cannot be a broker user name"):
        parse_console("ma.ria:support")


def test_team_conf_listeners(tmp_path: Path) -> None:
    with pytest.raises(BrokerAuthError, match="TLS listeners need --cafile"):
        mosquitto_team_conf(tmp_path, TeamListeners(mtls_port=8884))
    with pytest.raises(BrokerAuthError, match="at least one listener"):
        mosquitto_team_conf(tmp_path, TeamListeners(port=None))
    for name in ("ca.pem", "server.pem", "server.key"):
        (tmp_path / name).write_text("x")
    conf = mosquitto_team_conf(tmp_path, TeamListeners(
        port=None, tls_port=8883, mtls_port=8884, cafile=tmp_path / "ca.pem",
        certfile=tmp_path / "server.pem", keyfile=tmp_path / "server.key"))
    assert "allow_anonymous false" in conf
    mutual = conf.split("listener 8884")[1]
    assert "require_certificate true" in mutual and "use_identity_as_username true" in mutual
    assert "require_certificate" not in conf.split("listener 8884")[0]
