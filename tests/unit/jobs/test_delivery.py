"""Presigned URLs, byte ranges and job-document substitution, without sockets."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from core.protocol.ota import presigned_placeholder
from plugins.local.jobs.file_server import Unsatisfiable, parse_range
from plugins.local.jobs.host import presign_document
from plugins.local.jobs.presign import UrlSigner


def _query(path_and_query: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(path_and_query).query).items()}


def test_signed_url_verifies_until_it_expires():
    now = [1_800_000_000.0]
    signer = UrlSigner(b"k" * 32, clock=lambda: now[0])
    url = signer.path_and_query("pump@2.0.0+build.7", 60)
    assert urlsplit(url).path == "/firmware/pump%402.0.0%2Bbuild.7"
    q = _query(url)
    assert q["expires"] == str(1_800_000_060)
    assert signer.refusal("pump@2.0.0+build.7", q["expires"], q["sig"]) is None
    now[0] += 60
    assert signer.refusal("pump@2.0.0+build.7", q["expires"], q["sig"]) is None
    now[0] += 1
    assert "expired 1 s ago" in signer.refusal("pump@2.0.0+build.7", q["expires"], q["sig"])


def test_signature_binds_image_expiry_and_secret():
    signer = UrlSigner(b"k" * 32, clock=lambda: 1000.0)
    q = _query(signer.path_and_query("pump@2.0.0", 60))
    assert "does not match" in signer.refusal("pump@2.0.1", q["expires"], q["sig"])
    assert "does not match" in signer.refusal("pump@2.0.0", str(int(q["expires"]) + 3600),
                                              q["sig"])
    assert "does not match" in UrlSigner(b"j" * 32).refusal("pump@2.0.0", q["expires"],
                                                           q["sig"])
    assert "not signed" in signer.refusal("pump@2.0.0", None, q["sig"])
    assert "not an epoch" in signer.refusal("pump@2.0.0", "soon", q["sig"])


def test_each_hub_run_has_its_own_secret():
    a, b = UrlSigner(), UrlSigner()
    assert a.signature("x", 1) != b.signature("x", 1)


@pytest.mark.parametrize(("header", "expected"), [
    (None, None),
    ("bytes=0-0", (0, 0)),
    ("bytes=10-19", (10, 19)),
    ("bytes=10-", (10, 99)),
    ("bytes=-10", (90, 99)),
    ("bytes=-1000", (0, 99)),
    ("bytes=90-1000", (90, 99)),
    (" bytes = 5-6 ", (5, 6)),
    ("bytes=0-1,4-5", None),  # several ranges: we send the whole image (allowed)
    ("bytes=9-3", None),  # invalid: ignored
    ("bytes=a-b", None),
    ("bytes=-", None),
    ("pages=1-2", None),
])
def test_parse_range(header, expected):
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=100-200", "bytes=-0"])
def test_parse_range_unsatisfiable(header):
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)


def test_presign_document_replaces_placeholders_anywhere_and_copies():
    stored = {"url": presigned_placeholder("firmware/pump@2.0.0"),
              "extra": [presigned_placeholder("firmware/pump@1.0.0"), 3],
              "nested": {"keep": "plain text"}}
    delivered = presign_document(
        stored, lambda s: "https://x/" + s[-11:-1] if s.startswith("${aws") else s)
    assert delivered == {"url": "https://x/pump@2.0.0", "extra": ["https://x/pump@1.0.0", 3],
                         "nested": {"keep": "plain text"}}
    assert stored["url"].startswith("${aws:iot:s3-presigned-url:")
