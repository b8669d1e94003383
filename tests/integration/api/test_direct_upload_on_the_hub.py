"""The hub's API (SQL store) has no storage that takes an image from the
uploader directly: ``/firmware/uploads`` says so and how to send it instead,
after the role check; a console on the hub keeps ``POST /firmware/upload``."""

from __future__ import annotations

from core.model.roles import Role
from tests.integration.api.conftest import Api


def test_direct_upload_is_not_offered_on_the_hub_and_says_what_to_do(api: Api) -> None:
    body = {"device_type": "pump", "version": "1.0.0", "size": 10, "sha256": "a" * 64}
    refused = api.client.call("POST", "/firmware/uploads", body, role=Role.ENGINEER)
    assert refused.status == 404, refused.body
    assert "send the image in the request instead (POST /firmware/upload)" in \
        refused.error["message"]
    # the role still comes first
    assert api.client.call("POST", "/firmware/uploads", body, role=Role.SUPPORT).status == 403
