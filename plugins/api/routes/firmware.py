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
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ValidationError
from core.model import Firmware
from core.model.roles import Actor
from core.ports.fleet_api.firmware import VerifyReport
from core.ports.signing_keys import TrustedKey
from core.services.firmware import FirmwareService
from plugins.api import models, shapes
from plugins.api.responses import MAX_FIRMWARE_BYTES, PayloadTooLarge, envelope


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


class TrustKeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    public_pem: str = Field(min_length=1, max_length=10000,
                            description="the Ed25519 public key, PEM")
    owner: str = Field(min_length=1, max_length=200, description="who signs with it")
    note: str = Field(default="", max_length=1000)


def trusted_key_shape(k: TrustedKey) -> dict[str, Any]:
    return {"key_id": k.key_id, "owner": k.owner, "public_pem": k.public_pem.decode("ascii"),
            "added_by": k.added_by, "added_at": k.added_at.isoformat(),
            "revoked_by": k.revoked_by,
            "revoked_at": None if k.revoked_at is None else k.revoked_at.isoformat(),
            "note": k.note, "active": k.active}


def firmware_router(services: Callable[[], HasFirmware], actor: Callable[[], Actor]
                    ) -> Router:
    """``actor`` takes the caller from the authorizer's claims (and counts the
    request against its rate)."""
    # app includes this router: import when built
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

    # ------------------------------------------------------------ the team's trusted keys
    @router.get("/firmware/keys", summary="The team's trusted code-signing keys",
                tags=["firmware"])
    def trusted_keys(include_revoked: Annotated[bool, Query()] = False) -> Response[Any]:
        keys = library().trusted_keys(actor(), include_revoked=include_revoked)
        return envelope({"items": [trusted_key_shape(k) for k in keys], "next": ""})

    @router.post("/firmware/keys", summary="Trust a code-signing key", tags=["firmware"])
    def trust_key(body: Annotated[TrustKeyIn, Body()]) -> Response[Any]:
        key = library().trust_key(actor(), body.public_pem.encode("ascii", "replace"),
                                  body.owner, body.note)
        return envelope(trusted_key_shape(key), 201)

    @router.post("/firmware/keys/<key_id>/revoke", summary="Stop trusting a code-signing key",
                 tags=["firmware"])
    def revoke_key(key_id: str) -> Response[Any]:
        return envelope(trusted_key_shape(library().revoke_key(actor(), key_id)))

    return router
