"""Device shadows in AWS IoT (GetThingShadow / UpdateThingShadow).

The shadow's own ``version`` is the optimistic lock, as in the local hub's
shadow service: an update sent with the version it was based on is refused by
IoT Core with 409 Conflict when the shadow moved on, and that becomes the same
``ConcurrentModification`` the local backend raises, so pages and the REST API
say "reload and apply your change again" whichever backend answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from core.errors import ConcurrentModification, NotFound, SmartIotError
from core.model.ids import validate_device_id
from core.ports.shadows import ShadowDocument, ShadowService


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _document(device_id: str, body: bytes) -> ShadowDocument:
    try:
        data = json.loads(body)
        state = data.get("state") or {}
        stamp = data.get("timestamp")
        return ShadowDocument(
            device_id=device_id,
            desired=dict(state.get("desired") or {}),
            reported=dict(state.get("reported") or {}),
            version=int(data.get("version", 0)),
            updated_at=None if stamp is None else datetime.fromtimestamp(int(stamp), UTC),
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise SmartIotError(f"the shadow of {device_id} from AWS IoT is not a shadow "
                            f"document: {exc}") from None


class IotDataShadowService(ShadowService):
    """The classic (unnamed) shadow of the thing named by the device id, as
    the thing registry names things (plugins/aws/things.py)."""

    def __init__(self, iot_data: Any) -> None:
        self._iot_data = iot_data

    def get(self, device_id: str) -> ShadowDocument:
        """A device without a shadow yet has an empty one (version 0), as locally."""
        thing = validate_device_id(device_id)
        try:
            response = self._iot_data.get_thing_shadow(thingName=thing)
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return ShadowDocument(device_id)
            raise
        return _document(device_id, response["payload"].read())

    def update_desired(self, device_id: str, desired: dict[str, Any], *,
                       expected_version: int | None = None) -> ShadowDocument:
        """``expected_version`` 0 (a shadow not yet created) sends no version:
        IoT Core has nothing to compare it with."""
        thing = validate_device_id(device_id)
        request: dict[str, Any] = {"state": {"desired": desired}}
        if expected_version:
            request["version"] = expected_version
        try:
            self._iot_data.update_thing_shadow(thingName=thing,
                                               payload=json.dumps(request).encode())
        except ClientError as exc:
            code = _code(exc)
            if code == "ConflictException":
                current = self.get(device_id)
                raise ConcurrentModification(
                    f"the shadow of {device_id} changed meanwhile (expected version "
                    f"{expected_version}, it is now version {current.version}); reload and "
                    "apply your change again") from None
            if code == "ResourceNotFoundException":
                raise NotFound(f"device {device_id!r} is not a thing in AWS IoT; register "
                               "it first") from None
            raise
        return self.get(device_id)
