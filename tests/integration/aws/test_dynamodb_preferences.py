"""Per-person preferences on AWS (plugins/aws/dynamodb/preferences.py), on
moto's server: a technician's settings follow them to any console, and of two
consoles saving at once exactly one wins (409 for the other), as on the hub."""

from __future__ import annotations

import pytest

from core.errors import ConcurrentModification
from core.model.roles import Actor, Role
from tests.integration.aws.conftest import DynamoFleet


def test_preferences_round_trip_and_a_stale_save_is_refused(dynamo: DynamoFleet) -> None:
    store = dynamo.backend.preferences
    assert store.get("tess").version == 0 and store.get("tess").values == {}
    first = store.save("tess", {"theme": "dark", "page": "alerts"}, expected_version=0)
    assert first.version == 1
    other_console = dynamo.second_backend().preferences
    assert other_console.get("tess").values == {"theme": "dark", "page": "alerts"}
    assert other_console.save("tess", {"theme": "light"}, expected_version=1).version == 2
    with pytest.raises(ConcurrentModification, match="now version 2"):
        store.save("tess", {"theme": "dark"}, expected_version=1)
    store.save("new.person", {"theme": "dark"}, expected_version=0)
    with pytest.raises(ConcurrentModification):  # both consoles saved a first version
        other_console.save("new.person", {"theme": "light"}, expected_version=0)
    assert store.get("tess").values == {"theme": "light"}
    assert store.save("tess", {"page": "devices"}).version == 3  # no If-Match: last wins
    assert store.get("ada").values == {}  # one person's settings are theirs only


def test_the_users_service_on_aws_keeps_ones_preferences(dynamo: DynamoFleet) -> None:
    from core.services.wiring import build_services

    users = build_services(dynamo.backend).users
    tess = Actor("tess", Role.TECHNICIAN, organization="demo")
    saved = users.set_preferences(tess, {"alert_filter": "critical"}, expected_version=0)
    assert users.preferences(tess).values == {"alert_filter": "critical"}
    assert saved.version == 1
    (entry,) = [e for e in dynamo.backend.audit.entries() if e.action == "user.preferences"]
    assert entry.actor == "tess"
