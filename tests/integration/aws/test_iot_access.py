"""A console's Cognito identity gets the stage's IoT policy through the API
(``POST /me/iot-access``, plugins/aws/iot_access.py), on real parts: moto's
server over HTTP (the user pool signs people in with SRP, the identity pool
hands out identities, IoT keeps the policy's targets) and the API served with
the local Cognito authorizer in front, as the sandbox serves it.

IoT Core refuses a Cognito identity's connection until an IoT policy is
attached to that identity; the API attaches ``iot-console-{stage}`` to the
caller's own identity (from the identity pool, with the caller's ID token),
idempotently, and never to another's."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from core.model.roles import Role
from plugins.aws.api_server import api_url, serve_api
from plugins.aws.cognito.signin import Tokens
from plugins.aws.iot_access import console_policy_name, login_provider
from plugins.aws.live.credentials import IdentityPoolCredentials, IotAccessRoute, SignInNeeded
from tests.integration.aws.cognito_pool import PASSWORD, USERS, CognitoStage

POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}


@dataclass
class Stage:
    cognito: CognitoStage
    identity_pool_id: str
    url: str
    policy: str

    def iot(self) -> Any:
        return self.cognito.aws.client("iot")

    def targets(self) -> set[str]:
        return set(self.iot().list_targets_for_policy(policyName=self.policy)["targets"])

    def attached(self, identity_id: str) -> list[str]:
        return [p["policyName"] for p in
                self.iot().list_attached_policies(target=identity_id)["policies"]]

    def signed_in(self, role: Role) -> Tokens:
        """A new sign-in (SRP) of the role's person: new tokens each time."""
        result = self.cognito.sign_in().sign_in(USERS[role], PASSWORD)
        assert isinstance(result, Tokens)
        return result

    def credentials(self, tokens: Tokens, route: IotAccessRoute | None = None
                    ) -> IdentityPoolCredentials:
        """What the console's live feed uses (plugins/aws/live/wiring.py)."""
        s = self.cognito.settings
        return IdentityPoolCredentials(
            self.identity_pool_id, s.region, s.user_pool_id, lambda: tokens.id_token,
            endpoint_url=s.endpoint_url, access=route or IotAccessRoute(self.url))

    def post(self, token: str | None, body: Any) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + "/me/iot-access", method="POST",
                                         data=json.dumps(body).encode(), headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.loads(exc.read() or b"null")


def _identity_pool(cognito: CognitoStage) -> str:
    s = cognito.settings
    return str(cognito.aws.client("cognito-identity").create_identity_pool(
        IdentityPoolName=f"iot_console_{s.stage}", AllowUnauthenticatedIdentities=False,
        CognitoIdentityProviders=[{"ProviderName": login_provider(s.region, s.user_pool_id),
                                   "ClientId": s.user_pool_client_id,
                                   "ServerSideTokenCheck": True}])["IdentityPoolId"])


@pytest.fixture
def stage(cognito: CognitoStage) -> Iterator[Stage]:
    """The stage's identity pool and console IoT policy (serverless.yml's
    IdentityPool and ConsoleIotPolicy), and its API on a free port."""
    pool = _identity_pool(cognito)
    policy = console_policy_name(cognito.settings.stage)
    cognito.aws.client("iot").create_policy(policyName=policy,
                                            policyDocument=json.dumps(POLICY))
    server = serve_api(cognito.settings, port=0, identity_pool_id=pool)
    try:
        yield Stage(cognito, pool, api_url(server), policy)
    finally:
        server.shutdown()
        server.server_close()


def test_after_sign_in_the_consoles_identity_has_the_iot_policy(stage: Stage) -> None:
    assert stage.targets() == set()
    route = IotAccessRoute(stage.url)
    credentials = stage.credentials(stage.signed_in(Role.TECHNICIAN), route)
    first = credentials.get()
    identity = first.identity_id
    assert identity and credentials.identity_id == identity
    # IoT keeps the attachment both ways round
    assert stage.targets() == {identity}
    assert stage.attached(identity) == [stage.policy]
    # renewing the credentials asks the API no more: once per signed-in person
    assert credentials.get().identity_id == identity
    assert route.calls == 1


def test_a_second_sign_in_gets_the_same_identity_and_does_not_fail(stage: Stage) -> None:
    first = stage.credentials(stage.signed_in(Role.SUPPORT)).get().identity_id
    # the person signs in again (another machine, a restart): new tokens, a new feed
    route = IotAccessRoute(stage.url)
    again = stage.credentials(stage.signed_in(Role.SUPPORT), route).get().identity_id
    assert route.calls == 1 and again == first
    assert stage.targets() == {first}  # attached once, however often asked
    assert stage.attached(first) == [stage.policy]
    # the answer itself, twice over: 200 both times
    token = stage.signed_in(Role.SUPPORT).id_token
    for _ in range(2):
        status, body = stage.post(token, {})
        assert status == 200, body
        assert body["data"] == {"identity_id": first, "policy_name": stage.policy}


def test_a_caller_cannot_attach_the_policy_for_another_identity(stage: Stage) -> None:
    victim = stage.credentials(stage.signed_in(Role.TECHNICIAN)).get().identity_id
    other_token = stage.signed_in(Role.ENGINEER).id_token
    before = stage.targets()

    status, body = stage.post(other_token, {"identity_id": victim})
    assert status == 403, body
    assert "not the caller's own" in body["error"]["message"]
    # a made-up identity too: only the caller's own, from its token, is ever attached
    made_up = f"{stage.cognito.settings.region}:00000000-0000-0000-0000-000000000000"
    assert stage.post(other_token, {"identity_id": made_up})[0] == 403
    assert stage.targets() == before == {victim}
    assert stage.attached(made_up) == []

    # without a sign-in the authorizer answers first; the body cannot name a caller
    assert stage.post(None, {"identity_id": victim})[0] == 401
    assert stage.post(other_token, {"identity_id": victim, "user": USERS[Role.TECHNICIAN]}
                      )[0] == 400
    # asking for its own, the engineer gets its own identity, not the victim's
    status, body = stage.post(other_token, {})
    assert status == 200 and body["data"]["identity_id"] != victim
    assert stage.targets() == {victim, body["data"]["identity_id"]}


def test_a_disabled_account_gets_no_iot_access(stage: Stage) -> None:
    token = stage.signed_in(Role.TECHNICIAN).id_token
    admin = stage.cognito.tokens(Role.ADMIN).id_token
    request = urllib.request.Request(
        stage.url + f"/users/{USERS[Role.TECHNICIAN]}", method="PUT",
        data=json.dumps({"disabled": True}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {admin}"})
    with urllib.request.urlopen(request, timeout=30) as reply:
        assert reply.status == 200
    status, body = stage.post(token, {})
    assert status == 403 and "disabled" in body["error"]["message"]
    assert stage.targets() == set()
    # the console's feed hears it as a refused sign-in: it says to sign in again
    with pytest.raises(SignInNeeded, match="HTTP 403"):
        IotAccessRoute(stage.url).identity(token)


def test_an_api_without_the_route_leaves_the_console_to_ask_the_identity_pool(
        cognito: CognitoStage, caplog: pytest.LogCaptureFixture) -> None:
    """A stack deployed before the route: the feed still gets credentials (GetId
    itself) and the log says why IoT Core may refuse the link."""
    pool = _identity_pool(cognito)
    server = serve_api(cognito.settings, port=0, identity_pool_id="")
    try:
        stage = Stage(cognito, pool, api_url(server), console_policy_name(cognito.settings.stage))
        route = IotAccessRoute(stage.url)
        caplog.set_level(logging.WARNING, "plugins.aws.live.credentials")
        got = stage.credentials(stage.signed_in(Role.TECHNICIAN), route).get()
        assert got.identity_id and route.missing
        assert "gets no IoT policy" in caplog.text
    finally:
        server.shutdown()
        server.server_close()
