"""Hook implementations of the Devices plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import CliCommand, PageSpec


def _page(context: AppContext) -> Any:
    from plugins.devices.widgets.devices_page import build_devices_page

    return build_devices_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("devices", "Devices", _page, icon="devices", order=10,
                      tooltip="Fleet inventory: find a device and see what it is doing",
                      targets=("device",)))


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.devices.commands import configure_devices, run_devices

    register(CliCommand("devices", "list, show and register devices; send them commands",
                        configure_devices, run_devices))
