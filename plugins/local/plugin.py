"""Hook implementations of the local backend plugin."""

from __future__ import annotations

from collections.abc import Callable

from core.hookspecs import hookimpl
from core.registrations import BackendSpec, CliCommand


@hookimpl
def smartiot_register_backends(register: Callable[[BackendSpec], None]) -> None:
    from plugins.local.backend import build_local_backend

    register(
        BackendSpec(
            name="local",
            description="Store on this machine (SQLite, or PostgreSQL for a team) "
            "fed by the local MQTT hub",
            factory=build_local_backend,
        )
    )


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.local.commands import configure_db, run_db

    register(CliCommand("db", "show or apply database migrations", configure_db, run_db))
