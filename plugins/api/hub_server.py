"""`smartiot hub` serves the REST API: the team's consoles sign in here and
reach the data only through it, so the database needs no account but the
hub's.

The server is the same WSGI adapter as `smartiot api serve` (threaded, one
thread per request), started by this plugin's startup hook in the process
that runs the hub when the profile names ``api_listen`` (``smartiot hub --api
HOST:PORT`` sets it) and stopped by the shutdown hook, before the hub stops.
With ``api_tls_cert`` and ``api_tls_key`` it speaks HTTPS only.
"""

from __future__ import annotations

import logging
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from core.errors import ConfigError
from core.hookspecs import hookimpl

if TYPE_CHECKING:
    from core.context import AppContext

log = logging.getLogger(__name__)

RATE_LIMIT_PER_MINUTE = 600


@dataclass
class RunningApi:
    server: WSGIServer
    thread: threading.Thread
    url: str

    def stop(self, timeout_s: float = 5.0) -> None:
        self.server.shutdown()  # waits for serve_forever to return
        self.server.server_close()
        self.thread.join(timeout_s)


_running: dict[int, RunningApi] = {}
_lock = threading.Lock()


def parse_listen(value: str, where: str = "api_listen") -> tuple[str, int]:
    host, sep, port_text = value.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ConfigError(f"{where}: {value!r} is not HOST:PORT (e.g. 0.0.0.0:8080)")
    return host, int(port_text)


def tls_context(cert: str, key: str) -> ssl.SSLContext | None:
    if not cert and not key:
        return None
    if not cert or not key:
        raise ConfigError("api_tls_cert and api_tls_key: give both PEM paths, or neither")
    for label, path in (("api_tls_cert", cert), ("api_tls_key", key)):
        if not Path(path).expanduser().is_file():
            raise ConfigError(f"{label}: {path} does not exist")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(str(Path(cert).expanduser()), str(Path(key).expanduser()))
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"api_tls_cert/api_tls_key: cannot load them: {exc}") from None
    return context


def start_api(context: AppContext) -> RunningApi:
    """The REST API over the hub's backend, on the profile's ``api_listen``."""
    from plugins.api.app import RateLimit, make_handler
    from plugins.api.auth_service import build_sign_in
    from plugins.api.commands import api_services, idempotency_store, token_signer
    from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread

    profile = context.config.profile
    host, port = parse_listen(profile.api_listen)
    tls = tls_context(profile.api_tls_cert, profile.api_tls_key)
    services = api_services(context)
    tokens = token_signer(context)
    sign_in = build_sign_in(context.backend, tokens)
    idempotency = idempotency_store(context)
    app = ApiWsgiApp(make_handler(lambda: services, rate_limit=RateLimit(RATE_LIMIT_PER_MINUTE),
                                  sign_in=lambda: sign_in, idempotency=lambda: idempotency),
                     tokens)
    try:
        server = serve(app, host, port)
    except OSError as exc:
        raise ConfigError(f"api_listen {profile.api_listen}: cannot listen there: "
                          f"{exc.strerror or exc}") from None
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    scheme = "https" if tls is not None else "http"
    shown = f"[{host}]" if ":" in host else host
    return RunningApi(server, serve_in_thread(server),
                      f"{scheme}://{shown}:{server.server_port}")


def _serves_here(context: AppContext) -> bool:
    """Only the process that runs the hub (and holds the database) serves."""
    if not context.config.profile.api_listen or not context.has_backend:
        return False
    return getattr(context.backend, "hub", None) is not None


@hookimpl
def smartiot_startup(context: AppContext) -> None:
    if not _serves_here(context):
        return
    running = start_api(context)
    with _lock:
        _running[id(context)] = running
    print(f"REST API on {running.url} (sign in: POST /auth/login; OpenAPI at "
          "/openapi.json)", flush=True)


@hookimpl
def smartiot_shutdown(context: AppContext) -> None:
    with _lock:
        running = _running.pop(id(context), None)
    if running is not None:
        running.stop()
