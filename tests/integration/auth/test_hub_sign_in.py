"""The team set-up's sign-in end to end, as docs/team.md tells it: a team
broker written by `smartiot broker config --person-accounts` (real mosquitto
with its dynamic-security plugin), people added with `smartiot users add` on
the hub's machine, `smartiot hub --api` serving the REST API on loopback.
People sign in over HTTP and get their own broker login: the broker itself
refuses a support person's command and passes an engineer's; the server
refuses a technician's request the role may not make (403, audited);
disabling a person takes their broker access away; the hub stops cleanly."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.integration.auth.hub_team import (  # noqa: F401  (the team fixture)
    DEVICE,
    PASSWORDS,
    HubProcess,
    Mqtt,
    Team,
    team,
)
from tests.integration.hub.conftest import wait_until


def test_people_sign_in_to_the_hub_with_their_own_broker_accounts(
        team: Team) -> None:  # noqa: F811
    # The first admin and the team, added on the hub's machine against its database.
    first = team.cli("users", "add", "ada", "--role", "admin", "--password-stdin",
                     stdin="the admin secret\n", role="admin")
    assert first.returncode == 0, first.stderr
    for user, role in (("eve", "engineer"), ("sam", "support"), ("tim", "technician")):
        added = team.cli("users", "add", user, "--role", role, "--password-stdin",
                         stdin=PASSWORDS[user] + "\n", role="admin")
        assert added.returncode == 0, added.stderr

    hub = HubProcess(team)
    lines = hub.lines
    clients: list[Mqtt] = []
    try:
        hub.wait_serving()
        assert any("their own broker accounts" in x for x in lines), lines

        eve, sam, tim = team.login("eve"), team.login("sam"), team.login("tim")
        assert (eve["actor"]["role"], eve["actor"]["organization"]) == ("engineer", "acme")
        assert eve["broker"]["username"] == "person.eve" and eve["broker"]["can_command"]
        assert sam["broker"]["username"] == "person.sam"
        assert sam["broker"]["can_command"] is False
        assert eve["broker"]["url"] == f"mqtt://127.0.0.1:{team.broker_port}"

        fleet_secret = team.cli("broker", "password", "--device", DEVICE).stdout.strip()
        device = Mqtt(team.broker_port, DEVICE, fleet_secret)
        clients.append(device)
        assert device.connected.wait(10), device.refused
        device.client.subscribe(f"cmd/+/{DEVICE}/req", qos=1)
        time.sleep(0.3)

        support = Mqtt(team.broker_port, sam["broker"]["username"], sam["broker"]["password"])
        engineer = Mqtt(team.broker_port, eve["broker"]["username"],
                        eve["broker"]["password"])
        clients += [support, engineer]
        assert support.connected.wait(10), support.refused
        assert engineer.connected.wait(10), engineer.refused
        topic = f"cmd/acme/{DEVICE}/req"
        refused = support.publish(topic)
        assert refused.is_failure and refused.value == 135  # Not authorized, from the broker
        assert engineer.publish(topic).value == 0
        wait_until(lambda: device.received == [topic], 10, "the engineer's command is lost")
        time.sleep(0.3)
        assert device.received == [topic]  # the support person's never arrived

        # A second sign-in rotates the broker password: the old one stops working.
        old = eve["broker"]["password"]
        second = team.login("eve")
        assert second["broker"]["password"] != old
        stale = Mqtt(team.broker_port, "person.eve", old)
        clients.append(stale)
        wait_until(lambda: stale.refused, 10, "an old broker password still works")
        # A console restarting with only its refresh token asks for a broker login too.
        status, body = team.http("POST", "/auth/refresh",
                                 {"refresh_token": second["refresh_token"], "broker": True})
        assert status == 200 and body["data"]["broker"]["username"] == "person.eve"
        renewed = Mqtt(team.broker_port, "person.eve", body["data"]["broker"]["password"])
        clients.append(renewed)
        assert renewed.connected.wait(10), renewed.refused
        status, body = team.http("POST", "/auth/refresh",
                                 {"refresh_token": body["data"]["refresh_token"]})
        assert status == 200 and body["data"]["broker"] is None  # not asked: unchanged

        # The server refuses what the technician's role may not do, and audits it.
        status, body = team.http("POST", f"/devices/{DEVICE}/decommission", {},
                                 token=tim["access_token"])
        assert status == 403 and body["error"]["code"] == "FORBIDDEN"

        # Disabled on the hub's machine: the hub takes the broker access away too.
        assert team.cli("users", "disable", "sam", role="admin").returncode == 0
        wait_until(lambda: any("removed the broker account of sam" in x for x in lines), 20,
                   f"sam kept broker access: {lines[-5:]}")
        again = Mqtt(team.broker_port, sam["broker"]["username"], sam["broker"]["password"])
        clients.append(again)
        wait_until(lambda: again.refused, 10, "a disabled person can still use the broker")
        status, body = team.http("POST", "/auth/login",
                                 {"username": "sam", "password": PASSWORDS["sam"]})
        assert status == 403 and "disabled" in body["error"]["message"]
    finally:
        for client in clients:
            client.close()
        code = hub.stop()
    assert code == 0, lines[-10:]
    assert any(x.startswith("hub stopped") for x in lines), lines[-5:]
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{team.api_port}/openapi.json", timeout=2)
    trail = json.loads(team.cli("audit", "list", "--json", role="admin").stdout)
    denied = [e for e in trail if e["actor"] == "tim" and e["details"].get("outcome") == "denied"]
    assert [e["action"] for e in denied] == ["device.decommission"]
    logins = [e["actor"] for e in trail if e["action"] == "auth.login"]
    assert sorted(logins) == ["eve", "eve", "sam", "sam", "tim"]
