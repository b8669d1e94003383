"""A stage with its tables and its Cognito user pool on the test's moto
server, one person per role in organization acme, and the sign-in of each:
what the sandbox creates, made here for the Cognito tests."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from core.model.roles import Role
from plugins.aws.cognito.pool import add_user_with_password, create_user_pool
from plugins.aws.cognito.signin import CognitoPool, CognitoSignIn, Tokens
from plugins.aws.settings import AwsSettings
from tests.integration.aws.conftest import AwsSandbox

PASSWORD = "Correct-Horse-9-Battery"
ORG = "acme"
USERS = {Role.TECHNICIAN: "tom", Role.SUPPORT: "sue", Role.ENGINEER: "eve", Role.ADMIN: "ada"}


@dataclass
class CognitoStage:
    aws: AwsSandbox
    settings: AwsSettings  # names the pool and the app client
    admin: Any  # a boto3 cognito-idp client with credentials (the admin APIs)
    _tokens: dict[Role, Tokens] = field(default_factory=dict)

    @property
    def pool(self) -> CognitoPool:
        return CognitoPool.from_settings(self.settings)

    def sign_in(self) -> CognitoSignIn:
        return CognitoSignIn(self.pool)

    def add(self, name: str, role: Role, organization: str = ORG, *,
            password: str = PASSWORD, temporary: bool = False) -> None:
        add_user_with_password(self.admin, self.settings.user_pool_id, name, role,
                               organization, password, temporary=temporary)

    def tokens(self, role: Role) -> Tokens:
        """The demo person of ``role`` signed in with SRP (once per test)."""
        if role not in self._tokens:
            result = self.sign_in().sign_in(USERS[role], PASSWORD)
            assert isinstance(result, Tokens), result
            self._tokens[role] = result
        return self._tokens[role]


def cognito_stage(aws: AwsSandbox) -> CognitoStage:
    """Tables, bucket, user pool and one person per role on ``aws``'s stage
    (the ``cognito`` fixture of conftest.py)."""
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.firmware.s3 import create_bucket

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    admin = aws.client("cognito-idp")
    pool = create_user_pool(settings, admin)
    create_tables(aws.client("dynamodb"), settings)
    create_bucket(aws.client("s3"), settings)
    stage = CognitoStage(aws, replace(settings, user_pool_id=pool.user_pool_id,
                                      user_pool_client_id=pool.client_id), admin)
    for role, name in USERS.items():
        stage.add(name, role)
    return stage
