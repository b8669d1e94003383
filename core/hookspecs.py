"""Every hook a Smart IoT plugin can implement.

Register hooks take a ``register`` callback (llm's pattern) so plugins hand
over typed records from ``core.registrations`` instead of returning loosely
shaped values. docs/plugins.md documents each hook; a test enforces that.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from core.context import AppContext
    from core.registrations import (
        AlertRuleTypeSpec,
        ApiClientSpec,
        BackendSpec,
        CliCommand,
        IdentityProviderSpec,
        PageSpec,
        SensorModelSpec,
        StatusWidgetSpec,
    )

PROJECT_NAME = "smartiot"
ENTRY_POINT_GROUP = "smartiot.plugins"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def smartiot_register_backends(register: Callable[[BackendSpec], None]) -> None:
    """Register data sources (local MQTT hub, AWS, ...) that implement the ports."""


@hookspec
def smartiot_register_api_clients(register: Callable[[ApiClientSpec], None]) -> None:
    """Register clients of the REST API that a profile's ``api_url`` connects through."""


@hookspec
def smartiot_register_identity_providers(register: Callable[[IdentityProviderSpec], None]
                                         ) -> None:
    """Register sign-ins (e.g. Cognito) for backends whose REST API has none of its own."""


@hookspec
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    """Register pages for the main window's navigation."""


@hookspec
def smartiot_register_status_widgets(register: Callable[[StatusWidgetSpec], None]) -> None:
    """Register widgets for the main window's status bar."""


@hookspec
def smartiot_register_alert_rule_types(register: Callable[[AlertRuleTypeSpec], None]) -> None:
    """Register kinds of alert rule the alert engine can evaluate."""


@hookspec
def smartiot_register_sensor_models(register: Callable[[SensorModelSpec], None]) -> None:
    """Register simulated sensor models for the fleet simulator."""


@hookspec
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    """Register ``smartiot`` subcommands."""


@hookspec
def smartiot_startup(context: AppContext) -> None:
    """Called once the configuration, store and backend are ready."""


@hookspec
def smartiot_shutdown(context: AppContext) -> None:
    """Called before the program exits; release threads and connections here."""
