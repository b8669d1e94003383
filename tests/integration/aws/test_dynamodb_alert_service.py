"""The devices and alerts use cases over the DynamoDB adapters: the very tests
that hold them on SQLite and PostgreSQL (role checks and audit, organization
scope, stale edits, pages cut in the store, the alert engine's lifecycle and
history, rules scoped to an organization, every action audited), collected here
again with a store whose registry, alerts, rules and audit trail are DynamoDB
behind moto's server. Services are built by the same build_services."""

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
    test_importing_and_default_rules_need_rule_edit,
    test_pages_are_cut_in_the_store_within_the_organization,
    test_rules_are_checked_by_their_type_before_they_are_stored,
    test_rules_are_scoped_to_the_organization_they_apply_to,
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
    "test_importing_and_default_rules_need_rule_edit",
    "test_lifecycle_raise_ack_autoresolve_reopen",
    "test_no_data_and_escalation_on_tick",
    "test_pages_are_cut_in_the_store_within_the_organization",
    "test_reopened_alert_keeps_its_resolution_in_the_history",
    "test_rules_are_checked_by_their_type_before_they_are_stored",
    "test_rules_are_scoped_to_the_organization_they_apply_to",
    "test_snooze_and_a_lost_race_leave_a_true_history",
]


@pytest.fixture
def store(dynamo_store: DynamoBackedStore) -> DynamoBackedStore:
    return dynamo_store

