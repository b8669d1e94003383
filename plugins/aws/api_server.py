"""The REST API of the AWS backend on a local port, as ``serverless-offline``
would serve it: the Lambda handler (plugins/aws/lambdas/api.py) behind
plugins/api/wsgi.py's adapter, with the local Cognito authorizer
(plugins/aws/cognito/authorizer.py) in front. The sandbox serves it on port
3000.

A request without a token, or with a forged, expired or foreign one, is
answered 401 before the handler runs; the handler gets only the verified
claims, in a request context the adapter builds from scratch (nothing a
client sends becomes identity). CORS preflights are answered by the API's
resolver as API Gateway's CORS configuration would.
"""

from __future__ import annotations

import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from plugins.api.wsgi import ApiWsgiApp, serve, serve_in_thread
from plugins.aws.cognito.authorizer import CognitoAuthorizer
from plugins.aws.lambdas.api import Handler, Once, build_parts, make_api_handler
from plugins.aws.settings import AwsSettings
from plugins.aws.telemetry.select import DEFAULT as DEFAULT_TELEMETRY

DEFAULT_PORT = 3000  # serverless-offline's, as in the seed


def serve_api(settings: AwsSettings, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
              telemetry: str = DEFAULT_TELEMETRY,
              identity_pool_id: str | None = None) -> WSGIServer:
    """Serve the API over the aws backend of ``settings`` (which must name the
    user pool and its app client) on ``host:port`` (0: a free port, see
    ``server.server_port``), already answering in a background thread. Stop it
    with ``server.shutdown(); server.server_close()``. ``identity_pool_id``:
    where ``POST /me/iot-access`` finds consoles' identities (None: the
    function's environment, as the sandbox sets it)."""
    authorizer = CognitoAuthorizer.for_settings(settings)
    # now: a wrong setting fails here, not later
    parts = build_parts(settings, telemetry, identity_pool_id)
    app = ApiWsgiApp(one_at_a_time(make_api_handler(Once(lambda: parts))), authorizer,
                     where_tokens_come_from="the ID token of a sign-in to the stage's "
                     "Cognito user pool: `smartiot login` or the console's sign-in")
    server = serve(app, host, port)
    serve_in_thread(server)
    return server


def one_at_a_time(handler: Handler) -> Handler:
    """Resolve one request at a time, as Lambda hands a container one event at a
    time. Powertools keeps the request being resolved in a class attribute
    (``BaseRouter.current_event``) that every thread shares, so two requests
    resolved at once on this threaded server could read each other's event:
    another caller's claims, body or path. Requests still arrive, are read and
    have their token checked in parallel; a command waiting for a device's
    answer holds the others back for as long (seconds), as a Lambda with
    reserved concurrency 1 would."""
    lock = threading.Lock()

    def handle(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            return handler(event, context)

    return handle


def api_url(server: WSGIServer) -> str:
    host = server.server_address[0]
    name = host.decode() if isinstance(host, bytes) else str(host)
    return f"http://{name}:{server.server_port}"
