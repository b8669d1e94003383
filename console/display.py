"""Detect whether a window can be shown before Qt aborts the process.

Qt's own failure on a headless machine is a core dump with a plugin error;
technicians deserve a sentence that says what to do instead.
"""

from __future__ import annotations

import os
import sys


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def explain_missing_display() -> str:
    return (
        "smartiot: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
        "console window cannot open.\n"
        "  - On a desktop, run it from a graphical session.\n"
        "  - Over SSH, use `ssh -X`, or a virtual screen: `xvfb-run smartiot`.\n"
        "  - Headless pieces work without a display: `smartiot plugins`, `smartiot config`,\n"
        "    and (as they arrive) `smartiot hub`, `smartiot simulate`, `smartiot devices list`."
    )
