"""The sandbox's REST API on loopback (port 3000, serverless-offline's).

The one function the sandbox calls, :func:`start_api`, serves the API Lambda
through the local Cognito authorizer (``plugins.aws.api_server``). Until that
module exists, a placeholder answers every request with 503 and says so, so
the rest of the sandbox can still be tried."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class RunningApi:
    url: str
    stop: Callable[[], None]
    placeholder: bool = False


def start_api(*, host: str, port: int, settings: Any, resources: Any) -> RunningApi:
    """``settings`` (plugins.aws.settings.AwsSettings) must name the user pool
    and its app client: the authorizer checks tokens against them."""
    try:
        from plugins.aws import api_server
    except ImportError:
        return _placeholder(host, port)
    server = api_server.serve_api(settings, host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return RunningApi(api_server.api_url(server), stop)


def _placeholder(host: str, port: int) -> RunningApi:
    class NotYet(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            body = json.dumps({"success": False, "error": {
                "code": "NOT_AVAILABLE",
                "message": "this build has no API server for the aws backend yet"}}).encode()
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), NotYet)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="sandbox-api", daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return RunningApi(f"http://{host}:{server.server_address[1]}", stop, placeholder=True)
