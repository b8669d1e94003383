"""Walk the console with its hub in a child process (``hub_process = true``) and
take screenshots: the devices page with a device's detail (a ping answered),
the alerts page after acknowledging an alert the hub process raised, the
firmware library, and a device's live chart. Exits non-zero when a step does
not work, and checks that the hub process stops with the console.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot_hub_process.py \
        docs/screenshots [--moved]

``--moved``: the default profile with ``hub_process_above = 30``, so the console
starts with its hub inside and moves it out as the 40-device demo fleet
registers; the same walk then runs beside the moved hub (hub-moved-*.png).

The demo fleet on a private mosquitto; config, data and secrets in a
temporary directory.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from scripts.shot_tools import grab, wait_for  # noqa: E402


def main(out: Path, moved: bool = False) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="smartiot-hub-process-"))
    os.environ["SMARTIOT_DATA_DIR"] = str(tmp / "data")
    os.environ.setdefault("SMARTIOT_SECRETS_BACKEND", "file")
    os.environ.setdefault("SMARTIOT_SECRETS_PASSPHRASE", "screenshot only")

    from console.app import build_main_window, ensure_application
    from core.config import load_config
    from core.context import AppContext
    from core.model import AlertState
    from core.plugins import PluginManager

    app = ensure_application()
    config = load_config(tmp / "config.toml", tmp / "data", env={})
    profile = dataclasses.replace(config.profile, broker="embedded", hub_process=not moved,
                                  hub_process_above=30 if moved else 1500)
    config = dataclasses.replace(config, profiles={**config.profiles, "local": profile})
    context = AppContext(config, PluginManager())
    window = build_main_window(context)
    window.resize(1400, 900)
    window.show()
    backend: object = context.backend
    prefix = "hub-moved" if moved else "hub-process"
    if moved:
        handover = backend.handover  # type: ignore[attr-defined]
        wait_for(app, lambda: handover.moved is not None, 60)
        print(f"the hub moved out: {handover.moved}")
        assert not handover.moved.error
    hub_pid = backend.hub_process.pid  # type: ignore[attr-defined]
    assert backend.hub is None  # type: ignore[attr-defined]
    print(f"hub process {hub_pid}, receiver process {backend.receiver.pid}")  # type: ignore[attr-defined]

    window.show_page("devices")
    devices = window.page_widget("devices")
    wait_for(app, lambda: devices.model.rowCount() >= 20, 60)
    wait_for(app, lambda: sum(1 for r in devices.model._rows if r.battery is not None) >= 10, 60)
    from core.model import DeviceStatus

    # statuses reach the table with the hub's registry (live, or the page's
    # periodic re-read when the console heard a device before the hub wrote it)
    wait_for(app, lambda: sum(1 for r in devices.model._rows
                              if r.device.status is DeviceStatus.ONLINE) >= 30, 60)
    ids = [devices.model.device(n).device_id for n in range(devices.model.rowCount())]
    device_id = next((d for d in ids if d.startswith("office-")), ids[0])
    assert devices.show_device(device_id)
    detail = devices.detail
    wait_for(app, lambda: detail.loaded_device_id == device_id, 30)
    detail.tabs.setCurrentIndex(2)
    detail.commands.ping_button.click()
    wait_for(app, lambda: "ping: ok" in detail.commands.command_status.text(), 30)
    detail.tabs.setCurrentIndex(0)
    wait_for(app, lambda: bool(detail.overview.loaded_device_id), 10)
    # the shown device's every metric arrives live (LiveFeed.focus)
    wait_for(app, lambda: len(detail.overview._value_rows) >= 3, 30)
    wait_for(app, lambda: sum(1 for r in devices.model._rows
                              if r.device.status is DeviceStatus.ONLINE) >= 36, 60)
    grab(app, window, out / f"{prefix}-devices-light.png")

    store_alerts = backend.alerts  # type: ignore[attr-defined]
    wait_for(app, lambda: any(a.state is AlertState.ACTIVE for a in store_alerts.list()), 90)
    alert = next(a for a in store_alerts.list() if a.state is AlertState.ACTIVE)
    window.show_page("alerts")
    alerts = window.page_widget("alerts")
    wait_for(app, lambda: alerts.model.row_of(alert.alert_id) is not None, 30)
    alerts.select_alerts([alert.alert_id])
    alerts.ack_button.click()
    dialog = alerts.comment_dialog
    dialog.comment.setPlainText("checked on site")
    dialog.buttons.button(dialog.buttons.StandardButton.Ok).click()
    wait_for(app, lambda: store_alerts.get(alert.alert_id).ack_comment == "checked on site", 30)
    grab(app, window, out / f"{prefix}-alerts-light.png")

    window.show_page("firmware")
    time.sleep(1)
    grab(app, window, out / f"{prefix}-firmware-light.png")

    window.show_page("devices")
    detail.open_live()
    analytics = window.page_widget("analytics")
    live = analytics.live
    live.picker.select([device_id], ["temperature", "humidity"])
    wait_for(app, lambda: live.readings_seen > 5, 60)
    grab(app, window, out / f"{prefix}-live-light.png")

    window.close()
    context.close()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            os.kill(hub_pid, 0)
        except ProcessLookupError:
            break
        try:
            if os.waitpid(hub_pid, os.WNOHANG)[0] == hub_pid:
                break
        except ChildProcessError:
            break
        time.sleep(0.2)
    else:
        raise SystemExit("the hub process outlived the console")
    print("the hub process stopped with the console")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--moved"]
    main(Path(args[0] if args else "docs/screenshots"), moved="--moved" in sys.argv[1:])
