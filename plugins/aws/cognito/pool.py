"""The Cognito user pool of a stage: its settings as constants (serverless.yml
declares the same pool; tests/integration/aws/test_iac.py can compare them)
and ``create_user_pool`` for the sandbox and the tests.

Roles are the pool's groups (``technician``, ``support``, ``engineer``,
``admin``); a person's organization is the custom attribute
``custom:organization``. Both end up in the ID token (``cognito:groups``,
``custom:organization``), which is all API Gateway's authorizer hands the
Lambda. Only admins change them: the app client may not write the custom
attributes, so nobody can move themselves into another organization with
their own access token (UpdateUserAttributes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.model.roles import Role
from plugins.aws.settings import AwsSettings

USER_POOL_NAME = "iot-users-{stage}"
APP_CLIENT_NAME = "iot-console-{stage}"

ORGANIZATION_ATTRIBUTE = "custom:organization"
# The directory's optimistic lock and who last changed an entry: Cognito has no
# conditional writes, so the version is checked on read and bumped on write.
VERSION_ATTRIBUTE = "custom:version"
CREATED_BY_ATTRIBUTE = "custom:created_by"
UPDATED_BY_ATTRIBUTE = "custom:updated_by"

CUSTOM_ATTRIBUTES: list[dict[str, Any]] = [
    {"Name": name.removeprefix("custom:"), "AttributeDataType": "String", "Mutable": True,
     "StringAttributeConstraints": {"MinLength": "0", "MaxLength": "128"}}
    for name in (ORGANIZATION_ATTRIBUTE, VERSION_ATTRIBUTE, CREATED_BY_ATTRIBUTE,
                 UPDATED_BY_ATTRIBUTE)
]

# Cognito's precedence: the lower number wins where one group must be chosen
# (an IAM role from the identity pool). plugins/api/auth.py picks the same
# strongest role from the token's groups.
ROLE_GROUPS: dict[Role, int] = {Role.ADMIN: 1, Role.ENGINEER: 2, Role.SUPPORT: 3,
                                Role.TECHNICIAN: 4}

PASSWORD_POLICY: dict[str, Any] = {
    "MinimumLength": 12, "RequireUppercase": True, "RequireLowercase": True,
    "RequireNumbers": True, "RequireSymbols": False, "TemporaryPasswordValidityDays": 7,
}

USER_POOL_SETTINGS: dict[str, Any] = {
    "Policies": {"PasswordPolicy": PASSWORD_POLICY},
    # People are added by an admin (the directory), never sign themselves up.
    "AdminCreateUserConfig": {"AllowAdminCreateUserOnly": True},
    "UsernameConfiguration": {"CaseSensitive": False},
    "AutoVerifiedAttributes": ["email"],
    # TOTP apps as the second factor, for people who turn it on.
    "MfaConfiguration": "OPTIONAL",
    "AccountRecoverySetting": {"RecoveryMechanisms": [
        {"Name": "verified_email", "Priority": 1}]},
}

# The console and the CLI are public clients (no secret can be kept on a
# laptop): SRP, so no password leaves the machine, and refresh tokens.
APP_CLIENT_SETTINGS: dict[str, Any] = {
    "GenerateSecret": False,
    "ExplicitAuthFlows": ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    "PreventUserExistenceErrors": "ENABLED",
    "EnableTokenRevocation": True,
    "AccessTokenValidity": 60, "IdTokenValidity": 60, "RefreshTokenValidity": 30,
    "TokenValidityUnits": {"AccessToken": "minutes", "IdToken": "minutes",
                           "RefreshToken": "days"},
    "ReadAttributes": ["email", "name", ORGANIZATION_ATTRIBUTE],
    "WriteAttributes": ["email", "name"],
}


@dataclass(frozen=True, slots=True)
class UserPool:
    """What the sandbox prints and a profile names."""

    user_pool_id: str
    client_id: str


def create_user_pool(settings: AwsSettings, cognito_client: Any) -> UserPool:
    """The stage's pool (``iot-users-<stage>``) with the custom attributes, the
    console's app client and one group per role. Always a new pool: Cognito
    pools are found by id, not by name, so the caller keeps the ids."""
    pool = cognito_client.create_user_pool(
        PoolName=USER_POOL_NAME.format(stage=settings.stage), Schema=CUSTOM_ATTRIBUTES,
        **USER_POOL_SETTINGS)["UserPool"]
    pool_id = pool["Id"]
    cognito_client.set_user_pool_mfa_config(
        UserPoolId=pool_id, SoftwareTokenMfaConfiguration={"Enabled": True},
        MfaConfiguration="OPTIONAL")
    client = cognito_client.create_user_pool_client(
        UserPoolId=pool_id, ClientName=APP_CLIENT_NAME.format(stage=settings.stage),
        **APP_CLIENT_SETTINGS)["UserPoolClient"]
    for role, precedence in ROLE_GROUPS.items():
        cognito_client.create_group(UserPoolId=pool_id, GroupName=role.value,
                                    Precedence=precedence,
                                    Description=f"the {role.value} role of the fleet console")
    return UserPool(pool_id, client["ClientId"])


def add_user_with_password(cognito_client: Any, user_pool_id: str, name: str, role: Role,
                           organization: str, password: str, *,
                           temporary: bool = False) -> None:
    """A person who can sign in at once (the sandbox's demo users, tests):
    ``temporary`` makes Cognito ask for a new password on first sign-in."""
    cognito_client.admin_create_user(
        UserPoolId=user_pool_id, Username=name, MessageAction="SUPPRESS",
        TemporaryPassword=password,
        UserAttributes=[{"Name": ORGANIZATION_ATTRIBUTE, "Value": organization},
                        {"Name": VERSION_ATTRIBUTE, "Value": "1"}])
    cognito_client.admin_add_user_to_group(UserPoolId=user_pool_id, Username=name,
                                           GroupName=role.value)
    if not temporary:
        cognito_client.admin_set_user_password(UserPoolId=user_pool_id, Username=name,
                                               Password=password, Permanent=True)
