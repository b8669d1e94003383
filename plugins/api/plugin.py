"""Hook implementations of the REST API plugin: one CLI command and the
console's client of the API (a profile's ``api_url``), no pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from core.hookspecs import hookimpl
from core.registrations import ApiClientSpec, CliCommand
from plugins.api.hub_server import (  # noqa: F401  (hooks: the API beside the hub)
    smartiot_shutdown,
    smartiot_startup,
)

if TYPE_CHECKING:
    from core.context import AppContext
    from core.ports.remote_api import RemoteSession


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.api.commands import configure_api, run_api

    register(CliCommand("api", "serve the REST API locally or issue a token for it",
                        configure_api, run_api))
    from plugins.api.login_commands import (
        configure_login,
        configure_logout,
        run_login,
        run_logout,
    )

    register(CliCommand("login", "sign in to the profile's REST API (hub or AWS Cognito); "
                        "commands then run as you", configure_login, run_login))
    register(CliCommand("logout", "sign out of the profile's REST API and forget the tokens",
                        configure_logout, run_logout))


def _connect(context: AppContext) -> RemoteSession:
    from plugins.api.client.identity_session import connect

    return connect(context)


@hookimpl
def smartiot_register_api_clients(register: Callable[[ApiClientSpec], None]) -> None:
    register(ApiClientSpec("http", "the REST API over HTTP: the hub's (team set-up) or API "
                           "Gateway's (AWS), with sign-in and refresh tokens", _connect))
