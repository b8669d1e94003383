"""The sandbox's REST API on loopback (port 3000, serverless-offline's): the
API Lambda behind the local Cognito authorizer (``plugins.aws.api_server``),
stopped by the sandbox with the rest."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class RunningApi:
    url: str
    stop: Callable[[], None]


def start_api(*, host: str, port: int, settings: Any) -> RunningApi:
    """``settings`` (plugins.aws.settings.AwsSettings) must name the user pool
    and its app client: the authorizer checks tokens against them."""
    from plugins.aws import api_server

    server = api_server.serve_api(settings, host, port)

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return RunningApi(api_server.api_url(server), stop)
