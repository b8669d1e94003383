"""Hook implementations of the Firmware plugin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.context import AppContext
from core.hookspecs import hookimpl
from core.registrations import PageSpec


def _page(context: AppContext) -> Any:
    from plugins.firmware.widgets.firmware_page import build_firmware_page

    return build_firmware_page(context)


@hookimpl
def smartiot_register_pages(register: Callable[[PageSpec], None]) -> None:
    register(PageSpec("firmware", "Firmware", _page, icon="firmware", order=30,
                      tooltip="Firmware library and OTA deployments"))
