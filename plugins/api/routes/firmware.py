"""REST routes of the firmware library: parse the request, call the firmware
use case with the caller's Actor, shape the answer.

Role checks, audit entries (refusals too) and which keys are trusted are the
use cases' (core.services.firmware): the API trusts only the team's list of
signing keys, never a key file that happens to sit on the server.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Any, Protocol

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Query

from core.errors import ValidationError
from core.model import Firmware
from core.model.roles import Actor
from core.ports.fleet_api.firmware import VerifyReport
from core.services.firmware import FirmwareService
from plugins.api import models, shapes


class HasFirmware(Protocol):
    """What these routes need of the API's services."""

    @property
    def firmware(self) -> FirmwareService: ...


def firmware_shape(service: FirmwareService, who: Actor, f: Firmware) -> dict[str, Any]:
    """The image as JSON, with the name of whoever signs with its key."""
    return {**shapes.firmware(f), "signed_by": service.signer(who, f.key_id),
            "created_at": f.created_at.isoformat()}


def verify_shape(report: VerifyReport) -> dict[str, Any]:
    return {"firmware_id": report.firmware_id, "ok": report.ok,
            "sha256_ok": report.sha256_ok, "signature_ok": report.signature_ok,
            "key_trusted": report.key_trusted, "message": report.message,
            "trusted_keys": list(report.trusted_keys)}


def b64(text: str, name: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"{name}: not valid base64") from None


def firmware_router(services: Callable[[], HasFirmware], actor: Callable[[], Actor]
                    ) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    # app includes this router: import when built
    from plugins.api.app import MAX_FIRMWARE_BYTES, PayloadTooLarge, envelope

    router = Router()

    def library() -> FirmwareService:
        return services().firmware

    @router.get("/firmware", summary="List firmware images (paged)", tags=["firmware"])
    def list_firmware(
        limit: Annotated[int | None, Query(ge=1, le=500)] = None,
        next: Annotated[str, Query(description="token from the previous page")] = "",
        device_type: Annotated[str, Query()] = "",
    ) -> Response[Any]:
        who = actor()
        service = library()
        page = service.page(who, device_type.strip() or None, limit=limit, next_token=next)
        return envelope({"items": [firmware_shape(service, who, f) for f in page.items],
                         "next": page.next})

    @router.post("/firmware/upload", summary="Import a firmware image (signed on import)",
                 tags=["firmware"])
    def upload_firmware(body: Annotated[models.FirmwareUpload, Body()]) -> Response[Any]:
        who = actor()
        image = b64(body.image_base64, "image_base64")
        if len(image) > MAX_FIRMWARE_BYTES:
            raise PayloadTooLarge(f"image_base64: {len(image)} bytes is more than "
                                  f"{MAX_FIRMWARE_BYTES}")
        signature = None if body.signature_base64 is None else b64(body.signature_base64,
                                                                   "signature_base64")
        service = library()
        fw = service.import_bytes(who, image, version=body.version,
                                  device_type=body.device_type,
                                  release_notes=body.release_notes,
                                  allow_downgrade=body.allow_downgrade,
                                  signature=signature, source="image_base64")
        return envelope(firmware_shape(service, who, fw), 201)

    @router.get("/firmware/<firmware_id>", summary="One firmware image", tags=["firmware"])
    def get_firmware(firmware_id: str) -> Response[Any]:
        who = actor()
        service = library()
        return envelope(firmware_shape(service, who, service.get(who, firmware_id)))

    @router.post("/firmware/<firmware_id>/verify",
                 summary="Re-check a stored image's SHA-256, signature and key",
                 tags=["firmware"])
    def verify_firmware(firmware_id: str) -> Response[Any]:
        return envelope(verify_shape(library().verify(actor(), firmware_id)))

    @router.delete("/firmware/<firmware_id>",
                   summary="Delete an image no unfinished deployment uses", tags=["firmware"])
    def delete_firmware(firmware_id: str) -> Response[Any]:
        deleted = library().delete(actor(), firmware_id)
        return envelope({"firmware_id": deleted.firmware_id, "deleted": True})

    return router
