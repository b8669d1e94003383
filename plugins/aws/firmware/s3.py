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
stored object first and refuses one whose SHA-256 no longer matches."""

from __future__ import annotations

import base64
import builtins
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from botocore.exceptions import ClientError

from core.errors import NotFound, ValidationError
from core.model import Firmware, SemVer
from core.model.firmware import parse_firmware_id
from core.ports.firmware import FirmwareRepository
from plugins.aws.settings import AwsSettings

PREFIX = "firmware/"
IMAGE = "image.bin"
MANIFEST = "manifest.json"
SHA256_METADATA = "sha256"  # x-amz-meta-sha256 on the image object
DEFAULT_URL_EXPIRY_S = 3600  # IoT Jobs' presignedUrlConfig default


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


class S3FirmwareRepository(FirmwareRepository):
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
        url = self._s3.generate_presigned_url(
            "put_object", ExpiresIn=expires_in_s, HttpMethod="PUT",
            Params={"Bucket": self.bucket,
                    "Key": _key(firmware.device_type, firmware.version, IMAGE),
                    "Metadata": {SHA256_METADATA: firmware.sha256},
                    **self.encryption})
        headers = {**self._encryption_headers(), f"x-amz-meta-{SHA256_METADATA}": firmware.sha256}
        return PresignedUpload(str(url), headers, expires_in_s)

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
        if not head.get("ServerSideEncryption"):
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise ValidationError(f"firmware {firmware.firmware_id}: the upload was not "
                                  "encrypted at rest; upload it again with the given headers")
        image = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        try:
            _check_image(firmware, image)
        except ValidationError:
            self._s3.delete_object(Bucket=self.bucket, Key=key)
            raise
        self._refuse_duplicate(firmware)
        self._put_manifest(firmware)

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


def _check_image(firmware: Firmware, image: bytes, *, stored: bool = False) -> None:
    what = "stored image" if stored else "image"
    if len(image) != firmware.size:
        raise ValidationError(f"firmware {firmware.firmware_id}: {what} is {len(image)} bytes "
                              f"but the metadata says {firmware.size}")
    digest = hashlib.sha256(image).hexdigest()
    if digest != firmware.sha256:
        raise ValidationError(f"firmware {firmware.firmware_id}: {what} SHA-256 is {digest}, "
                              f"the metadata says {firmware.sha256}")
