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
from core.ports.firmware import UploadSlots
from core.ports.fleet_api.firmware import VerifyReport
from core.ports.signing_keys import TrustedKey
from core.services.firmware import FirmwareService
from core.services.firmware_uploads import (
    DEFAULT_PART_SIZE,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    UploadTicket,
)
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


class UploadStartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    device_type: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64)
    size: int = Field(ge=1, description="the image's size in bytes")
    sha256: str = Field(min_length=64, max_length=64, description="the image's SHA-256, hex")
    allow_downgrade: bool = False
    multipart: bool | None = Field(
        default=None, description="upload in parts (default: when larger than one part)")
    part_size: int = Field(default=DEFAULT_PART_SIZE, ge=MIN_PART_SIZE, le=MAX_PART_SIZE)


class UploadCompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature_base64: str = Field(
        min_length=1, max_length=1000,
        description="ECDSA P-256 over the image's SHA-256 (DER, base64), made with the "
        "uploader's code-signing key; the key must be in the team's trusted keys")
    release_notes: str = Field(default="", max_length=20000)
    allow_downgrade: bool = False


def upload_shape(ticket: UploadTicket, slots: UploadSlots) -> dict[str, Any]:
    """The ticket (keep it to resume) and where each missing part goes."""
    return {"upload": ticket.token(), "firmware_id": ticket.firmware_id,
            "method": "multipart" if slots.upload_id else "single",
            "size": ticket.size, "sha256": ticket.sha256, "part_size": slots.part_size,
            "part_count": slots.part_count, "held": list(slots.held),
            "expires_in_s": slots.expires_in_s,
            "parts": [{"part_number": p.part_number, "start": p.start, "end": p.end,
                       "url": p.url, "headers": p.headers} for p in slots.slots]}


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
        # the role before the (large) body is decoded: no 400 for someone who gets 403
        library().check_import(who, f"{body.device_type.strip()}@{body.version.strip()}")
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

    # ------------------------------------------------------------ direct uploads (presigned)
    @router.post("/firmware/uploads",
                 summary="Start uploading an image straight to storage (presigned URLs)",
                 tags=["firmware"])
    def start_upload(body: Annotated[UploadStartIn, Body()]) -> Response[Any]:
        ticket, slots = library().start_upload(
            actor(), device_type=body.device_type, version=body.version, size=body.size,
            sha256=body.sha256, allow_downgrade=body.allow_downgrade, multipart=body.multipart,
            part_size=body.part_size)
        return envelope(upload_shape(ticket, slots), 201)

    @router.get("/firmware/uploads/<upload>",
                summary="Resume an upload: the parts storage holds, URLs for the rest",
                tags=["firmware"])
    def upload_status(upload: str) -> Response[Any]:
        ticket, slots = library().upload_status(actor(), upload)
        return envelope(upload_shape(ticket, slots))

    @router.post("/firmware/uploads/<upload>/complete",
                 summary="Check the uploaded image (SHA-256, signature by a trusted key) and "
                 "add it to the library", tags=["firmware"])
    def complete_upload(upload: str, body: Annotated[UploadCompleteIn, Body()]
                        ) -> Response[Any]:
        who = actor()
        service = library()
        service.check_import(who, "upload")
        fw = service.complete_upload(who, upload,
                                     signature=b64(body.signature_base64, "signature_base64"),
                                     release_notes=body.release_notes,
                                     allow_downgrade=body.allow_downgrade)
        return envelope(firmware_shape(service, who, fw), 201)

    @router.delete("/firmware/uploads/<upload>",
                   summary="Abort an upload and drop the parts sent", tags=["firmware"])
    def abort_upload(upload: str) -> Response[Any]:
        ticket = library().abort_upload(actor(), upload)
        return envelope({"firmware_id": ticket.firmware_id, "aborted": True})

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
