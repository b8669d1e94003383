"""What plugins hand to the register hooks.

Typed records instead of loosely shaped dicts, so a plugin author gets a
mypy error rather than a runtime surprise. Factories that build widgets return
``Any`` here because core must not know Qt; the console checks the type.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.context import AppContext
    from core.ports.backend import Backend
    from core.ports.identity_provider import IdentityProvider
    from core.ports.remote_api import RemoteSession


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A data source: ``factory(context)`` builds the ports for the active profile."""

    name: str
    description: str
    factory: Callable[[AppContext], Backend]


@dataclass(frozen=True, slots=True)
class ApiClientSpec:
    """A client of the REST API: ``connect(context)`` opens the session a
    profile's ``api_url`` names (core.ports.remote_api.RemoteSession)."""

    name: str
    description: str
    connect: Callable[[AppContext], RemoteSession]


@dataclass(frozen=True, slots=True)
class IdentityProviderSpec:
    """Who signs people in for profiles of ``backend`` whose REST API has no
    sign-in of its own (API Gateway: Cognito): ``connect(context)`` builds it
    (core.ports.identity_provider), and the API client sends its tokens."""

    name: str
    description: str
    backend: str
    connect: Callable[[AppContext], IdentityProvider]


@dataclass(frozen=True, slots=True)
class PageSpec:
    """A page in the main window's navigation.

    ``factory(context)`` returns a QWidget; ``order`` sorts the navigation
    (lower first); ``shortcut`` is a Qt key sequence such as "Ctrl+1";
    ``targets`` names what other plugins may open on this page through
    ``context.navigation.open(target, key)`` (e.g. "device"): the shell builds
    the page for them, and the page registers an opener per target.
    """

    page_id: str
    title: str
    factory: Callable[[AppContext], Any]
    icon: str = ""
    order: int = 100
    shortcut: str = ""
    tooltip: str = ""
    targets: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StatusWidgetSpec:
    """A widget for the status bar; ``permanent`` widgets sit on the right."""

    widget_id: str
    factory: Callable[[AppContext], Any]
    order: int = 100
    permanent: bool = True


@dataclass(frozen=True, slots=True)
class AlertRuleTypeSpec:
    """A kind of alert rule (threshold, rate of change, ...); ``factory(params)``
    builds the evaluator the alert engine calls."""

    type_name: str
    description: str
    factory: Callable[[dict[str, Any]], Any]
    parameters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SensorModelSpec:
    """A simulated sensor model for ``smartiot simulate``; ``factory(n, rng, params)``
    returns a vectorised model over ``n`` devices."""

    model_name: str
    description: str
    factory: Callable[..., Any]
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class CliCommand:
    """A ``smartiot <name>`` subcommand.

    ``configure`` adds arguments to the subparser; ``run(args, context)``
    returns the process exit code.
    """

    name: str
    help: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, AppContext], int]
    aliases: tuple[str, ...] = field(default_factory=tuple)
