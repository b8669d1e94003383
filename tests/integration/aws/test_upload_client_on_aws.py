"""The console's uploader (plugins/api/client/uploads.py) against the REST API
over the aws backend, with a TCP proxy between everything and moto's server
that can cut the link: a part cut off mid-body is sent again, and when the
link stays down the upload stops with a clear message and the next import of
the same file resumes from the parts S3 holds."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from core.model.roles import Role
from plugins.api.client.fleet import HttpFleetApi
from plugins.api.client.transport import StaticToken
from plugins.api.client.uploads import UploadInterrupted
from tests.integration.aws.conftest import AwsSandbox
from tests.integration.aws.firmware_api_fixtures import FirmwareApi, serve_firmware_api

MiB = 1 << 20
PART = 5 * MiB


class CuttingProxy:
    """Forwards TCP connections to ``target``. ``cut_after(n)``: the next
    part upload that forwards more than ``n`` bytes upstream is closed then (a
    laptop losing its link mid-part); ``down``: every part upload is closed
    at once, and one whose body is still coming is closed mid-body (S3
    unreachable, while the API still answers). Whether a part in flight when
    the link goes down reaches S3 depends on how much of it the sockets had
    already taken, as on a real link."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._cut_after: int | None = None
        self.down = False
        self.cuts = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def cut_after(self, n: int) -> None:
        self._cut_after = n

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        # only a presigned part's PUT is cut, not the API's own calls to moto
        first = client.recv(65536)
        part_put = first.startswith(b"PUT ") and b"partNumber=" in first
        if part_put and self.down:
            with self._lock:
                self.cuts += 1
            client.close()
            return
        upstream = socket.create_connection(self._target)
        threading.Thread(target=self._pump_back, args=(upstream, client), daemon=True).start()
        sent = 0
        try:
            block = first
            while block:
                upstream.sendall(block)
                sent += len(block)
                if part_put and self.down:
                    with self._lock:
                        self.cuts += 1
                    break
                limit = self._cut_after
                if part_put and limit is not None and sent > limit:
                    with self._lock:
                        if self._cut_after is not None:
                            self._cut_after = None
                            self.cuts += 1
                            break
                block = client.recv(65536)
        except OSError:
            pass
        for s in (client, upstream):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    @staticmethod
    def _pump_back(upstream: socket.socket, client: socket.socket) -> None:
        try:
            while block := upstream.recv(65536):
                client.sendall(block)
        except OSError:
            pass

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def proxied(aws: AwsSandbox, tmp_path: Path) -> Iterator[tuple[FirmwareApi, CuttingProxy]]:
    proxy = CuttingProxy(aws.endpoint_url)
    try:
        with serve_firmware_api(aws, tmp_path, proxy.url) as api:
            yield api, proxy
    finally:
        proxy.close()


def uploader_session(api: FirmwareApi, tmp_path: Path) -> HttpFleetApi:
    http = HttpFleetApi(api.base_url, StaticToken(
        api.client.token(Role.ENGINEER, "erin", "acme")), timeout_s=30)
    http.sign_locally(api.erin, tmp_path / "console-data" / "uploads")
    return http


def bytes_s3_holds(api: FirmwareApi) -> int:
    """The parts of the one unfinished upload, as S3 lists them."""
    s3 = api.aws.client("s3")
    bucket = f"iot-firmware-{api.aws.stage}"
    uploads = s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    assert len(uploads) == 1, uploads
    parts = s3.list_parts(Bucket=bucket, Key=uploads[0]["Key"],
                          UploadId=uploads[0]["UploadId"]).get("Parts", [])
    return sum(int(p["Size"]) for p in parts)


def test_a_part_cut_off_mid_body_is_sent_again(
        proxied: tuple[FirmwareApi, CuttingProxy], tmp_path: Path) -> None:
    api, proxy = proxied
    api.trust(api.erin, "erin")
    data = os.urandom(2 * PART + 5000)
    image = tmp_path / "pump-8.0.0.bin"
    image.write_bytes(data)
    http = uploader_session(api, tmp_path)
    assert http.firmware.uploader is not None
    seen: list[int] = []

    def progress(done: int, total: int) -> None:
        seen.append(done)
        if done >= PART + MiB and proxy.cuts == 0 and proxy._cut_after is None:
            proxy.cut_after(2 * MiB)  # the link drops 2 MiB into the next connection

    fw = http.firmware.uploader.upload(image, version="8.0.0", device_type="pump",
                                       progress=progress, part_size=PART)
    assert proxy.cuts == 1
    assert fw.sha256 == api.backend.firmware.get_by_id("pump@8.0.0").sha256
    assert seen[-1] == len(data)
    # the cut part was sent again from its start: progress stepped back once
    backwards = [i for i in range(1, len(seen)) if seen[i] < seen[i - 1]]
    assert len(backwards) == 1 and seen[backwards[0]] > PART


def test_with_the_link_down_the_upload_stops_and_the_next_import_resumes(
        proxied: tuple[FirmwareApi, CuttingProxy], tmp_path: Path) -> None:
    api, proxy = proxied
    api.trust(api.erin, "erin")
    data = os.urandom(2 * PART + 777)
    image = tmp_path / "pump-9.0.0.bin"
    image.write_bytes(data)
    http = uploader_session(api, tmp_path)
    assert http.firmware.uploader is not None
    http.firmware.uploader._backoff_s = 0.01

    def link_goes_down(done: int, total: int) -> None:
        if done >= PART + MiB:
            proxy.down = True  # S3 unreachable from now on (the API still answers)

    with pytest.raises(UploadInterrupted, match="import the same file again to resume"):
        http.firmware.uploader.upload(image, version="9.0.0", device_type="pump",
                                      progress=link_goes_down, part_size=PART)
    assert proxy.cuts >= 3  # the part was tried again before giving up
    assert api.backend.firmware.list() == []

    held = bytes_s3_holds(api)
    assert held >= PART  # part 1 went up before the link went down

    proxy.down = False
    restarted = uploader_session(api, tmp_path)  # the console starts again
    seen: list[int] = []
    fw = restarted.firmware.import_file(image, version="9.0.0", device_type="pump",
                                        progress=lambda done, total: seen.append(done))
    assert seen[0] == held  # what S3 held was not sent again
    assert seen[-1] == len(data) and fw.firmware_id == "pump@9.0.0"
