"""The firmware file server over real HTTP: signed URLs, expiry, Range and resume."""

from __future__ import annotations

import hashlib
import http.client
import socket
from urllib.parse import urlsplit

import pytest

from core.store import Store
from plugins.local.jobs.file_server import FirmwareFileServer
from plugins.local.jobs.presign import UrlSigner
from tests.integration.jobs.conftest import add_firmware


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def served(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'files.db'}")
    firmware, image = add_firmware(store, size=1_000_003)
    clock = Clock(1_800_000_000.0)
    server = FirmwareFileServer(store.firmware, expiry_s=60,
                                signer=UrlSigner(clock=clock)).start()
    yield server, firmware, image, clock
    server.stop()
    store.close()


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET"):
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
    conn.request(method, f"{parts.path}?{parts.query}", headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def _url(server, firmware):
    return server.url_for(f"firmware/{firmware.firmware_id}")


def test_full_download_with_etag_and_accept_ranges(served):
    server, firmware, image, _ = served
    response, body = _get(_url(server, firmware))
    assert response.status == 200
    assert body == image
    assert response.getheader("Accept-Ranges") == "bytes"
    assert response.getheader("ETag") == f'"{firmware.sha256}"'
    assert int(response.getheader("Content-Length")) == len(image)


def test_head_gives_the_headers_without_the_body(served):
    server, firmware, image, _ = served
    response, body = _get(_url(server, firmware), method="HEAD")
    assert response.status == 200 and body == b""
    assert int(response.getheader("Content-Length")) == len(image)


@pytest.mark.parametrize(("header", "first", "last"), [
    ("bytes=0-99", 0, 99),
    ("bytes=1000-", 1000, 1_000_002),
    ("bytes=-500", 1_000_003 - 500, 1_000_002),
    ("bytes=999990-2000000", 999_990, 1_000_002),  # end clamped to the image
    ("bytes=-5000000", 0, 1_000_002),  # suffix longer than the image: all of it
])
def test_single_ranges_answer_206_with_content_range(served, header, first, last):
    server, firmware, image, _ = served
    response, body = _get(_url(server, firmware), {"Range": header})
    assert response.status == 206
    assert body == image[first:last + 1]
    assert response.getheader("Content-Range") == f"bytes {first}-{last}/{len(image)}"


@pytest.mark.parametrize("header", ["bytes=1000003-", "bytes=2000000-2000001", "bytes=-0"])
def test_unsatisfiable_ranges_answer_416(served, header):
    server, firmware, image, _ = served
    response, _ = _get(_url(server, firmware), {"Range": header})
    assert response.status == 416
    assert response.getheader("Content-Range") == f"bytes */{len(image)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-9", "items=0-5", "bytes=9-3", "bytes=x-"])
def test_ranges_we_do_not_serve_fall_back_to_the_whole_image(served, header):
    server, firmware, image, _ = served
    response, body = _get(_url(server, firmware), {"Range": header})
    assert response.status == 200 and body == image


def test_interrupted_download_resumes_with_range_and_if_range(served):
    server, firmware, image, _ = served
    url = urlsplit(_url(server, firmware))
    # read part of the body, then drop the connection as a device losing its link would
    with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
        sock.sendall(f"GET {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"\r\n\r\n" not in received or len(received.split(b"\r\n\r\n", 1)[1]) < 200_000:
            chunk = sock.recv(65536)
            assert chunk, "server closed early"
            received += chunk
    partial = received.split(b"\r\n\r\n", 1)[1]
    assert image.startswith(partial)

    etag = f'"{firmware.sha256}"'
    response, rest = _get(_url(server, firmware), {"Range": f"bytes={len(partial)}-",
                                                   "If-Range": etag})
    assert response.status == 206
    assert hashlib.sha256(partial + rest).hexdigest() == firmware.sha256

    # an If-Range that no longer matches gets the whole (new) image, not a splice
    response, body = _get(_url(server, firmware), {"Range": "bytes=10-", "If-Range": '"old"'})
    assert response.status == 200 and body == image


def test_expired_and_forged_urls_are_refused_with_a_reason(served):
    server, firmware, _, clock = served
    url = _url(server, firmware)
    clock.now += 61
    response, body = _get(url)
    assert response.status == 403
    assert b"expired" in body and b"DescribeJobExecution" in body

    fresh = _url(server, firmware)  # a new delivery of the document: works again
    assert _get(fresh, {"Range": "bytes=0-0"})[0].status == 206

    forged = fresh.replace("sig=", "sig=0")
    response, body = _get(forged)
    assert response.status == 403 and b"signature does not match" in body
    # a URL for one image cannot fetch another
    other = fresh.replace("pump%402.0.0", "pump%402.0.1")
    assert _get(other)[0].status == 403
    # unsigned
    parts = urlsplit(fresh)
    response, body = _get(f"http://{parts.netloc}{parts.path}?")
    assert response.status == 403 and b"not signed" in body
    # another hub run (another secret) cannot mint URLs for this one
    stranger = UrlSigner(clock=clock).path_and_query(firmware.firmware_id, 60)
    assert _get(server.base_url + stranger)[0].status == 403
    assert server.counters["refused"] == 5


def test_unknown_image_and_paths_are_404(served):
    server, _, _, _ = served
    response, body = _get(server.url_for("firmware/pump@9.9.9"))
    assert response.status == 404 and b"pump@9.9.9" in body
    response, _ = _get(server.url_for("firmware/not-a-firmware-id"))
    assert response.status == 404
    response, _ = _get(server.base_url + "/etc/passwd?")
    assert response.status == 404
    assert server.url_for("https://bucket.s3.amazonaws.com/fw.bin") is None
