"""Run the Lambda handlers locally: WSGI requests become API Gateway (REST,
proxy integration) events and the handlers' answers become WSGI responses.

The adapter plays API Gateway's authorizer too: it verifies the bearer token
and puts its claims into ``requestContext.authorizer.claims``. It builds the
event from scratch, so nothing a client sends (a forged requestContext, a
role in a header or the body) reaches the handlers as identity.
"""

from __future__ import annotations

import base64
import json
import socketserver
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from plugins.api.auth import PUBLIC_PATHS, TokenSigner, Unauthorized
from plugins.api.responses import CORS_HEADERS

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
StartResponse = Callable[..., Any]

_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request",
            401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            405: "Method Not Allowed", 409: "Conflict", 413: "Payload Too Large",
            422: "Unprocessable Entity", 429: "Too Many Requests",
            500: "Internal Server Error"}
MAX_READ = 32 * 1024 * 1024


class LocalContext:
    """What a Lambda context offers that Powertools reads."""

    function_name = "smartiot-api-local"
    function_version = "$LATEST"
    memory_limit_in_mb = 0
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:smartiot-api-local"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def to_event(environ: dict[str, Any], claims: dict[str, Any] | None, request_id: str
             ) -> dict[str, Any]:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(min(length, MAX_READ)) if length > 0 else b""
    try:
        body: str | None = raw.decode("utf-8") if raw else None
        encoded = False
    except UnicodeDecodeError:
        body, encoded = base64.b64encode(raw).decode(), True
    headers: dict[str, str] = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    multi = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    path = environ.get("PATH_INFO") or "/"
    context: dict[str, Any] = {"requestId": request_id, "stage": "local", "path": path,
                               "httpMethod": environ["REQUEST_METHOD"],
                               "identity": {"sourceIp": environ.get("REMOTE_ADDR", "")}}
    if claims is not None:
        context["authorizer"] = {"claims": claims}
    return {
        "resource": path, "path": path, "httpMethod": environ["REQUEST_METHOD"],
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
        "multiValueQueryStringParameters": multi or None,
        "pathParameters": None, "stageVariables": None, "requestContext": context,
        "body": body, "isBase64Encoded": encoded,
    }


class TokenVerifier(Protocol):
    """Plays the authorizer: a bearer token's claims, or Unauthorized
    (TokenSigner here; the Cognito authorizer in the AWS sandbox)."""

    def verify(self, token: str) -> dict[str, Any]: ...


class ApiWsgiApp:
    def __init__(self, handler: Handler, tokens: TokenSigner | TokenVerifier, *,
                 where_tokens_come_from: str = "smartiot api token issues one") -> None:
        self.handler = handler
        self.tokens = tokens
        self.where_tokens_come_from = where_tokens_come_from

    def __call__(self, environ: dict[str, Any], start_response: StartResponse
                 ) -> Iterable[bytes]:
        request_id = uuid.uuid4().hex
        claims = None
        auth = environ.get("HTTP_AUTHORIZATION", "")
        public = environ.get("PATH_INFO") in PUBLIC_PATHS \
            or environ.get("REQUEST_METHOD") == "OPTIONS"
        if auth and not public:
            scheme, _, token = auth.partition(" ")
            try:
                if scheme.lower() != "bearer" or not token:
                    raise Unauthorized("Authorization must be 'Bearer <token>'")
                claims = self.tokens.verify(token)
            except Unauthorized as exc:
                return self._deny(start_response, str(exc))
        elif not public:
            return self._deny(start_response, "sign in: send 'Authorization: Bearer <token>' "
                              f"({self.where_tokens_come_from})")
        result = self.handler(to_event(environ, claims, request_id), LocalContext(request_id))
        status = int(result.get("statusCode", 500))
        headers: list[tuple[str, str]] = []
        for key, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((key, str(v)) for v in values)
        for key, value in (result.get("headers") or {}).items():
            headers.append((key, str(value)))
        body = result.get("body") or ""
        data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
        headers.append(("Content-Length", str(len(data))))
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [data]

    @staticmethod
    def _deny(start_response: StartResponse, message: str) -> Iterable[bytes]:
        data = json.dumps({"success": False, "error": {
            "code": "UNAUTHORIZED", "message": message, "details": None}}).encode()
        start_response("401 Unauthorized", [("Content-Type", "application/json"),
                                            ("Content-Length", str(len(data))),
                                            *CORS_HEADERS.items()])
        return [data]


class _ThreadingServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Powertools' logger already writes one structured line per request."""


def serve(app: ApiWsgiApp, host: str = "127.0.0.1", port: int = 0) -> WSGIServer:
    """A threaded server bound now (port 0: a free one, see ``server_port``);
    call ``serve_forever`` or run :func:`serve_in_thread`."""
    return make_server(host, port, app, server_class=_ThreadingServer,
                       handler_class=_QuietHandler)


def serve_in_thread(server: WSGIServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="smartiot-api", daemon=True)
    thread.start()
    return thread
