"""What the screenshot scripts share: wait for the console while its event
loop runs, and grab a widget once pending paints are done (a grab taken at
once can catch a half-laid-out window)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QApplication, QWidget


def wait_for(app: QApplication, done: Callable[[], bool], timeout_s: float = 20.0) -> None:
    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise SystemExit("screenshot: timed out waiting for the console")
        app.processEvents()
        time.sleep(0.02)


def grab(app: QApplication, widget: QWidget, path: Path) -> None:
    for _ in range(20):
        app.processEvents()
        time.sleep(0.02)
    widget.grab().save(str(path))
    print(f"saved {path}")
