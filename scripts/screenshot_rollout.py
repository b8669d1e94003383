"""Screenshots of a firmware rollout and the pages around it, as a person does it.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_rollout.py

Starts the real console with the demo fleet (embedded broker, hub, simulator)
in a throw-away config and data directory, then works through the widgets: the
firmware Library, the new-deployment wizard (four pumps, the default abort rule
flagged as one that can never trip), the deployment monitor while the pumps
update and once they are done, a second, slow deployment canceled after its
first device (its cancel dialog, and the targets it never reached), the
Analytics dashboard, Live and History, the Devices list and one updated pump's
detail. Each is saved in the light and the dark theme as
docs/screenshots/<view>-<theme>.png.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ.setdefault("SMARTIOT_SECRETS_BACKEND", "file")

from PySide6.QtWidgets import QApplication, QWidget, QWizard  # noqa: E402

from console.app import build_main_window, ensure_application  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.plugins import PluginManager  # noqa: E402

PUMPS = ["pump-00000", "pump-00001", "pump-00003", "pump-00004"]
LATER = ["pump-00005", "pump-00006", "pump-00007"]


def settle(app: QApplication, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def wait(app: QApplication, what: str, condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        settle(app, 0.25)
    print(f"screenshots: {what} not seen after {timeout:.0f} s", file=sys.stderr)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--size", default="1400x900")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    args.output.mkdir(parents=True, exist_ok=True)
    app = ensure_application([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="smartiot-rollout-shots-") as tmp:
        config = load_config(Path(tmp) / "config.toml", Path(tmp) / "data", env={},
                             overrides={"theme": "light"})
        context = AppContext(config, PluginManager(entry_points=False))
        window = build_main_window(context)
        context.plugins.startup(context)
        try:
            window.resize(width, height)
            window.show()
            backend = context.backend
            wait(app, "the demo fleet and its update",
                 lambda: len(backend.registry.list()) >= 30 and bool(backend.firmware.list()),
                 60)

            def save(widget: QWidget, name: str, theme: str) -> None:
                path = args.output / f"{name}-{theme}.png"
                widget.grab().save(str(path))
                print(f"screenshots: wrote {path}")

            firmware = window.show_page("firmware")
            settle(app, 2)
            # The wizard: four pumps, the newest pump image, the default rates.
            firmware.tabs.setCurrentWidget(firmware.deployments)
            firmware.deployments.new_deployment()
            wizard = firmware.deployments.wizard
            assert wizard is not None
            wizard.targets.by_ids.setChecked(True)
            wizard.targets.ids.setPlainText(" ".join(PUMPS))
            wait(app, "the target count", lambda: wizard.targets.match is not None
                 and wizard.targets.match.count == len(PUMPS), 20)
            wizard.next()
            wait(app, "the plan", lambda: wizard.firmware_page.plan is not None, 20)
            wizard.next()
            wizard.rollout.per_minute.setValue(6)
            wizard.rollout.description.setText("pump 2.2.0 on four pumps")
            settle(app, 0.5)
            for theme in ("light", "dark"):
                window.set_theme(theme, persist=False)
                settle(app, 0.5)
                save(wizard, "deployment-wizard", theme)
            window.set_theme("light", persist=False)
            wizard.next()
            wait(app, "the review", lambda: wizard.review.plan is not None, 20)
            created: list[object] = []
            wizard.created.connect(created.append)
            wizard.button(QWizard.WizardButton.FinishButton).click()
            wait(app, "the new deployment", lambda: bool(created), 20)
            monitor = firmware.deployments.monitor
            wait(app, "the rollout under way", lambda: monitor.snapshot is not None and
                 monitor.snapshot.finished >= 1, 120)
            settle(app, 1.5)
            save(window, "deployment-monitor-running", "light")
            wait(app, "the rollout's end", lambda: monitor.snapshot is not None
                 and monitor.snapshot.deployment.is_finished, 240)
            done_id = monitor.deployment_id
            settle(app, 6)

            # A second rollout, slow, canceled after its first device: the
            # targets it never reached end CANCELED ("not started").
            firmware.deployments.new_deployment()
            wizard = firmware.deployments.wizard
            assert wizard is not None
            wizard.targets.by_ids.setChecked(True)
            wizard.targets.ids.setPlainText(" ".join(LATER))
            wait(app, "the second target count", lambda: wizard.targets.match is not None
                 and wizard.targets.match.count == len(LATER), 20)
            wizard.next()
            wait(app, "the second plan", lambda: wizard.firmware_page.plan is not None, 20)
            wizard.next()
            wizard.rollout.per_minute.setValue(1)
            _kind, _pct, minimum = wizard.rollout.abort_row(0)
            minimum.setValue(len(LATER))
            wizard.rollout.description.setText("pump 2.2.0, second wave")
            wizard.next()
            wait(app, "the second review", lambda: wizard.review.plan is not None, 20)
            created.clear()
            wizard.created.connect(created.append)
            wizard.button(QWizard.WizardButton.FinishButton).click()
            wait(app, "the second deployment", lambda: bool(created), 20)
            wait(app, "the second rollout under way", lambda: monitor.snapshot is not None
                 and monitor.deployment_id != done_id and monitor.snapshot.finished >= 1, 120)
            canceled_id = monitor.deployment_id
            monitor.ask_cancel()
            settle(app, 1)
            dialog = monitor.cancel_dialog
            assert dialog is not None
            wait(app, "the cancel dialog's counts", dialog.confirm.isEnabled, 20)
            save(dialog, "deployment-cancel-dialog", "light")
            dialog.confirm.click()
            wait(app, "the cancel", lambda: monitor.snapshot is not None
                 and monitor.snapshot.deployment.is_finished, 30)
            settle(app, 3)
            for theme in ("light", "dark"):
                window.set_theme(theme, persist=False)
                window.show_page("firmware")
                firmware.tabs.setCurrentWidget(firmware.deployments)
                for deployment_id, name in ((done_id, "deployment-monitor"),
                                            (canceled_id, "deployment-monitor-canceled")):
                    firmware.deployments.select(str(deployment_id))
                    settle(app, 3)
                    save(window, name, theme)
                firmware.tabs.setCurrentWidget(firmware.library)
                settle(app, 2)
                save(window, "firmware-library", theme)

                analytics = window.show_page("analytics")
                for tab, name in ((analytics.dashboard, "analytics-dashboard"),
                                  (analytics.live, "analytics-live"),
                                  (analytics.history, "analytics-history")):
                    analytics.tabs.setCurrentWidget(tab)
                    settle(app, 4)
                    save(window, name, theme)
                analytics.tabs.setCurrentWidget(analytics.dashboard)

                devices = window.show_page("devices")
                devices.close_detail()
                settle(app, 2)
                save(window, "devices-page", theme)
                devices.show_device(PUMPS[0])
                settle(app, 3)
                save(window, "device-detail", theme)
                devices.close_detail()
        finally:
            window.close()
            context.plugins.shutdown(context)
            context.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
