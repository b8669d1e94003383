"""Hook implementations of the local backend plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.hookspecs import hookimpl
from core.registrations import BackendSpec, CliCommand, StatusWidgetSpec

# The hub evaluates the alert rule types the alerts plugin registers when it is
# there (the engine's built-in ones otherwise).
OPTIONAL = ("alerts",)


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
    from plugins.local.commands import configure_db, configure_hub, run_db, run_hub

    register(CliCommand("db", "show or apply database migrations", configure_db, run_db))
    register(CliCommand("hub", "run the hub headless (ingestion, shadows, alerts) for a team",
                        configure_hub, run_hub))
    from plugins.local import broker_cli

    register(CliCommand("broker", "a team broker's mosquitto config, passwords and ACL",
                        broker_cli.configure, broker_cli.run))


def _hub_status(context: Any) -> Any:
    from plugins.local.widgets.status import build_hub_status

    return build_hub_status(context)


@hookimpl
def smartiot_register_status_widgets(register: Callable[[StatusWidgetSpec], None]) -> None:
    register(StatusWidgetSpec("local.hub", _hub_status, order=10))
