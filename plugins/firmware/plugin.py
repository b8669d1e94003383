"""Hook implementations of the Firmware plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import CliCommand, PageSpec


def _page(context: AppContext) -> Any:
    from plugins.firmware.widgets.firmware_page import build_firmware_page

    return build_firmware_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("firmware", "Firmware", _page, icon="firmware", order=30,
                      tooltip="Firmware library and OTA deployments"))


@hookimpl
def smartiot_register_cli_commands(register: Callable[[CliCommand], None]) -> None:
    from plugins.firmware.commands import (
        configure_deploy,
        configure_firmware,
        run_deploy,
        run_firmware,
    )

    register(CliCommand("firmware", "firmware library: add, list, verify, delete, key",
                        configure_firmware, run_firmware))
    register(CliCommand("deploy", "OTA deployments: create, list, status, cancel, pause, "
                        "resume, retry", configure_deploy, run_deploy))
