"""Where the hub's firmware file server listens and what address it advertises
(profile keys ``files_bind``, ``files_advertise``, ``files_tls_cert``,
``files_tls_key``). It used to listen on 127.0.0.1 with no setting, so a hub on
a server could not serve devices elsewhere; off loopback it now serves HTTPS
only and refuses to start in clear text."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.config import load_config
from core.context import AppContext
from core.errors import ConfigError
from core.plugins import PluginManager
from core.store import Store
from plugins.local.backend import _file_server
from plugins.local.jobs.file_server import FirmwareFileServer, build_file_server
from simulator.ota.download import http_fetch
from tests import tls_certs
from tests.integration.jobs.conftest import add_firmware

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(f"sqlite:///{tmp_path / 'files.db'}")
    yield s
    s.close()


@pytest.fixture
def pki(tmp_path: Path) -> tls_certs.TestPki:
    (tmp_path / "pki").mkdir()
    return tls_certs.make_pki(tmp_path / "pki")


@pytest.mark.parametrize(("bind", "advertise", "message"), [
    ("0.0.0.0", "hub.example.com", "not loopback.*files_tls_cert and files_tls_key"),
    ("192.0.2.10:8070", "", "not loopback"),
    ("hub.example.com", "", "not loopback"),
    ("127.0.0.1:99999", "", "port must be a number"),
    ("", "", "files_bind is empty"),
])
def test_clear_text_off_loopback_and_bad_values_are_refused(store: Store, bind: str,
                                                            advertise: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        build_file_server(store.firmware, bind=bind, advertise=advertise, where="lab")
    assert str(info.value).startswith("lab")


def test_every_interface_needs_an_advertised_name(store: Store, pki: tls_certs.TestPki) -> None:
    with pytest.raises(ConfigError, match="set files_advertise"):
        build_file_server(store.firmware, bind="0.0.0.0", tls_cert=str(pki.server_cert),
                          tls_key=str(pki.server_key))
    with pytest.raises(ConfigError, match="go together"):
        build_file_server(store.firmware, bind="0.0.0.0", tls_cert=str(pki.server_cert))
    with pytest.raises(ConfigError, match="cannot load files_tls_cert"):
        build_file_server(store.firmware, bind="0.0.0.0", advertise="localhost",
                          tls_cert=str(pki.server_key), tls_key=str(pki.server_key))


def test_https_on_every_interface_serves_devices_at_the_advertised_name(
        store: Store, pki: tls_certs.TestPki, monkeypatch: pytest.MonkeyPatch) -> None:
    firmware, image = add_firmware(store, size=50_000)
    server = build_file_server(store.firmware, bind="0.0.0.0", advertise="localhost",
                               tls_cert=str(pki.server_cert), tls_key=str(pki.server_key))
    server.start()
    try:
        url = server.url_for(f"firmware/{firmware.firmware_id}")
        assert url is not None and url.startswith("https://localhost:")
        # A device trusts the team's CA (SSL_CERT_FILE, as OpenSSL reads it).
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.ca))
        got = http_fetch(url, 1000, 1999)
        assert got.status == 206 and got.data == image[1000:2000] and got.total == len(image)
        monkeypatch.setenv("SSL_CERT_FILE", str(pki.rogue_cert))
        untrusted = http_fetch(url, 0, 99)
        assert untrusted.status == 0 and "CERTIFICATE_VERIFY_FAILED" in untrusted.error
        plain = http_fetch(url.replace("https://", "http://"), 0, 99)
        assert not plain.ok
    finally:
        server.stop()


def test_advertised_port_and_loopback_default(store: Store) -> None:
    default = build_file_server(store.firmware)
    assert isinstance(default, FirmwareFileServer)
    default.start()
    try:
        assert default.base_url.startswith("http://127.0.0.1:")
    finally:
        default.stop()
    proxied = build_file_server(store.firmware, bind="127.0.0.1:0",
                                advertise="files.example.com:443")
    assert proxied.base_url == "http://files.example.com:443"


def test_the_profile_places_the_hubs_file_server(
        tmp_path: Path, store: Store, pki: tls_certs.TestPki,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[profiles.lab]\nbroker = "mqtt://127.0.0.1:1883"\nhub = false\n'
        'files_bind = "0.0.0.0:0"\nfiles_advertise = "hub.example.com"\n'
        f'files_tls_cert = "{pki.server_cert}"\nfiles_tls_key = "{pki.server_key}"\n')
    context = AppContext(load_config(config, tmp_path, overrides={"profile": "lab"}),
                         PluginManager())
    assert _file_server(context, store).base_url.startswith("https://hub.example.com:")
    monkeypatch.setenv("SMARTIOT_FILES_TLS_CERT", "")
    monkeypatch.setenv("SMARTIOT_FILES_TLS_KEY", "")
    clear = AppContext(load_config(config, tmp_path, overrides={"profile": "lab"}),
                       PluginManager())
    with pytest.raises(ConfigError, match=r"profiles\.lab\.files_bind .* not loopback"):
        _file_server(clear, store)


def test_smartiot_hub_refuses_to_serve_firmware_in_clear_text(tmp_path: Path,
                                                              mosquitto_broker) -> None:
    env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data"), "SMARTIOT_FILES_BIND": "0.0.0.0",
           "SMARTIOT_FILES_ADVERTISE": "hub.example.com"}
    result = subprocess.run(
        [sys.executable, "-m", "console.cli", "--profile", "lab", "--broker",
         mosquitto_broker.url, "--database", f"sqlite:///{tmp_path / 'hub.db'}", "hub"],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert result.returncode != 0
    assert "files_bind is '0.0.0.0', which is not loopback" in result.stderr
    assert "Traceback" not in result.stderr
