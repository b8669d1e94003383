"""An admin sets someone's password on AWS (PUT /users/{name}/password, and
POST /users with a password): Cognito keeps it, as a temporary password the
person replaces at their next sign-in, and their sessions end — on the hub the
same use case stores a hash. Before, both answered 404 on AWS, and a person
added without an e-mail address could not sign in at all."""

from __future__ import annotations

import pytest

from core.errors import ValidationError
from core.model.roles import Actor, Role
from core.ports.audit import AuditFilter
from plugins.api.wiring import build_api_services
from plugins.aws.backend import build_aws_backend_for
from plugins.aws.cognito.signin import SessionEnded
from plugins.aws.dynamodb.audit import DynamoAuditTrail
from tests.integration.aws.cognito_pool import ORG, CognitoStage

NEW = "Temp-Passw0rd!reset"


def _status(cognito: CognitoStage, name: str) -> str:
    return str(cognito.admin.admin_get_user(UserPoolId=cognito.settings.user_pool_id,
                                            Username=name)["UserStatus"])


def test_an_admins_password_reset_is_temporary_and_signs_the_person_out(
        cognito: CognitoStage) -> None:
    tokens = cognito.tokens(Role.SUPPORT)
    backend = build_aws_backend_for(cognito.settings)
    users = build_api_services(backend).users
    ada = Actor("ada", Role.ADMIN, ORG)

    users.set_password(ada, "sue", NEW)

    assert _status(cognito, "sue") == "FORCE_CHANGE_PASSWORD"
    with pytest.raises(SessionEnded):
        cognito.sign_in().refresh(tokens)
    assert isinstance(backend.audit, DynamoAuditTrail)
    (entry,) = backend.audit.search(AuditFilter(action="user.password"))
    assert (entry.actor, entry.subject) == ("ada", "sue")


def test_a_person_added_with_a_password_can_sign_in_and_a_weak_one_is_refused(
        cognito: CognitoStage) -> None:
    users = build_api_services(build_aws_backend_for(cognito.settings)).users
    ada = Actor("ada", Role.ADMIN, ORG)

    users.add_user(ada, "ned", Role.TECHNICIAN, password=NEW)
    assert _status(cognito, "ned") == "FORCE_CHANGE_PASSWORD"
    with pytest.raises(ValidationError, match=r"^password: "):
        users.set_password(ada, "ned", "short")
