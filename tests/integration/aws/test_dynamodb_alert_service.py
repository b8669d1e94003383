"""The devices and alerts use cases over the DynamoDB adapters: the very tests
that hold them on SQLite and PostgreSQL (role checks and audit, organization
scope, stale edits, pages cut in the store, the alert engine's lifecycle and
history), collected here again with a store whose registry and alerts are
DynamoDB behind moto's server. Services are built by the same build_services."""

from __future__ import annotations

import pytest

from tests.integration.alerts.test_alert_history import (
    test_reopened_alert_keeps_its_resolution_in_the_history,
    test_snooze_and_a_lost_race_leave_a_true_history,
)
from tests.integration.alerts.test_alert_service import (
    fleet,
    test_a_person_of_another_organization_cannot_see_or_handle_an_alert,
    test_bulk_actions_refuse_each_alert_and_audit_each_attempt,
    test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way,
    test_pages_are_cut_in_the_store_within_the_organization,
)
from tests.integration.alerts.test_engine_sqlite import (
    rule_types,
    test_lifecycle_raise_ack_autoresolve_reopen,
    test_no_data_and_escalation_on_tick,
)
from tests.integration.aws.conftest import DynamoBackedStore

__all__ = [
    "fleet",
    "rule_types",
    "test_a_person_of_another_organization_cannot_see_or_handle_an_alert",
    "test_bulk_actions_refuse_each_alert_and_audit_each_attempt",
    "test_each_change_is_refused_to_roles_without_the_grant_and_audited_either_way",
    "test_lifecycle_raise_ack_autoresolve_reopen",
    "test_no_data_and_escalation_on_tick",
    "test_pages_are_cut_in_the_store_within_the_organization",
    "test_reopened_alert_keeps_its_resolution_in_the_history",
    "test_snooze_and_a_lost_race_leave_a_true_history",
]


@pytest.fixture
def store(dynamo_store: DynamoBackedStore) -> DynamoBackedStore:
    return dynamo_store

