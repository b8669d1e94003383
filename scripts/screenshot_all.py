"""Grab every page of the real console, in the light and the dark theme, with the demo fleet.

Run by ``scripts/screenshots.sh`` (``make screenshots``) under a virtual X
server. One window on the default ``local`` profile in a throw-away config and
data directory: the embedded broker, the hub and the demo fleet, exactly what
a new user sees. It waits until the demo shows its problems (alerts, an
offline device, a firmware update), then visits every page, every tab of a
page and a few dialogs in both themes and saves:

    docs/screenshots/<page>-<theme>.png            e.g. devices-light.png
    docs/screenshots/<page>-<tab>-<theme>.png      e.g. analytics-history-dark.png
    docs/screenshots/device-detail-<theme>.png     the server-room sensor's detail
    docs/screenshots/dialog-<name>-<theme>.png     plugins, settings, about

Page and tab names come from the running window, so a page a plugin adds is
photographed without changing this script.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# The demo's code-signing key and its passphrase belong to the throw-away data
# directory, never to the person's keyring.
os.environ.setdefault("SMARTIOT_SECRETS_BACKEND", "file")

from PySide6.QtWidgets import QApplication, QTabWidget, QWidget  # noqa: E402

from console.app import build_main_window, ensure_application  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.model import AlertState, DeviceStatus  # noqa: E402
from core.plugins import PluginManager  # noqa: E402
from core.ports.alerts import AlertQuery  # noqa: E402

DETAIL_DEVICE = "server-00000"


def _settle(app: QApplication, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def _wait(app: QApplication, what: str, condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        _settle(app, 0.25)
    print(f"screenshots: {what} not seen after {timeout:.0f} s; taking them anyway",
          file=sys.stderr)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.replace("&", "").lower()).strip("-")


def _top_tabs(page: QWidget) -> QTabWidget | None:
    """The page's own tab bar (the outermost visible one), if it has tabs."""
    tabs = [t for t in page.findChildren(QTabWidget) if t.isVisible()]
    if not tabs:
        return None

    def depth(widget: QWidget) -> int:
        n = 0
        while widget is not None and widget is not page:
            widget = widget.parentWidget()
            n += 1
        return n

    return min(tabs, key=depth)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="1400x900", help="WIDTHxHEIGHT (default 1400x900)")
    parser.add_argument("--themes", default="light,dark")
    parser.add_argument("--warmup", type=float, default=45.0,
                        help="longest wait for the demo fleet's alerts (default 45 s)")
    parser.add_argument("--wait", type=float, default=2.0, help="seconds per page to load")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    themes = [t.strip() for t in args.themes.split(",") if t.strip()]
    args.output.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    app = ensure_application([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="smartiot-shots-") as tmp:
        config = load_config(Path(tmp) / "config.toml", Path(tmp) / "data", env={},
                             overrides={"theme": themes[0]})
        context = AppContext(config, PluginManager(entry_points=False))
        window = build_main_window(context)
        context.plugins.startup(context)
        try:
            window.resize(width, height)
            window.show()
            backend = context.backend

            def demo_ready() -> bool:
                alerts = backend.alerts.list(AlertQuery(states=frozenset({AlertState.ACTIVE})))
                offline = [d for d in backend.registry.list()
                           if d.status is DeviceStatus.OFFLINE and d.last_seen]
                images = backend.firmware.list() if backend.firmware else []
                return len(alerts) >= 2 and bool(offline) and bool(images)

            _wait(app, "the demo fleet's alerts", demo_ready, args.warmup)

            def save(widget: QWidget, name: str) -> None:
                path = args.output / f"{name}.png"
                if not widget.grab().save(str(path)):
                    raise SystemExit(f"screenshots: could not write {path}")
                written.append(path)

            def shoot(page: QWidget, name: str, theme: str) -> None:
                """The page, or each of its tabs."""
                tabs = _top_tabs(page)
                if tabs is None or tabs.count() < 2:
                    save(window, f"{name}-{theme}")
                    return
                for index in range(tabs.count()):
                    tabs.setCurrentIndex(index)
                    _settle(app, args.wait)
                    tab = _slug(tabs.tabText(index)) or str(index)
                    save(window, f"{name}-{tab}-{theme}")
                tabs.setCurrentIndex(0)

            for theme in themes:
                window.set_theme(theme, persist=False)
                for page_id in window.page_ids():
                    page = window.show_page(page_id)
                    _settle(app, args.wait)
                    shoot(page, page_id, theme)
            # a device's detail last: once open it stays beside the list
            for theme in themes:
                window.set_theme(theme, persist=False)
                if "devices" in window.page_ids():
                    page = window.show_page("devices")
                    if getattr(page, "show_device", None) and page.show_device(DETAIL_DEVICE):
                        _settle(app, args.wait)
                        shoot(page, "device-detail", theme)
                for name, opener in (("plugins", window.open_plugins_dialog),
                                     ("settings", window.open_settings_dialog),
                                     ("about", window.open_about_dialog)):
                    dialog = opener()
                    _settle(app, 0.5)
                    save(dialog, f"dialog-{name}-{theme}")
                    dialog.close()
        finally:
            window.close()
            context.plugins.shutdown(context)
            context.close()
    for path in written:
        print(f"screenshots: wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
