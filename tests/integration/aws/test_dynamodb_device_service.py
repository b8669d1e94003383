"""The devices use cases over the DynamoDB registry: the tests that hold them
on SQLite and PostgreSQL (role checks and audit, organization scope, an edit
from an older version refused), collected again with a store whose registry
and alerts (and rules and audit trail) are DynamoDB behind moto's server."""

from __future__ import annotations

import pytest

from tests.integration.aws.conftest import DynamoBackedStore
from tests.integration.services.test_device_service import (
    fleet,
    test_a_person_of_another_organization_cannot_see_or_change_a_device,
    test_an_edit_from_an_older_version_is_refused_and_changes_nothing,
    test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way,
)

__all__ = [
    "fleet",
    "test_a_person_of_another_organization_cannot_see_or_change_a_device",
    "test_an_edit_from_an_older_version_is_refused_and_changes_nothing",
    "test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way",
]


@pytest.fixture
def store(dynamo_store: DynamoBackedStore) -> DynamoBackedStore:
    return dynamo_store
