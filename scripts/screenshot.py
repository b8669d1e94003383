"""Save a screenshot of the real console window (built-in plugins included).

Used to look at what people will see, under a virtual X server:

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python scripts/screenshot.py \
        docs/screenshots/devices-dark.png --theme dark --page devices

Config and data live in a throw-away directory so a screenshot never touches
the user's profile. If the built-in plugins cannot be loaded (an early
checkout, a broken plugin) the window still opens and shows whatever state
results, because that state is worth seeing too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from PySide6.QtWidgets import QApplication, QWidget  # noqa: E402

from console.app import build_main_window, ensure_application  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.plugins import PluginManager  # noqa: E402


def _plugins() -> PluginManager:
    try:
        return PluginManager()
    except Exception as exc:  # noqa: BLE001 - fall back to an empty console, still worth a look
        print(f"screenshot: built-in plugins unavailable ({exc}); using none", file=sys.stderr)
        return PluginManager(builtins=(), entry_points=False)


def _seed(url: str, count: int) -> None:
    """A plausible fleet for a screenshot: mixed types, mostly online, a few in trouble."""
    import math
    import random
    from datetime import UTC, datetime, timedelta

    from core.model import Alert, Device, DeviceStatus, Location, Severity
    from core.store import Store

    rng = random.Random(7)
    now = datetime.now(UTC)
    kinds = [("environmental", "env"), ("power_meter", "meter"), ("pump", "pump"),
             ("tracker", "trk")]
    statuses = [DeviceStatus.ONLINE] * 14 + [DeviceStatus.OFFLINE] * 3 + [
        DeviceStatus.WARNING, DeviceStatus.ERROR]
    with Store.open(url) as store:
        devices = []
        for i in range(count):
            device_type, prefix = kinds[i % len(kinds)]
            devices.append(Device(
                f"{prefix}-{i:05d}", name=f"{device_type.replace('_', ' ').title()} {i}",
                device_type=device_type, status=rng.choice(statuses),
                organization=rng.choice(["acme-north", "acme-south"]),
                location=Location(52.5 + rng.random() / 10, 13.4 + rng.random() / 10),
                firmware_version=rng.choice(["1.4.2", "1.4.2", "1.5.0", "1.5.1-rc.1"]),
                tags=frozenset({rng.choice(["hall-a", "hall-b", "roof", "yard"])}),
                last_seen=now - timedelta(seconds=rng.randint(1, 900)),
            ))
        store.registry.upsert_many(devices)
        from core.model import Reading

        readings = []
        for n, device in enumerate(devices):
            battery = 15 + (n * 37) % 85
            rssi = -45 - (n * 13) % 50
            for k in range(15):  # one reading a minute for the last 15 minutes
                ts = now - timedelta(minutes=14 - k)
                readings += [
                    Reading(device.device_id, "battery_pct", ts, battery - k * 0.05),
                    Reading(device.device_id, "rssi", ts, rssi + rng.uniform(-3, 3)),
                    Reading(device.device_id, "temperature", ts,
                            21 + 3 * math.sin((n + k) / 3) + rng.uniform(-0.4, 0.4)),
                ]
        store.telemetry.write_batch(readings)
        for device in rng.sample(devices, min(12, count)):
            store.alerts.add(Alert(device.device_id, "temperature-high",
                                   rng.choice(list(Severity)),
                                   "temperature above 70 °C for 5 min",
                                   round(70 + rng.random() * 15, 1),
                                   created_at=now - timedelta(minutes=rng.randint(1, 300))))


class _BrokenPlugin:
    """Fails the way third-party plugins do: a dependency missing at call time."""

    from core.hookspecs import hookimpl

    @hookimpl
    def smartiot_register_pages(self, register: object) -> None:
        raise ModuleNotFoundError("No module named 'weatherlib'")


def _settle(app: QApplication, seconds: float) -> None:
    """Let background loads finish and the window paint."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="PNG file to write")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--size", default="1280x800", help="WIDTHxHEIGHT (default 1280x800)")
    parser.add_argument("--page", help="page id to open (default: the first page)")
    parser.add_argument("--dialog", choices=("plugins", "settings", "about"),
                        help="grab this dialog instead of the main window")
    parser.add_argument("--device", metavar="ID",
                        help="open this device's detail on the page (pages with show_device)")
    parser.add_argument("--wait", type=float, default=2.0, help="seconds to let pages load")
    parser.add_argument("--with-broken-plugin", action="store_true",
                        help="add a plugin whose hook fails, to show how it is reported")
    parser.add_argument("--scenario", metavar="NAME",
                        help="instead of the demo fleet, run this bundled scenario live "
                        "(e.g. factory: 500 devices) for --warmup seconds first")
    parser.add_argument("--warmup", type=float, default=20.0,
                        help="seconds the --scenario fleet runs before the screenshot")
    parser.add_argument("--sample-fleet", type=int, default=0, metavar="N",
                        help="fill the throw-away store with N sample devices and some alerts")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    app = ensure_application([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="smartiot-shot-") as tmp:
        overrides: dict[str, object] = {"theme": args.theme}
        if args.scenario:
            overrides["demo_fleet"] = False
        config = load_config(Path(tmp) / "config.toml", Path(tmp) / "data", env={},
                             overrides=overrides)
        if args.sample_fleet:
            _seed(config.database_url, args.sample_fleet)
        plugins = _plugins()
        if args.with_broken_plugin:
            plugins.register("weather-overlay", _BrokenPlugin(), source="entry point "
                             "weather_overlay.plugin (weather-overlay 0.3.1)")
        context = AppContext(config, plugins)
        live_fleet = None
        if args.scenario:
            from importlib import resources

            from simulator.api import RunningFleet
            from simulator.scenario import load_scenario

            backend = context.backend
            path = Path(str(resources.files("resources") / "scenarios" / f"{args.scenario}.toml"))
            live_fleet = RunningFleet(load_scenario(path), broker_url=backend.broker_url,
                                      speed=4.0, client_id_prefix="shot-").start()
            from plugins.local.alerting import seed_default_rules

            seed_default_rules(backend.store)
            time.sleep(args.warmup)
        window = build_main_window(context)
        context.plugins.startup(context)
        try:
            window.resize(width, height)
            window.show()
            if args.page:
                window.show_page(args.page)
            _settle(app, args.wait)
            if args.device and args.page:
                page = window.page_widget(args.page)
                if hasattr(page, "show_device") and page.show_device(args.device):
                    _settle(app, args.wait)
                else:
                    print(f"screenshot: could not open device {args.device}", file=sys.stderr)
            target: QWidget = window
            if args.dialog:
                opener = {"plugins": window.open_plugins_dialog,
                          "settings": window.open_settings_dialog,
                          "about": window.open_about_dialog}[args.dialog]
                target = opener()
                _settle(app, 0.5)
            args.output.parent.mkdir(parents=True, exist_ok=True)
            if not target.grab().save(str(args.output)):
                print(f"screenshot: could not write {args.output}", file=sys.stderr)
                return 1
            print(f"screenshot: wrote {args.output} ({target.width()}x{target.height()}, "
                  f"pages: {', '.join(window.page_ids()) or 'none'})")
        finally:
            window.close()
            context.plugins.shutdown(context)
            if live_fleet is not None:
                live_fleet.stop()
            context.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
