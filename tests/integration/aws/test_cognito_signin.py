"""Sign-in with Cognito's SRP flow (pycognito's SRP) against moto's server:
each role's tokens carry its group, the first sign-in asks for a new
password, MFA asks for a code, refresh renews, sign-out ends it; every error
a person can act on has its own type and message.

moto does not check the SRP proof (any password passes) and has no
RevokeToken: those two are checked with botocore's Stubber (docs/aws.md, Gaps)."""

from __future__ import annotations

import time

import pytest
from botocore import UNSIGNED
from botocore.stub import Stubber
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from core.errors import SmartIotError
from core.model.roles import Role
from plugins.api.auth import actor_from_claims
from plugins.aws.cognito.authorizer import CognitoAuthorizer
from plugins.aws.cognito.signin import (
    AccountDisabled,
    CodeRequired,
    CognitoPool,
    CognitoSignIn,
    IdentityProviderUnreachable,
    NewPasswordRequired,
    PasswordRejected,
    SessionEnded,
    Tokens,
    UnknownUser,
    WrongCode,
    WrongPassword,
)
from tests.integration.aws.cognito_pool import (
    ORG,
    PASSWORD,
    USERS,
    CognitoStage,
)
from tests.integration.aws.conftest import _free_port, record_calls


@pytest.mark.parametrize("role", list(Role))
def test_each_role_signs_in_with_srp_and_its_token_names_the_role(
        cognito: CognitoStage, role: Role) -> None:
    signin = cognito.sign_in()
    calls = record_calls(signin._client, "cognito-idp")

    tokens = signin.sign_in(USERS[role], PASSWORD)

    assert isinstance(tokens, Tokens)
    assert (tokens.username, tokens.role, tokens.organization) == (USERS[role], role, ORG)
    assert tokens.groups == (role.value,) and tokens.refresh_token
    assert not tokens.expires_within(60)
    # SRP: the password itself is in no request.
    start = calls.named("InitiateAuth")[0]
    assert start["AuthFlow"] == "USER_SRP_AUTH" and "SRP_A" in start["AuthParameters"]
    assert PASSWORD not in repr(calls.calls)
    assert "PASSWORD_CLAIM_SIGNATURE" in calls.named("RespondToAuthChallenge")[0][
        "ChallengeResponses"]
    assert PASSWORD not in repr(tokens) and tokens.id_token not in repr(tokens)
    # What API Gateway's authorizer would hand the Lambda, and who the API takes them for.
    claims = CognitoAuthorizer.for_settings(cognito.settings).verify(tokens.id_token)
    actor = actor_from_claims(claims)
    assert (actor.user, actor.role, actor.organization) == (USERS[role], role, ORG)


def test_first_sign_in_asks_for_a_new_password(cognito: CognitoStage) -> None:
    cognito.add("newbie", Role.TECHNICIAN, password="Temporary-Pass-1", temporary=True)
    signin = cognito.sign_in()

    challenge = signin.sign_in("newbie", "Temporary-Pass-1")
    assert isinstance(challenge, NewPasswordRequired) and challenge.username == "newbie"
    assert challenge.session not in repr(challenge)
    with pytest.raises(PasswordRejected, match="new password"):
        signin.set_new_password(challenge, "short")
    tokens = signin.set_new_password(challenge, "A-Much-Better-Pass-2")
    assert isinstance(tokens, Tokens) and tokens.role is Role.TECHNICIAN

    status = cognito.admin.admin_get_user(UserPoolId=cognito.settings.user_pool_id,
                                          Username="newbie")["UserStatus"]
    assert status == "CONFIRMED"
    assert isinstance(signin.sign_in("newbie", "A-Much-Better-Pass-2"), Tokens)


def test_an_authenticator_app_code_is_asked_for_and_checked(
        cognito: CognitoStage, monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's server runs in this process: this makes it check TOTP codes.
    monkeypatch.setenv("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
    signin = cognito.sign_in()
    tokens = cognito.tokens(Role.ENGINEER)
    secret = signin._client.associate_software_token(
        AccessToken=tokens.access_token)["SecretCode"]
    import base64

    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    app = TOTP(key, 6, SHA1(), 30, enforce_key_length=False)
    signin._client.verify_software_token(AccessToken=tokens.access_token,
                                         UserCode=app.generate(time.time()).decode())
    signin._client.set_user_mfa_preference(
        AccessToken=tokens.access_token,
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True})

    challenge = signin.sign_in("eve", PASSWORD)
    assert isinstance(challenge, CodeRequired) and challenge.kind == "totp"
    wrong = f"{(int(app.generate(time.time())) + 1) % 1_000_000:06d}"
    with pytest.raises(WrongCode, match="wrong or has expired"):
        signin.answer_code(challenge, wrong)
    challenge = signin.sign_in("eve", PASSWORD)
    assert isinstance(challenge, CodeRequired)
    done = signin.answer_code(challenge, app.generate(time.time()).decode())
    assert isinstance(done, Tokens) and done.role is Role.ENGINEER


def test_an_sms_code_is_asked_for(cognito: CognitoStage) -> None:
    cognito.admin.admin_set_user_mfa_preference(
        UserPoolId=cognito.settings.user_pool_id, Username="sue",
        SMSMfaSettings={"Enabled": True, "PreferredMfa": True})
    signin = cognito.sign_in()
    challenge = signin.sign_in("sue", PASSWORD)
    assert isinstance(challenge, CodeRequired) and challenge.kind == "sms"
    with pytest.raises(SmartIotError, match="6-digit code"):
        signin.answer_code(challenge, "abc")
    assert isinstance(signin.answer_code(challenge, "123 456"), Tokens)


def test_refresh_renews_and_signing_out_everywhere_ends_it(cognito: CognitoStage) -> None:
    signin = cognito.sign_in()
    tokens = cognito.tokens(Role.ADMIN)
    renewed = signin.refresh(tokens)
    assert renewed.refresh_token == tokens.refresh_token
    assert renewed.id_token != tokens.id_token and renewed.role is Role.ADMIN
    assert signin.refresh(tokens.refresh_token).username == "ada"

    signin.sign_out(renewed, everywhere=True)
    with pytest.raises(SessionEnded, match="ada has ended"):
        signin.refresh(tokens)


def test_signing_out_revokes_this_refresh_token(cognito: CognitoStage) -> None:
    tokens = cognito.tokens(Role.SUPPORT)
    signin = cognito.sign_in()
    with Stubber(signin._client) as stub:  # moto has no RevokeToken
        stub.add_response("revoke_token", {}, {"Token": tokens.refresh_token,
                                               "ClientId": cognito.settings.user_pool_client_id})
        signin.sign_out(tokens)
        stub.assert_no_pending_responses()


def test_errors_a_person_can_act_on(cognito: CognitoStage) -> None:
    signin = cognito.sign_in()
    with pytest.raises(UnknownUser, match="no user nobody"):
        signin.sign_in("nobody", PASSWORD)
    cognito.admin.admin_disable_user(UserPoolId=cognito.settings.user_pool_id, Username="tom")
    with pytest.raises(AccountDisabled, match="tom is disabled; an admin can enable it"):
        signin.sign_in("tom", PASSWORD)
    with pytest.raises(SessionEnded):
        signin.refresh("not-a-refresh-token")
    with pytest.raises(SmartIotError, match="enter both"):
        signin.sign_in("ada", "")

    # Against Cognito itself nothing is signed: a console needs no AWS credentials.
    direct = CognitoSignIn(CognitoPool("eu-west-1", "eu-west-1_abc", "client"))
    assert direct._client.meta.config.signature_version is UNSIGNED
    offline = CognitoSignIn(CognitoPool(cognito.aws.region, cognito.settings.user_pool_id,
                                        cognito.settings.user_pool_client_id,
                                        f"http://127.0.0.1:{_free_port()}"))
    with pytest.raises(IdentityProviderUnreachable, match=r"could not reach .*network"):
        offline.sign_in("ada", PASSWORD)


def test_a_wrong_password_is_named_as_such(cognito: CognitoStage) -> None:
    """moto accepts any SRP proof; Cognito answers a wrong one like this."""
    signin = cognito.sign_in()
    with Stubber(signin._client) as stub:
        stub.add_response("initiate_auth", {"ChallengeName": "PASSWORD_VERIFIER",
                                            "ChallengeParameters": {
                                                "SALT": "ab" * 16, "SRP_B": "cd" * 64,
                                                "USERNAME": "ada", "USER_ID_FOR_SRP": "ada",
                                                "SECRET_BLOCK": "c2VjcmV0"}})
        stub.add_client_error("respond_to_auth_challenge", "NotAuthorizedException",
                              "Incorrect username or password.", 400)
        with pytest.raises(WrongPassword, match="wrong user name or password"):
            signin.sign_in("ada", "not-her-password")
