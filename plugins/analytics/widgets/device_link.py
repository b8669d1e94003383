"""Open a device's detail page from anywhere in Analytics.

Through the navigation service the window hands to plugins
(``context.navigation``, core/ports/navigation.py), never by importing the
Devices plugin or reaching into the window: the Devices page declares the
``device`` target and serves it once its table is filled, so a click made
while it is still loading is delivered then, without retries.
"""

from __future__ import annotations

from core.context import AppContext

DEVICE_TARGET = "device"


def open_device_detail(context: AppContext, device_id: str) -> bool:
    """False when there is no window with a Devices page to show it on."""
    return context.navigation.open(DEVICE_TARGET, device_id)
