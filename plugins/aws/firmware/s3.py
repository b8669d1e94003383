"""The firmware library in an S3 bucket per stage (``iot-firmware-{stage}``).

Each image is two objects under ``firmware/{device type}/{release}/``:
``image.bin`` (the bytes, with its SHA-256 as object metadata) and
``manifest.json`` (the whole ``Firmware`` record, signature and key id
included). The manifest is a sidecar object rather than object metadata
because metadata is ASCII-only and 2 KB at most (release notes are neither),
and rather than a DynamoDB item because the bucket then holds the complete
library: copying or replicating it moves images and their signed manifests
together, and nothing else has to be kept in step. The manifest is written
last, so an image is in the library only once its bytes are stored and
checked.

Every put asks for server-side encryption (SSE-S3, or SSE-KMS with a key id);
a bucket policy on AWS should also deny unencrypted puts (docs/aws.md).

``read_image`` returns the bytes as stored, so the library's ``verify`` use
case can report a damaged image instead of failing; everything that hands an
image to a device (``verified_image``, ``download_url``) re-hashes the
stored object first and refuses one whose SHA-256 no longer matches.

Large images can be uploaded in parts (S3 multipart upload: a presigned PUT
per part), so a dropped connection costs one part, not the whole image: the
uploader asks which parts S3 already holds and sends only the rest. Either
way the image enters the library only through the same check (encrypted,
the announced size and SHA-256) before its manifest is written."""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from core.errors import NotFound, ValidationError
from core.model import Firmware, SemVer
from core.model.firmware import parse_firmware_id
from core.ports.firmware import DirectUploads, FirmwareRepository, UploadSlot, UploadSlots
from plugins.aws.settings import AwsSettings

PREFIX = "firmware/"
IMAGE = "image.bin"
MANIFEST = "manifest.json"
SHA256_METADATA = "sha256"  # x-amz-meta-sha256 on the image object
DEFAULT_URL_EXPIRY_S = 3600  # IoT Jobs' presignedUrlConfig default
# S3's limits for a multipart upload: every part but the last at least 5 MiB,
# at most 10,000 parts. 8 MiB parts make a 64 MiB image (the library's
# limit) 8 parts; a lost connection re-sends at most 8 MiB.
MIN_PART_SIZE = 5 << 20
DEFAULT_PART_SIZE = 8 << 20
MAX_PARTS = 10_000
_HASH_CHUNK = 1 << 20


def bucket_name(settings: AwsSettings) -> str:
    """``iot-firmware-{stage}``, named like the tables (serverless.yml the same)."""
    return f"iot-firmware-{settings.stage}"


def create_bucket(s3: Any, settings: AwsSettings) -> str:
    """The stage's firmware bucket (the sandbox and the tests; on AWS the
    Serverless stack declares it), with default encryption and no public
    access; kept as it is when it exists."""
    name = bucket_name(settings)
    request: dict[str, Any] = {"Bucket": name}
    if settings.region != "us-east-1":
        request["CreateBucketConfiguration"] = {"LocationConstraint": settings.region}
    try:
        s3.create_bucket(**request)
    except ClientError as exc:
        if _code(exc) not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    return name


@dataclass(frozen=True, slots=True)
class PresignedUpload:
    """Where and how to PUT an image: the headers are part of the signature,
    so the uploader must send them as given (the encryption header among them)."""

    url: str
    headers: dict[str, str]
    expires_in_s: int


@dataclass(frozen=True, slots=True)
class MultipartUpload:
    """An image being uploaded in parts: part ``n`` (1-based) holds bytes
    ``(n-1)*part_size`` up to ``n*part_size`` of the image; the last part
    may be shorter."""

    firmware_id: str
    upload_id: str
    key: str
    part_size: int
    part_count: int

    def part_range(self, part_number: int, size: int) -> tuple[int, int]:
        """The byte range ``[start, end)`` of part ``part_number`` of an image of ``size``."""
        if not 1 <= part_number <= self.part_count:
            raise ValidationError(f"firmware {self.firmware_id}: part {part_number} is not "
                                  f"one of 1..{self.part_count}")
        start = (part_number - 1) * self.part_size
        return start, min(start + self.part_size, size)


@dataclass(frozen=True, slots=True)
class UploadedPart:
    part_number: int
    size: int
    etag: str


def part_count(size: int, part_size: int) -> int:
    return max(1, math.ceil(size / part_size))


def _release(version: SemVer) -> str:
    """The version without build metadata: one image per release, as the SQL store."""
    return str(SemVer(version.major, version.minor, version.patch, version.prerelease))


def _type_prefix(device_type: str) -> str:
    # quoted, so a device type with '/' cannot reach into another one's prefix
    return f"{PREFIX}{quote(device_type, safe='')}/"


def _key(device_type: str, version: SemVer, leaf: str) -> str:
    return f"{_type_prefix(device_type)}{quote(_release(version), safe='')}/{leaf}"


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _missing(exc: ClientError) -> bool:
    return _code(exc) in ("NoSuchKey", "404", "NotFound")


def _manifest(firmware: Firmware) -> bytes:
    return json.dumps({
        "firmware_id": firmware.firmware_id,
        "device_type": firmware.device_type,
        "version": str(firmware.version),
        "size": firmware.size,
        "sha256": firmware.sha256,
        "signature": (None if firmware.signature is None
                      else base64.b64encode(firmware.signature).decode("ascii")),
        "key_id": firmware.key_id,
        "release_notes": firmware.release_notes,
        "created_at": firmware.created_at.isoformat(),
    }, sort_keys=True).encode()


def _from_manifest(body: bytes, where: str) -> Firmware:
    try:
        data = json.loads(body)
        signature = data.get("signature")
        return Firmware(
            version=SemVer.parse(data["version"]),
            device_type=data["device_type"],
            size=int(data["size"]),
            sha256=data["sha256"],
            signature=None if signature is None else base64.b64decode(signature),
            key_id=data.get("key_id") or "",
            release_notes=data.get("release_notes") or "",
            created_at=datetime.fromisoformat(data["created_at"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValidationError(f"firmware manifest {where} is damaged: {exc}") from None


class S3FirmwareRepository(FirmwareRepository, DirectUploads):
    def __init__(self, s3: Any, settings: AwsSettings, *, kms_key_id: str = "") -> None:
        self._s3 = s3
        self._settings = settings
        self.bucket = bucket_name(settings)
        self._kms_key_id = kms_key_id

    # ------------------------------------------------------------ encryption
    @property
    def encryption(self) -> dict[str, str]:
        """The SSE parameters of every PutObject (and of presigned uploads)."""
        if self._kms_key_id:
            return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}
        return {"ServerSideEncryption": "AES256"}

    def _encryption_headers(self) -> dict[str, str]:
        headers = {"x-amz-server-side-encryption": self.encryption["ServerSideEncryption"]}
        if self._kms_key_id:
            headers["x-amz-server-side-encryption-aws-kms-key-id"] = self._kms_key_id
        return headers

    # ------------------------------------------------------------ the port
    def add(self, firmware: Firmware, image: bytes) -> None:
        """Checked against the bytes before anything is stored (as the SQL
        store), then the image, then the manifest that makes it visible."""
        _check_image(firmware, image)
        self._refuse_duplicate(firmware)
        self._s3.put_object(
            Bucket=self.bucket, Key=_key(firmware.device_type, firmware.version, IMAGE),
            Body=image, ContentType="application/octet-stream",
            Metadata={SHA256_METADATA: firmware.sha256},
            ChecksumSHA256=base64.b64encode(bytes.fromhex(firmware.sha256)).decode("ascii"),
            **self.encryption)
        self._put_manifest(firmware)

    def get(self, device_type: str, version: SemVer) -> Firmware:
        key = _key(device_type, version, MANIFEST)
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"no firmware {version} for device type {device_type!r}") from None
            raise
        return _from_manifest(body, f"s3://{self.bucket}/{key}")

    def get_by_id(self, firmware_id: str) -> Firmware:
        device_type, version = parse_firmware_id(firmware_id)
        return self.get(device_type, version)

    def list(self, device_type: str | None = None) -> builtins.list[Firmware]:
        """Every manifest under the prefix, page by page (``MaxKeys`` is the
        settings' page size), ordered as the SQL store orders them."""
        prefix = PREFIX if device_type is None else _type_prefix(device_type)
        found: builtins.list[Firmware] = []
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix,
                                   "MaxKeys": self._settings.page_size}
        while True:
            page = self._s3.list_objects_v2(**request)
            for entry in page.get("Contents", []):
                key = str(entry["Key"])
                if key.endswith("/" + MANIFEST):
                    body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    found.append(_from_manifest(body, f"s3://{self.bucket}/{key}"))
            if not page.get("IsTruncated"):
                break
            request["ContinuationToken"] = page["NextContinuationToken"]
        return sorted(found, key=lambda f: (f.device_type, f.version))

    def read_image(self, device_type: str, version: SemVer) -> bytes:
        self.get(device_type, version)  # NotFound names the firmware, not the object
        key = _key(device_type, version, IMAGE)
        try:
            return bytes(self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"firmware {device_type}@{version} has no stored image") from None
            raise

    def delete(self, device_type: str, version: SemVer) -> None:
        """The manifest first: once it is gone the image is out of the library,
        even if deleting the bytes fails."""
        self.get(device_type, version)
        self._s3.delete_object(Bucket=self.bucket, Key=_key(device_type, version, MANIFEST))
        self._s3.delete_object(Bucket=self.bucket, Key=_key(device_type, version, IMAGE))

    # ------------------------------------------------------------ devices
    def verified_image(self, firmware_id: str) -> tuple[Firmware, bytes]:
        """The image re-hashed against its manifest: what a deployment hands out."""
        firmware = self.get_by_id(firmware_id)
        image = self.read_image(firmware.device_type, firmware.version)
        _check_image(firmware, image, stored=True)
        return firmware, image

    def download_url(self, firmware_id: str, *,
                     expires_in_s: int = DEFAULT_URL_EXPIRY_S) -> str:
        """A presigned GET for a device, issued only after the stored bytes
        were re-checked, so a swapped object is never handed to a device."""
        firmware, _image = self.verified_image(firmware_id)
        return str(self._s3.generate_presigned_url(
            "get_object", ExpiresIn=expires_in_s,
            Params={"Bucket": self.bucket,
                    "Key": _key(firmware.device_type, firmware.version, IMAGE)}))

    def object_key(self, firmware_id: str) -> str:
        """The image's key, for ``${aws:iot:s3-presigned-url:...}`` in job documents."""
        device_type, version = parse_firmware_id(firmware_id)
        return _key(device_type, version, IMAGE)

    # ------------------------------------------------------------ uploads
    def presigned_upload(self, firmware: Firmware, *,
                         expires_in_s: int = DEFAULT_URL_EXPIRY_S) -> PresignedUpload:
        """A presigned PUT for the image's bytes (large images go straight to
        S3, not through the API); ``complete_upload`` then checks them and
        publishes the manifest. The encryption header is signed in, so an
        upload without it is refused by S3."""
        self._refuse_duplicate(firmware)
        # If-None-Match (signed in like the rest): a URL handed out before the
        # release was published by someone else cannot overwrite its bytes
        url = self._s3.generate_presigned_url(
            "put_object", ExpiresIn=expires_in_s, HttpMethod="PUT",
            Params={"Bucket": self.bucket,
                    "Key": _key(firmware.device_type, firmware.version, IMAGE),
                    "Metadata": {SHA256_METADATA: firmware.sha256}, "IfNoneMatch": "*",
                    **self.encryption})
        headers = {**self._encryption_headers(), f"x-amz-meta-{SHA256_METADATA}": firmware.sha256,
                   "If-None-Match": "*"}
        return PresignedUpload(str(url), headers, expires_in_s)

    def discard_upload(self, firmware: Firmware) -> bool:
        """Deletes bytes uploaded through :meth:`presigned_upload` that were
        never completed (so the upload can start over: a presigned PUT never
        replaces an object). A published release is never touched. Returns
        whether there was something to delete."""
        self._refuse_duplicate(firmware)
        key = _key(firmware.device_type, firmware.version, IMAGE)
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return False
            raise
        self._s3.delete_object(Bucket=self.bucket, Key=key)
        return True

    def complete_upload(self, firmware: Firmware) -> None:
        """The uploaded object must be encrypted and hash to the manifest's
        SHA-256; otherwise it is deleted and the upload refused."""
        key = _key(firmware.device_type, firmware.version, IMAGE)
        try:
            head = self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                raise NotFound(f"firmware {firmware.firmware_id}: nothing was uploaded to "
                               f"s3://{self.bucket}/{key}") from None
            raise
        self._accept_uploaded(firmware, key, head)

    # ------------------------------------------------------------ multipart uploads
    def start_multipart_upload(self, firmware: Firmware, *,
                               part_size: int = DEFAULT_PART_SIZE) -> MultipartUpload:
        """CreateMultipartUpload for the image (encrypted, its SHA-256 as
        metadata, as a single PUT); the parts then go to
        :meth:`presign_part`'s URLs."""
        if part_size < MIN_PART_SIZE:
            raise ValidationError(f"firmware {firmware.firmware_id}: a part must be at least "
                                  f"{MIN_PART_SIZE} bytes (S3's minimum), got {part_size}")
        count = part_count(firmware.size, part_size)
        if count > MAX_PARTS:
            raise ValidationError(f"firmware {firmware.firmware_id}: {count} parts of "
                                  f"{part_size} bytes exceed S3's {MAX_PARTS}; use larger parts")
        self._refuse_duplicate(firmware)
        key = _key(firmware.device_type, firmware.version, IMAGE)
        answer = self._s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType="application/octet-stream",
            Metadata={SHA256_METADATA: firmware.sha256}, **self.encryption)
        return MultipartUpload(firmware.firmware_id, str(answer["UploadId"]), key,
                               part_size, count)

    def resume_multipart_upload(self, firmware: Firmware, upload_id: str, *,
                                part_size: int = DEFAULT_PART_SIZE) -> MultipartUpload:
        """The upload ``upload_id`` of this image, to carry on after an
        interruption (:meth:`uploaded_parts` says which parts are missing)."""
        if upload_id not in self.multipart_uploads(firmware):
            raise NotFound(f"firmware {firmware.firmware_id}: no upload {upload_id!r} in "
                           "progress (completed, aborted, or never started)")
        return MultipartUpload(firmware.firmware_id, upload_id,
                               _key(firmware.device_type, firmware.version, IMAGE),
                               part_size, part_count(firmware.size, part_size))

    def multipart_uploads(self, firmware: Firmware) -> builtins.list[str]:
        """The ids of this image's uploads in progress, oldest first
        (ListMultipartUploads, page by page)."""
        key = _key(firmware.device_type, firmware.version, IMAGE)
        request: dict[str, Any] = {"Bucket": self.bucket, "Prefix": key,
                                   "MaxUploads": self._settings.page_size}
        found: builtins.list[str] = []
        while True:
            page = self._s3.list_multipart_uploads(**request)
            found += [str(u["UploadId"]) for u in page.get("Uploads", []) if u["Key"] == key]
            if not page.get("IsTruncated"):
                return found
            request["KeyMarker"] = page["NextKeyMarker"]
            request["UploadIdMarker"] = page["NextUploadIdMarker"]

    def presign_part(self, upload: MultipartUpload, part_number: int, *,
                     expires_in_s: int = DEFAULT_URL_EXPIRY_S) -> PresignedUpload:
        """A presigned PUT for one part (UploadPart). Parts need no encryption
        header: the upload was created encrypted."""
        if not 1 <= part_number <= upload.part_count:
            raise ValidationError(f"firmware {upload.firmware_id}: part {part_number} is not "
                                  f"one of 1..{upload.part_count}")
        url = self._s3.generate_presigned_url(
            "upload_part", ExpiresIn=expires_in_s, HttpMethod="PUT",
            Params={"Bucket": self.bucket, "Key": upload.key, "UploadId": upload.upload_id,
                    "PartNumber": part_number})
        return PresignedUpload(str(url), {}, expires_in_s)

    def uploaded_parts(self, upload: MultipartUpload) -> builtins.list[UploadedPart]:
        """The parts S3 holds for the upload (ListParts, page by page), by part number."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": upload.key,
                                   "UploadId": upload.upload_id,
                                   "MaxParts": self._settings.page_size}
        parts: builtins.list[UploadedPart] = []
        try:
            while True:
                page = self._s3.list_parts(**request)
                parts += [UploadedPart(int(p["PartNumber"]), int(p["Size"]), str(p["ETag"]))
                          for p in page.get("Parts", [])]
                if not page.get("IsTruncated"):
                    break
                request["PartNumberMarker"] = page["NextPartNumberMarker"]
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise NotFound(f"firmware {upload.firmware_id}: no upload "
                               f"{upload.upload_id!r} in progress") from None
            raise
        return sorted(parts, key=lambda p: p.part_number)

    def missing_parts(self, upload: MultipartUpload, firmware: Firmware) -> builtins.list[int]:
        """The part numbers still to send (or to send again: a part of the
        wrong size, cut off by the interruption)."""
        held = {p.part_number: p.size for p in self.uploaded_parts(upload)}
        return [n for n in range(1, upload.part_count + 1)
                if held.get(n) != _span(upload.part_range(n, firmware.size))]

    def complete_multipart_upload(self, firmware: Firmware, upload: MultipartUpload) -> None:
        """Joins the parts (CompleteMultipartUpload with the parts S3 lists,
        so the uploader need not keep ETags), then the same check as a single
        upload: the image must be encrypted and hash to the manifest's SHA-256,
        otherwise it is deleted and refused. Missing parts refuse it before
        anything is joined, and the upload stays open to be resumed."""
        missing = self.missing_parts(upload, firmware)
        if missing:
            raise ValidationError(f"firmware {firmware.firmware_id}: parts {missing} of "
                                  f"{upload.part_count} are missing or incomplete; upload "
                                  "them and complete again")
        parts = self.uploaded_parts(upload)
        try:
            # If-None-Match: the bytes of a published release (or of another
            # upload that got there first) are never overwritten by this one
            self._s3.complete_multipart_upload(
                Bucket=self.bucket, Key=upload.key, UploadId=upload.upload_id, IfNoneMatch="*",
                MultipartUpload={"Parts": [{"PartNumber": p.part_number, "ETag": p.etag}
                                           for p in parts]})
        except ClientError as exc:
            if _code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            self._refuse_duplicate(firmware)
            raise ValidationError(
                f"firmware {firmware.firmware_id}: s3://{self.bucket}/{upload.key} was stored "
                "by another upload meanwhile; complete or delete that one first") from None
        head = self._s3.head_object(Bucket=self.bucket, Key=upload.key)
        self._accept_uploaded(firmware, upload.key, head)

    def abort_multipart_upload(self, upload: MultipartUpload) -> None:
        """Drops the upload and the parts S3 holds for it (S3 bills stored
        parts until then; a lifecycle rule should abort forgotten ones)."""
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=upload.key,
                                            UploadId=upload.upload_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                raise

    def _accept_uploaded(self, firmware: Firmware, key: str, head: dict[str, Any]) -> None:
        """An uploaded image enters the library only encrypted and with the
        announced size and SHA-256 (hashed as it streams, not held in memory);
        otherwise the object is deleted and the upload refused."""
        if not head.get("ServerSideEncryption"):
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise ValidationError(f"firmware {firmware.firmware_id}: the upload was not "
                                  "encrypted at rest; upload it again with the given headers")
        body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        size = 0
        for chunk in body.iter_chunks(_HASH_CHUNK):
            digest.update(chunk)
            size += len(chunk)
        try:
            _check_digest(firmware, size, digest.hexdigest())
        except ValidationError:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise
        self._refuse_duplicate(firmware)
        self._put_manifest(firmware)

    # ------------------------------------------------------------ the DirectUploads port
    def begin(self, firmware: Firmware, *, multipart: bool,
              part_size: int = DEFAULT_PART_SIZE) -> UploadSlots:
        """A single presigned PUT, or a multipart upload with a URL per part."""
        if not multipart:
            put = self.presigned_upload(firmware)
            return UploadSlots("", firmware.size, 1, (), (
                UploadSlot(1, 0, firmware.size, put.url, put.headers),), put.expires_in_s)
        upload = self.start_multipart_upload(firmware, part_size=part_size)
        return self._part_slots(firmware, upload, ())

    def slots(self, firmware: Firmware, upload_id: str, part_size: int) -> UploadSlots:
        """What S3 holds (ListParts; for a single PUT, whether the object is
        there) and fresh URLs for the rest: a resumed upload sends only those."""
        if not upload_id:
            self._refuse_duplicate(firmware)
            key = _key(firmware.device_type, firmware.version, IMAGE)
            try:
                self._s3.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if not _missing(exc):
                    raise
                return self.begin(firmware, multipart=False)
            return UploadSlots("", firmware.size, 1, (1,), (), DEFAULT_URL_EXPIRY_S)
        upload = self.resume_multipart_upload(firmware, upload_id, part_size=part_size)
        missing = set(self.missing_parts(upload, firmware))
        held = tuple(n for n in range(1, upload.part_count + 1) if n not in missing)
        return self._part_slots(firmware, upload, held)

    def _part_slots(self, firmware: Firmware, upload: MultipartUpload,
                    held: tuple[int, ...]) -> UploadSlots:
        slots = []
        for n in range(1, upload.part_count + 1):
            if n in held:
                continue
            start, end = upload.part_range(n, firmware.size)
            put = self.presign_part(upload, n)
            slots.append(UploadSlot(n, start, end, put.url, put.headers))
        return UploadSlots(upload.upload_id, upload.part_size, upload.part_count, held,
                           tuple(slots), DEFAULT_URL_EXPIRY_S)

    def finish(self, firmware: Firmware, upload_id: str, part_size: int) -> None:
        if not upload_id:
            self.complete_upload(firmware)
            return
        upload = self.resume_multipart_upload(firmware, upload_id, part_size=part_size)
        self.complete_multipart_upload(firmware, upload)

    def abort(self, firmware: Firmware, upload_id: str, part_size: int) -> None:
        if not upload_id:
            self.discard_upload(firmware)
            return
        key = _key(firmware.device_type, firmware.version, IMAGE)
        self.abort_multipart_upload(MultipartUpload(firmware.firmware_id, upload_id, key,
                                                    part_size,
                                                    part_count(firmware.size, part_size)))

    # ------------------------------------------------------------ helpers
    def _put_manifest(self, firmware: Firmware) -> None:
        """``If-None-Match: *``: of two people publishing the same release at
        once, S3 lets exactly one manifest in; the other is refused."""
        try:
            self._s3.put_object(
                Bucket=self.bucket, Key=_key(firmware.device_type, firmware.version, MANIFEST),
                Body=_manifest(firmware), ContentType="application/json", IfNoneMatch="*",
                **self.encryption)
        except ClientError as exc:
            if _code(exc) in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise _duplicate(firmware) from None
            raise

    def _refuse_duplicate(self, firmware: Firmware) -> None:
        try:
            self._s3.head_object(Bucket=self.bucket,
                                 Key=_key(firmware.device_type, firmware.version, MANIFEST))
        except ClientError as exc:
            if _missing(exc):
                return
            raise
        raise _duplicate(firmware)


def _duplicate(firmware: Firmware) -> ValidationError:
    return ValidationError(
        f"firmware {_release(firmware.version)} for {firmware.device_type} is already "
        "in the library; publish a new version instead of replacing an image")


def _span(byte_range: tuple[int, int]) -> int:
    return byte_range[1] - byte_range[0]


def _check_image(firmware: Firmware, image: bytes, *, stored: bool = False) -> None:
    _check_digest(firmware, len(image), hashlib.sha256(image).hexdigest(), stored=stored)


def _check_digest(firmware: Firmware, size: int, digest: str, *, stored: bool = False) -> None:
    what = "stored image" if stored else "image"
    if size != firmware.size:
        raise ValidationError(f"firmware {firmware.firmware_id}: {what} is {size} bytes "
                              f"but the metadata says {firmware.size}")
    if digest != firmware.sha256:
        raise ValidationError(f"firmware {firmware.firmware_id}: {what} SHA-256 is {digest}, "
                              f"the metadata says {firmware.sha256}")
