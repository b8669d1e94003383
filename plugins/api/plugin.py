"""Hook implementations of the REST API plugin: one CLI command, no pages."""

from __future__ import annotations

from collections.abc import Callable

from core.hookspecs import hookimpl
from core.registrations import CliCommand


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.api.commands import configure_api, run_api

    register(CliCommand("api", "serve the REST API locally or issue a token for it",
                        configure_api, run_api))
