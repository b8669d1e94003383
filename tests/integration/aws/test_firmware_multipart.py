"""Large firmware images uploaded in parts (S3 multipart upload) through
presigned PUTs with a real HTTP client against moto's server: an upload cut
off mid-part resumes with the parts S3 already holds, and the joined image
enters the library only with the announced SHA-256."""

from __future__ import annotations

import hashlib
import os
from http.client import HTTPConnection
from urllib.parse import parse_qs, urlsplit

import pytest

from core.errors import NotFound, ValidationError
from core.model import SemVer
from plugins.aws.firmware.s3 import MIN_PART_SIZE, MultipartUpload, S3FirmwareRepository
from tests.integration.aws.test_firmware_s3 import Library, http, image_of, s3_library

__all__ = ["s3_library"]

PART = MIN_PART_SIZE  # 5 MiB, S3's (and moto's) smallest part but the last
IMAGE = os.urandom(2 * PART + 100_000)  # three parts: 5 MiB, 5 MiB, ~98 KiB


def put_part(repo: S3FirmwareRepository, upload: MultipartUpload, number: int,
             image: bytes = IMAGE) -> None:
    start, end = upload.part_range(number, len(image))
    presigned = repo.presign_part(upload, number)
    status, body = http("PUT", presigned.url, image[start:end], presigned.headers)
    assert status == 200, body


def cut_off_put(url: str, data: bytes) -> None:
    """A PUT whose connection drops halfway through the body (a laptop going
    to sleep): Content-Length announces all of it, half is sent."""
    parts = urlsplit(url)
    connection = HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    connection.putrequest("PUT", f"{parts.path}?{parts.query}", skip_accept_encoding=True)
    connection.putheader("Content-Type", "application/octet-stream")
    connection.putheader("Content-Length", str(len(data)))
    connection.endheaders()
    connection.send(data[: len(data) // 2])
    connection.sock.close()
    connection.close()


def test_an_interrupted_multipart_upload_resumes_with_the_parts_s3_holds(
        s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("3.0.0", IMAGE)
    upload = repo.start_multipart_upload(fw, part_size=PART)
    assert upload.part_count == 3
    create = s3_library.calls.named("CreateMultipartUpload")[0]
    assert create["ServerSideEncryption"] == "AES256" and create["Metadata"] == {
        "sha256": fw.sha256}

    put_part(repo, upload, 1)
    put_part(repo, upload, 3)
    start, end = upload.part_range(2, len(IMAGE))
    cut_off_put(repo.presign_part(upload, 2).url, IMAGE[start:end])

    # the uploader starts again, in another process: it finds the upload and what is missing
    from plugins.aws.backend import build_aws_backend_for

    other = build_aws_backend_for(repo._settings).firmware
    assert isinstance(other, S3FirmwareRepository)
    [upload_id] = other.multipart_uploads(fw)
    resumed = other.resume_multipart_upload(fw, upload_id, part_size=PART)
    assert [p.part_number for p in other.uploaded_parts(resumed)] == [1, 3]
    assert other.missing_parts(resumed, fw) == [2]
    with pytest.raises(ValidationError, match=r"parts \[2\] of 3 are missing"):
        other.complete_multipart_upload(fw, resumed)
    assert other.multipart_uploads(fw) == [upload_id]  # still open, nothing joined

    put_part(other, resumed, 2)
    other.complete_multipart_upload(fw, resumed)

    assert repo.get_by_id("pump@3.0.0") == fw
    assert http("GET", repo.download_url(fw.firmware_id)) == (200, IMAGE)
    head = s3_library.s3.head_object(Bucket=repo.bucket, Key=repo.object_key(fw.firmware_id))
    assert head["ServerSideEncryption"] == "AES256" and head["Metadata"]["sha256"] == fw.sha256
    assert other.multipart_uploads(fw) == []


def test_uploaded_parts_are_listed_page_by_page(s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("3.0.1", IMAGE)
    upload = repo.start_multipart_upload(fw, part_size=PART)
    for n in (1, 2, 3):
        put_part(repo, upload, n)
    s3_library.calls.clear()
    assert [p.part_number for p in repo.uploaded_parts(upload)] == [1, 2, 3]
    pages = s3_library.calls.named("ListParts")
    assert [p["MaxParts"] for p in pages] == [2, 2]  # the settings' page size
    assert str(pages[1]["PartNumberMarker"]) == "2"
    repo.abort_multipart_upload(upload)


def test_a_joined_image_with_the_wrong_sha256_is_refused_and_deleted(
        s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("3.1.0", IMAGE)
    upload = repo.start_multipart_upload(fw, part_size=PART)
    tampered = bytearray(IMAGE)
    tampered[PART + 7] ^= 0xFF  # one bit flipped in the second part, same size
    for n in (1, 2, 3):
        put_part(repo, upload, n, bytes(tampered))

    with pytest.raises(ValidationError, match=r"pump@3\.1\.0: image SHA-256 is [0-9a-f]{64}"):
        repo.complete_multipart_upload(fw, upload)

    assert s3_library.s3.list_objects_v2(Bucket=repo.bucket).get("Contents", []) == []
    with pytest.raises(NotFound):
        repo.get_by_id(fw.firmware_id)
    assert hashlib.sha256(bytes(tampered)).hexdigest() != fw.sha256


def test_aborting_drops_the_parts_and_the_upload(s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("3.2.0", IMAGE)
    upload = repo.start_multipart_upload(fw, part_size=PART)
    put_part(repo, upload, 1)
    repo.abort_multipart_upload(upload)
    assert repo.multipart_uploads(fw) == []
    with pytest.raises(NotFound, match="no upload"):
        repo.uploaded_parts(upload)
    with pytest.raises(NotFound, match="no upload"):
        repo.resume_multipart_upload(fw, upload.upload_id)
    repo.abort_multipart_upload(upload)  # twice is fine


def test_a_published_release_is_never_overwritten_by_a_second_upload(
        s3_library: Library) -> None:
    repo = s3_library.repo
    fw = image_of("3.3.0", IMAGE)
    first = repo.start_multipart_upload(fw, part_size=PART)
    second = repo.start_multipart_upload(fw, part_size=PART)  # two people, same release
    other_bytes = os.urandom(len(IMAGE))
    for n in (1, 2, 3):
        put_part(repo, first, n)
        put_part(repo, second, n, other_bytes)
    repo.complete_multipart_upload(fw, first)

    with pytest.raises(ValidationError, match="already in the library"):
        repo.complete_multipart_upload(fw, second)
    assert repo.read_image("pump", SemVer.parse("3.3.0")) == IMAGE  # the first upload's bytes
    with pytest.raises(ValidationError, match="already in the library"):
        repo.start_multipart_upload(fw, part_size=PART)
    repo.abort_multipart_upload(second)


@pytest.mark.parametrize(("part_size", "named"), [
    (PART - 1, "at least 5242880 bytes"),
])
def test_parts_below_s3s_minimum_are_refused_before_any_request(
        s3_library: Library, part_size: int, named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        s3_library.repo.start_multipart_upload(image_of("3.4.0", IMAGE), part_size=part_size)
    assert s3_library.calls.named("CreateMultipartUpload") == []


def test_a_part_number_outside_the_image_is_refused(s3_library: Library) -> None:
    repo = s3_library.repo
    upload = repo.start_multipart_upload(image_of("3.5.0", IMAGE), part_size=PART)
    for bad in (0, 4):
        with pytest.raises(ValidationError, match=f"part {bad} is not one of 1..3"):
            repo.presign_part(upload, bad)
    repo.abort_multipart_upload(upload)


def test_a_presigned_put_never_replaces_an_image_and_a_pending_one_can_be_discarded(
        s3_library: Library) -> None:
    """The single-PUT upload: the URL carries If-None-Match, so bytes already
    there (a release published meanwhile, or an upload not completed) stay."""
    repo = s3_library.repo
    data = b"published image" * 100
    fw = image_of("4.0.0", data)
    late = repo.presigned_upload(fw)  # handed out before someone else publishes
    signed = parse_qs(urlsplit(late.url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert "if-none-match" in signed  # S3 refuses the PUT without it (moto checks no signature)
    repo.add(fw, data)
    assert http("PUT", late.url, b"x" * len(data), late.headers)[0] == 412
    assert repo.read_image("pump", fw.version) == data
    with pytest.raises(ValidationError, match="already in the library"):
        repo.discard_upload(fw)

    pending = image_of("4.1.0", b"right bytes")
    upload = repo.presigned_upload(pending)
    assert http("PUT", upload.url, b"wrong bytes", upload.headers)[0] == 200
    assert http("PUT", upload.url, b"right bytes", upload.headers)[0] == 412  # no overwrite
    assert repo.discard_upload(pending) is True
    assert http("PUT", upload.url, b"right bytes", upload.headers)[0] == 200
    repo.complete_upload(pending)
    assert repo.read_image("pump", pending.version) == b"right bytes"
    assert repo.discard_upload(image_of("4.2.0", b"never sent")) is False
