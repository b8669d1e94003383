"""Loopback HTTP server for firmware images, the local stand-in for S3.

``GET``/``HEAD /firmware/{firmware_id}?expires=…&sig=…`` with a URL from
:class:`~plugins.local.jobs.presign.UrlSigner`. Single byte ranges
(``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) answer 206 so an interrupted
download resumes where it stopped; ``If-Range`` with the ETag (the image's
SHA-256) guards the resume against a changed image. Expired or forged URLs
get 403 with a sentence saying why, unknown images 404, unsatisfiable ranges
416. Requests run on the server's own threads, never on the hub's writer.

Where it listens and what address devices are told come from the profile
(``files_bind``, ``files_advertise``; see :func:`build_file_server`). On
loopback plain HTTP is fine; anywhere else it serves HTTPS only
(``files_tls_cert``/``files_tls_key``) and refuses to start without them, since
a download URL is a bearer token for the image until it expires.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import socket
import ssl
import threading
from collections import OrderedDict
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from core.errors import ConfigError, NotFound, ValidationError
from core.model import SemVer
from core.ports.firmware import FirmwareRepository
from core.protocol.ota import placeholder_target
from plugins.local.jobs.presign import DEFAULT_EXPIRY_S, FIRMWARE_PATH, UrlSigner

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
CACHE_BYTES = 256 * 1024 * 1024
TARGET_PREFIX = "firmware/"  # what the placeholder names on the local hub
# A client silent this long (no TLS handshake, no next request on a kept-alive
# connection, a stalled read) is dropped: each one holds a thread, and the server
# may listen beyond loopback. Per socket operation, so a slow download that moves
# keeps going.
IDLE_TIMEOUT_S = 30.0


class ImageCache:
    """Image bytes per firmware id, least recently used dropped past ``limit`` bytes."""

    def __init__(self, repository: FirmwareRepository, limit: int = CACHE_BYTES) -> None:
        self._repository = repository
        self._limit = limit
        self._images: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, firmware_id: str) -> tuple[bytes, str]:
        """(bytes, sha256 hex); NotFound for an unknown image."""
        with self._lock:
            if firmware_id in self._images:
                self._images.move_to_end(firmware_id)
                return self._images[firmware_id]
        device_type, at, version = firmware_id.rpartition("@")
        if not at or not device_type:
            raise NotFound(f"{firmware_id!r} is not a firmware id (device-type@version)")
        try:
            data = self._repository.read_image(device_type, SemVer.parse(version))
        except ValidationError:
            raise NotFound(f"{firmware_id!r} is not a firmware id (bad version)") from None
        entry = (data, hashlib.sha256(data).hexdigest())
        with self._lock:
            self._images[firmware_id] = entry
            total = sum(len(d) for d, _ in self._images.values())
            while total > self._limit and len(self._images) > 1:
                _, (dropped, _) = self._images.popitem(last=False)
                total -= len(dropped)
        return entry


class Unsatisfiable(ValueError):
    """The range starts past the end of the image (416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte to send, or None to send everything (no
    header, or one we ignore as RFC 9110 allows: malformed or several ranges).
    Raises Unsatisfiable for a range that selects nothing (416)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first_s, dash, last_s = spec.strip().partition("-")
    if not dash:
        return None
    first_s, last_s = first_s.strip(), last_s.strip()
    if not (first_s.isdigit() or first_s == "") or not (last_s.isdigit() or last_s == ""):
        return None
    if first_s == "":
        if last_s == "":
            return None
        suffix = int(last_s)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(header)
        return max(0, size - suffix), size - 1
    first = int(first_s)
    if last_s and int(last_s) < first:
        return None  # invalid, so ignored
    if first >= size:
        raise Unsatisfiable(header)
    return first, (min(int(last_s), size - 1) if last_s else size - 1)


class FirmwareFileServer:
    """Start with ``start()``; ``url_for(target)`` turns a presigned-URL
    placeholder target (``firmware/{id}``) into an expiring URL."""

    def __init__(self, repository: FirmwareRepository, *, host: str = "127.0.0.1",
                 port: int = 0, advertise_host: str | None = None,
                 advertise_port: int | None = None,
                 expiry_s: float = DEFAULT_EXPIRY_S, signer: UrlSigner | None = None,
                 clock: Callable[[], float] | None = None,
                 tls_context: ssl.SSLContext | None = None) -> None:
        self.signer = signer or (UrlSigner(clock=clock) if clock else UrlSigner())
        self.expiry_s = expiry_s
        self.images = ImageCache(repository)
        self.counters = {"requests": 0, "bytes_sent": 0, "partial": 0, "refused": 0,
                         "not_found": 0}
        self._counters_lock = threading.Lock()
        self._host, self._port = host, port
        self._advertise = advertise_host
        self._advertise_port = advertise_port
        self._tls = tls_context
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def count(self, key: str, n: int = 1) -> None:
        with self._counters_lock:  # requests run on several threads
            self.counters[key] += n

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FirmwareFileServer:
        if self._server is not None:
            return self
        v6 = ":" in self._host
        server_class: type[ThreadingHTTPServer]
        if self._tls is not None:
            server_class = _TlsHttpServer6 if v6 else _TlsHttpServer
        else:
            server_class = _HttpServer6 if v6 else ThreadingHTTPServer
        server = server_class((self._host, self._port), _handler_for(self))
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        server.daemon_threads = True
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(target=server.serve_forever, kwargs={
            "poll_interval": 0.2}, name="smartiot-firmware-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def base_url(self) -> str:
        host = self._advertise or self._host
        if ":" in host:
            host = f"[{host}]"
        scheme = "https" if self._tls is not None else "http"
        return f"{scheme}://{host}:{self._advertise_port or self._port}"

    # ------------------------------------------------------------------ URLs
    def url_for(self, target: str) -> str | None:
        """The expiring URL for a placeholder target, or None if it is not ours."""
        if not target.startswith(TARGET_PREFIX) or len(target) == len(TARGET_PREFIX):
            return None
        firmware_id = target[len(TARGET_PREFIX):]
        return self.base_url + self.signer.path_and_query(firmware_id, self.expiry_s)

    def presign(self, value: str) -> str:
        """``value`` with a presigned-URL placeholder replaced by a real URL."""
        target = placeholder_target(value)
        if target is None:
            return value
        url = self.url_for(target)
        if url is None:
            log.warning("job document names %r, which this hub does not serve", target)
            return value
        return url


class _TlsHttpServer(ThreadingHTTPServer):
    """The TLS handshake runs on the request's own thread, so one slow or broken
    client cannot hold up the accept loop."""

    def finish_request(self, request: object, client_address: object) -> None:
        try:
            request.settimeout(IDLE_TIMEOUT_S)  # type: ignore[attr-defined]
            request.do_handshake()  # type: ignore[attr-defined]
        except (OSError, ssl.SSLError) as exc:
            log.info("firmware https: TLS handshake with %s failed: %s", client_address, exc)
            return
        super().finish_request(request, client_address)  # type: ignore[arg-type]


class _HttpServer6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _TlsHttpServer6(_TlsHttpServer):
    address_family = socket.AF_INET6


def _host_port(value: str, key: str, *, default_port: int) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6]:port`` or a bare IPv6 address."""
    text = value.strip()
    if not text:
        raise ConfigError(f"{key} is empty; give a host name or address, e.g. 127.0.0.1:8070")
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    else:
        host, port_text = text, ""
    if not host or any(c.isspace() or c in "/?#@" for c in host):
        raise ConfigError(f"{key} {value!r} is not host[:port]")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{key} {value!r}: the port must be a number from 0 to 65535")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve anywhere, so it is not loopback


def build_file_server(repository: FirmwareRepository, *, bind: str = "127.0.0.1",
                      advertise: str = "", tls_cert: str = "", tls_key: str = "",
                      where: str = "profile", expiry_s: float = DEFAULT_EXPIRY_S
                      ) -> FirmwareFileServer:
    """The hub's file server from the profile's ``files_*`` settings.

    ``bind`` is where it listens (port 0: any free one); ``advertise`` is the
    host[:port] put into download URLs (defaults to ``bind``; required when
    binding every interface, since 0.0.0.0 is no address a device can use).
    Anything but loopback needs ``tls_cert`` and ``tls_key`` (PEM files)."""
    host, port = _host_port(bind, f"{where}.files_bind", default_port=0)
    advertise_host: str | None = None
    advertise_port: int | None = None
    if advertise.strip():
        advertise_host, parsed = _host_port(advertise, f"{where}.files_advertise",
                                            default_port=0)
        advertise_port = parsed or None
    context: ssl.SSLContext | None = None
    if tls_cert or tls_key:
        if not (tls_cert and tls_key):
            raise ConfigError(f"{where}: files_tls_cert and files_tls_key go together (a PEM "
                              "certificate chain and its private key)")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(tls_cert, tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"{where}: cannot load files_tls_cert {tls_cert!r} with "
                              f"files_tls_key {tls_key!r}: {exc}") from None
    elif not is_loopback(host):
        raise ConfigError(
            f"{where}.files_bind is {bind!r}, which is not loopback: devices elsewhere would "
            "fetch firmware and its download URLs in clear text. Set files_tls_cert and "
            "files_tls_key (PEM files) to serve HTTPS, or bind 127.0.0.1"
        )
    if host in ("0.0.0.0", "::") and advertise_host is None:
        raise ConfigError(
            f"{where}.files_bind {bind!r} listens on every interface; set files_advertise to "
            "the name or address devices use to reach this hub (e.g. hub.example.com)"
        )
    return FirmwareFileServer(repository, host=host, port=port, advertise_host=advertise_host,
                              advertise_port=advertise_port, expiry_s=expiry_s,
                              tls_context=context)


def _handler_for(server: FirmwareFileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "smartiot-firmware/1"
        timeout = IDLE_TIMEOUT_S  # StreamRequestHandler sets it on the socket

        def do_GET(self) -> None:  # http.server's naming
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def log_message(self, format: str, *args: object) -> None:
            log.debug("firmware http %s: " + format, self.address_string(), *args)

        def _plain(self, status: int, text: str, headers: dict[str, str] | None = None,
                   body: bool = True) -> None:
            data = (text + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(data)

        def _serve(self, *, body: bool) -> None:
            server.count("requests")
            parts = urlsplit(self.path)
            if not parts.path.startswith(FIRMWARE_PATH):
                server.count("not_found")
                self._plain(404, f"nothing at {parts.path}; firmware lives under "
                            f"{FIRMWARE_PATH}", body=body)
                return
            firmware_id = unquote(parts.path[len(FIRMWARE_PATH):])
            query = parse_qs(parts.query)
            refusal = server.signer.refusal(firmware_id, next(iter(query.get("expires", [])), None),
                                            next(iter(query.get("sig", [])), None))
            if refusal is not None:
                server.count("refused")
                self._plain(403, f"403 Forbidden: {refusal}", body=body)
                return
            try:
                data, sha = server.images.get(firmware_id)
            except NotFound as exc:
                server.count("not_found")
                self._plain(404, f"404 Not Found: firmware {firmware_id!r}: {exc}", body=body)
                return
            etag = f'"{sha}"'
            size = len(data)
            if_range = self.headers.get("If-Range")
            try:
                wanted = parse_range(self.headers.get("Range"), size)
            except Unsatisfiable:
                if if_range is None or if_range.strip() == etag:
                    self._plain(416, f"416 Range Not Satisfiable: the image is {size} bytes",
                                {"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
                                body=body)
                    return
                wanted = None
            if if_range is not None and if_range.strip() != etag:
                wanted = None  # the image changed since the partial download: send it all
            first, last = (0, size - 1) if wanted is None else wanted
            self.send_response(200 if wanted is None else 206)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(last - first + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", etag)
            if wanted is not None:
                server.count("partial")
                self.send_header("Content-Range", f"bytes {first}-{last}/{size}")
            self.end_headers()
            if not body:
                return
            view = memoryview(data)
            try:
                for start in range(first, last + 1, CHUNK):
                    chunk = view[start:min(start + CHUNK, last + 1)]
                    self.wfile.write(chunk)
                    server.count("bytes_sent", len(chunk))
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the device went away mid-download

    return Handler
