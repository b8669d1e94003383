"""The firmware file server drops clients that stay silent: one that connects
and never starts the TLS handshake, one that sends no request, one that keeps
an HTTP/1.1 connection open after its download. Each held a thread for ever,
and the server may listen beyond loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.store import Store
from plugins.local.jobs import file_server as file_server_module
from plugins.local.jobs.file_server import FirmwareFileServer, build_file_server
from tests import tls_certs
from tests.integration.jobs.conftest import add_firmware

WAIT_S = 30.0  # far beyond the 1 s idle timeout; only a server that never drops fails


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    monkeypatch.setattr(file_server_module, "IDLE_TIMEOUT_S", 1.0)
    opened = Store.open(f"sqlite:///{tmp_path / 'files.db'}")
    yield opened
    opened.close()


def _dropped(sock: socket.socket) -> bool:
    """True when the server closes the connection (EOF or reset) before WAIT_S."""
    sock.settimeout(WAIT_S)
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_a_silent_client_is_dropped(store: Store) -> None:
    server = FirmwareFileServer(store.firmware).start()
    try:
        host, port = server.base_url.split("//")[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _dropped(sock), "a client that sends nothing kept its connection"
    finally:
        server.stop()


def test_a_kept_alive_connection_left_idle_is_dropped(store: Store) -> None:
    firmware, _image = add_firmware(store, size=5_000)
    server = FirmwareFileServer(store.firmware).start()
    try:
        url = server.url_for(f"firmware/{firmware.firmware_id}")
        assert url is not None
        hostport, _, path = url.split("//")[1].partition("/")
        host, port = hostport.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\n\r\n".encode())
            # the whole answer arrives, then the connection stays idle
            assert _dropped(sock), "an idle keep-alive connection was kept"
    finally:
        server.stop()


def test_a_client_that_never_starts_tls_is_dropped(store: Store, tmp_path: Path) -> None:
    (tmp_path / "pki").mkdir()
    pki = tls_certs.make_pki(tmp_path / "pki")
    server = build_file_server(store.firmware, bind="127.0.0.1",
                               tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    server.start()
    try:
        host, port = server.base_url.split("//")[1].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            assert _dropped(sock), "a client that never sent a ClientHello kept its thread"
    finally:
        server.stop()
