"""The firmware library on S3 behind moto's server: every put encrypted, the
SHA-256 checked on the way in and again before a device gets the image,
uploads and downloads through presigned URLs with a real HTTP client, listing
page by page; and the library's own use-case tests run again over it."""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from core.crypto.keystore import CodeSigningKeys
from core.errors import NotFound, ValidationError
from core.model import Device, DeviceStatus, Firmware, SemVer
from core.model.roles import Actor
from core.store import Store
from tests.integration.aws.conftest import ApiCalls, AwsSandbox, record_calls
from tests.integration.firmware.conftest import engineer, file_keyring, keys, library
from tests.integration.firmware.sessions import fleet_api
from tests.integration.firmware.test_library import (
    test_duplicates_and_downgrades_are_refused,
    test_roles_are_enforced_in_the_library,
    test_vendor_signature_must_verify_against_a_trusted_key,
    test_version_distribution_and_audit,
)

__all__ = [
    "engineer", "file_keyring", "keys", "library",
    "test_duplicates_and_downgrades_are_refused",
    "test_roles_are_enforced_in_the_library",
    "test_vendor_signature_must_verify_against_a_trusted_key",
    "test_version_distribution_and_audit",
]


@dataclass
class Library:
    repo: Any  # plugins.aws.firmware.s3.S3FirmwareRepository
    s3: Any  # a plain client of the test, outside the repository
    calls: ApiCalls


@pytest.fixture
def s3_library(aws: AwsSandbox) -> Library:
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.firmware.s3 import S3FirmwareRepository, create_bucket
    from plugins.aws.settings import AwsSettings

    settings = AwsSettings(region=aws.region, stage=aws.stage, endpoint_url=aws.endpoint_url,
                           page_size=2)
    backend = build_aws_backend_for(settings)
    repo = backend.firmware
    assert isinstance(repo, S3FirmwareRepository)  # the aws backend's firmware port
    s3 = backend.clients.client("s3")
    create_bucket(s3, settings)
    return Library(repo, aws.client("s3"), record_calls(s3, "s3"))


@pytest.fixture
def store(s3_library: Library, tmp_path: Path) -> Iterator[Any]:
    """The firmware tests' fleet (tests/integration/firmware/conftest.py) with
    the firmware library on S3; the other ports stay on SQLite."""
    with Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}") as sql:
        sql.registry.upsert_many(
            [Device(f"pump-{i:03d}", device_type="pump", firmware_version="1.0.0",
                    status=DeviceStatus.ONLINE if i % 2 else DeviceStatus.OFFLINE,
                    tags=frozenset({"north"} if i < 5 else {"south"}))
             for i in range(10)]
            + [Device(f"env-{i:03d}", device_type="environmental", firmware_version="3.1.0")
               for i in range(4)])
        yield S3BackedStore(sql, s3_library.repo)


class S3BackedStore:
    def __init__(self, sql: Store, firmware: Any) -> None:
        self._sql = sql
        self.firmware = firmware

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sql, name)


def image_of(version: str, data: bytes, device_type: str = "pump", **extra: Any) -> Firmware:
    return Firmware(SemVer.parse(version), device_type, len(data),
                    hashlib.sha256(data).hexdigest(), **extra)


def http(method: str, url: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    # an explicit type: urllib would send a form type, which the server parses as a form
    sent = {"Content-Type": "application/octet-stream", **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


# ------------------------------------------------------------------ tests

def test_every_put_is_encrypted_and_carries_the_hash_and_signed_manifest(
        s3_library: Library) -> None:
    repo = s3_library.repo
    data = b"pump image" * 300
    fw = image_of("1.2.0+build.7", data, signature=b"\x30\x44sig", key_id="k-1",
                  release_notes="Pumpen-Regelung überarbeitet")
    repo.add(fw, data)
    puts = s3_library.calls.named("PutObject")
    assert len(puts) == 2 and all(p["ServerSideEncryption"] == "AES256" for p in puts)
    image_key = repo.object_key(fw.firmware_id)
    head = s3_library.s3.head_object(Bucket=repo.bucket, Key=image_key)
    assert head["ServerSideEncryption"] == "AES256"
    assert head["Metadata"]["sha256"] == fw.sha256
    manifest_key = image_key.rsplit("/", 1)[0] + "/manifest.json"
    assert s3_library.s3.head_object(Bucket=repo.bucket,
                                     Key=manifest_key)["ServerSideEncryption"] == "AES256"
    assert repo.get_by_id("pump@1.2.0") == fw  # signature, key, notes, build all round-trip
    assert repo.read_image("pump", SemVer.parse("1.2.0")) == data


def test_an_image_that_does_not_match_its_sha256_is_refused_and_nothing_is_stored(
        s3_library: Library) -> None:
    repo = s3_library.repo
    claimed = image_of("1.0.0", b"the real image")
    with pytest.raises(ValidationError, match=r"pump@1\.0\.0: image SHA-256 is [0-9a-f]{64}"):
        repo.add(claimed, b"the evil image")
    assert s3_library.calls.named("PutObject") == []
    assert repo.list() == []
    repo.add(claimed, b"the real image")
    with pytest.raises(ValidationError, match="already in the library"):
        repo.add(claimed, b"the real image")


def test_a_swapped_object_is_never_handed_to_a_device(
        s3_library: Library, store: Any, keys: CodeSigningKeys, engineer: Actor) -> None:
    library = fleet_api(store, keys, engineer).firmware
    fw = library.import_bytes(b"good image" * 50, version="1.0.1", device_type="pump")
    repo = s3_library.repo
    url = repo.download_url(fw.firmware_id)
    assert http("GET", url) == (200, b"good image" * 50)
    # someone with bucket access replaces the bytes behind the manifest
    s3_library.s3.put_object(Bucket=repo.bucket, Key=repo.object_key(fw.firmware_id),
                             Body=b"evil image" * 50, ServerSideEncryption="AES256")
    with pytest.raises(ValidationError, match="stored image SHA-256 is"):
        repo.download_url(fw.firmware_id)
    report = library.verify(fw.firmware_id)  # the library's verify reports it, no crash
    assert not report.ok and not report.sha256_ok and not report.signature_ok


def test_upload_through_a_presigned_put_with_a_real_http_client(s3_library: Library) -> None:
    repo = s3_library.repo
    data = bytes(range(256)) * 400  # 100 KiB
    fw = image_of("2.0.0", data)
    upload = repo.presigned_upload(fw)
    assert upload.headers["x-amz-server-side-encryption"] == "AES256"
    # the encryption header is signed into the URL, so S3 refuses an upload
    # without it (moto does not check presigned signatures: docs/aws.md, Gaps)
    signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert "x-amz-server-side-encryption" in signed
    assert http("PUT", upload.url, data, upload.headers)[0] == 200
    with pytest.raises(NotFound):
        repo.get_by_id(fw.firmware_id)  # bytes alone are not yet in the library
    repo.complete_upload(fw)
    assert [f.firmware_id for f in repo.list("pump")] == ["pump@2.0.0"]
    assert repo.read_image("pump", fw.version) == data
    head = s3_library.s3.head_object(Bucket=repo.bucket, Key=repo.object_key(fw.firmware_id))
    assert head["ServerSideEncryption"] == "AES256"
    # a device downloads it through a presigned GET
    assert http("GET", repo.download_url(fw.firmware_id)) == (200, data)


def test_an_upload_with_other_bytes_is_refused_and_removed(s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("2.1.0", b"what was announced")
    upload = repo.presigned_upload(fw)
    assert http("PUT", upload.url, b"what was uploaded!", upload.headers)[0] == 200
    with pytest.raises(ValidationError, match=r"pump@2\.1\.0: image SHA-256 is"):
        repo.complete_upload(fw)
    listed = s3_library.s3.list_objects_v2(Bucket=repo.bucket).get("Contents", [])
    assert listed == []
    with pytest.raises(NotFound, match="nothing was uploaded"):
        repo.complete_upload(fw)


def test_the_library_is_listed_page_by_page_in_version_order(s3_library: Library) -> None:
    repo = s3_library.repo
    for version in ("1.10.0", "1.2.0", "1.2.0-rc.1"):
        data = f"pump {version}".encode()
        repo.add(image_of(version, data), data)
    repo.add(image_of("0.1.0", b"env", "environmental"), b"env")
    s3_library.calls.calls.clear()
    assert [f.firmware_id for f in repo.list()] == [
        "environmental@0.1.0", "pump@1.2.0-rc.1", "pump@1.2.0", "pump@1.10.0"]
    pages = s3_library.calls.named("ListObjectsV2")
    assert len(pages) == 4  # 8 objects, 2 a page
    assert all(p["MaxKeys"] == 2 for p in pages)
    assert all("ContinuationToken" in p for p in pages[1:])
    assert [f.firmware_id for f in repo.list("environmental")] == ["environmental@0.1.0"]
    repo.delete("pump", SemVer.parse("1.2.0"))
    assert "pump@1.2.0" not in [f.firmware_id for f in repo.list("pump")]
    with pytest.raises(NotFound, match=r"no firmware 1\.2\.0 for device type 'pump'"):
        repo.delete("pump", SemVer.parse("1.2.0"))
