"""Detect whether a window can be shown before Qt aborts the process.

Qt's own failure on a headless machine is a core dump with a plugin error;
technicians deserve a sentence that says what to do instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence


def has_display() -> bool:
    platform = os.environ.get("QT_QPA_PLATFORM", "")
    if platform.startswith(("offscreen", "minimal", "vnc", "eglfs", "linuxfb")):
        return True
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def explain_missing_display(commands: Sequence[str] = ()) -> str:
    """``commands``: the subcommands actually registered, so the list never names
    one that does not exist (or leaves out one a plugin added)."""
    names = list(dict.fromkeys(["plugins", "config", *commands]))
    lines = ["    " + ", ".join(f"`smartiot {n}`" for n in names[i:i + 4]) + ","
             for i in range(0, len(names), 4)]
    if lines:
        lines[-1] = lines[-1].rstrip(",")
    return (
        "smartiot: no display found (neither DISPLAY nor WAYLAND_DISPLAY is set), so the "
        "console window cannot open.\n"
        "  - On a desktop, run it from a graphical session.\n"
        "  - Over SSH, use `ssh -X`, or a virtual screen: `xvfb-run -a smartiot`\n"
        "    (Debian/Ubuntu: `sudo apt-get install xvfb`; `make run` brings Qt's X11 libraries).\n"
        "  - These commands work without a display (`smartiot COMMAND --help`):\n"
        + "\n".join(lines)
    )
