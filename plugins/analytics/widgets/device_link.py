"""Open a device's detail page from anywhere in Analytics.

The same way the alert notifier brings the Alerts page forward: through the
main window's ``show_page`` and the page's own public method (here the Devices
page's ``show_device``), never by importing another plugin. The Devices page
fills its table in the background, so a first attempt may come too early; it
is retried for a few seconds.
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

DEVICES_PAGE = "devices"
RETRY_MS = 200
RETRIES = 50


def open_device_detail(origin: QWidget, device_id: str) -> bool:
    """False when there is no window with a Devices page to show it on."""
    window = origin.window()
    show_page = getattr(window, "show_page", None)
    if show_page is None:
        return False
    try:
        page = show_page(DEVICES_PAGE)
    except KeyError:
        return False
    show_device = getattr(page, "show_device", None)
    if show_device is None:
        return False
    _try(show_device, device_id, RETRIES)
    return True


def _try(show_device: object, device_id: str, left: int) -> None:
    shown = False
    with contextlib.suppress(RuntimeError):  # the page was closed meanwhile
        shown = bool(show_device(device_id))  # type: ignore[operator]
    if not shown and left > 0:
        QTimer.singleShot(RETRY_MS, lambda: _try(show_device, device_id, left - 1))
