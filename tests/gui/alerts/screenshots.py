"""Screenshots of the Alerts page and an alert's details with a realistic dataset.

    xvfb-run -a -s "-screen 0 1400x900x24" .venv/bin/python -m tests.gui.alerts.screenshots

Seeds like ``scripts/screenshot.py --sample-fleet 500`` (same devices and
alerts), then adds what these pages also show: rules, telemetry around each
alert, a few acknowledged/snoozed alerts with audit entries, and quarantined
messages. Writes alerts-page.png and alert-detail.png to the --out folder.
"""

from __future__ import annotations

import argparse
import gc
import math
import random
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import screenshot as base  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from console.app import build_main_window, ensure_application  # noqa: E402
from core.config import load_config  # noqa: E402
from core.context import AppContext  # noqa: E402
from core.model import (  # noqa: E402
    Alert,
    AlertRule,
    AlertState,
    QuarantinedMessage,
    Reading,
    RuleScope,
    Severity,
)
from core.store import Store  # noqa: E402


def seed_extras(url: str) -> None:
    rng = random.Random(11)
    now = datetime.now(UTC)
    with Store.open(url) as store:
        rules = [
            AlertRule("Overheating", "threshold",
                      {"metric": "temperature", "op": "above", "limit": 70, "hysteresis": 2,
                       "min_duration_s": 300}, severity=Severity.CRITICAL,
                      rule_id="temperature-high", escalate_after_s=900),
            AlertRule("Battery low", "threshold",
                      {"metric": "battery", "op": "below", "limit": 15},
                      scope=RuleScope(device_types=frozenset({"tracker"})),
                      rule_id="battery-low"),
            AlertRule("Device silent", "no_data", {"minutes": 10}, severity=Severity.WARNING,
                      rule_id="no-data-10"),
            AlertRule("Pressure spike", "rate_of_change",
                      {"metric": "pressure", "max_per_minute": 0.5, "window_s": 120},
                      scope=RuleScope(device_types=frozenset({"pump"})), rule_id="pressure-spike",
                      enabled=False),
        ]
        for rule in rules:
            store.rules.add(rule)
        alerts = store.alerts.list()
        trackers = [d for d in store.registry.list() if d.device_type == "tracker"][:3]
        for i, device in enumerate(trackers):
            created = now - timedelta(minutes=12 + 40 * i)
            alert = Alert(device.device_id, "battery-low", Severity.WARNING,
                          f"battery below 15 % ({11 - i} %)", float(11 - i),
                          created_at=created, updated_at=created)
            store.alerts.add(alert)
            alerts.append(alert)
        readings = []
        for alert in alerts:
            metric = "battery" if alert.rule_id == "battery-low" else "temperature"
            peak = alert.value or 75.0
            for minute in range(-40, 41):
                ts = alert.created_at + timedelta(minutes=minute)
                if ts > now:
                    break
                if metric == "temperature":
                    def rise(m: float) -> float:
                        return 1 / (1 + math.exp(-(m + 3) / 4))
                    value = 58 + (peak - 58) * rise(minute) / rise(0) + rng.gauss(0, 0.4)
                else:
                    value = max(0.0, (alert.value or 10) + 0.12 * (-minute) + rng.gauss(0, 0.2))
                readings.append(Reading(alert.device_id, metric, ts, round(value, 2)))
        store.telemetry.write_batch(readings)
        ordered = sorted(alerts, key=lambda a: (-a.severity.rank, -a.created_at.timestamp()))
        for alert, who, comment in ((ordered[1], "maria", "crew dispatched to hall B"),
                                    (ordered[6], "tomas", "known sensor drift, ticket #4821")):
            acked = alert.acknowledge(who, comment, at=alert.created_at + timedelta(minutes=4))
            store.alerts.save(acked)  # no audit entry: it would carry today's time
        snoozed = ordered[-2].snooze(now + timedelta(hours=4))
        store.alerts.save(snoozed)
        reasons = [("bad_json", "Expecting property name enclosed in double quotes", b"{temp: 7"),
                   ("schema", "'seq' is a required property", b'{"temperature": 71.2}'),
                   ("unknown_device", "device is not registered", b'{"seq": 1}'),
                   ("too_large", "payload exceeds 128 KB", b"\x00" * 64)]
        store.quarantine.add_many([
            QuarantinedMessage(f"dt/acme-north/pump-{n:05d}/telemetry", *rng.choice(reasons)[:2],
                               payload=rng.choice(reasons)[2], device_id=f"pump-{n:05d}",
                               received_at=now - timedelta(minutes=n))
            for n in range(2, 60, 3)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--theme", choices=("light", "dark"), default="light")
    parser.add_argument("--fleet", type=int, default=500)
    args = parser.parse_args(argv)
    app = ensure_application([sys.argv[0]])
    assert isinstance(app, QApplication)
    with tempfile.TemporaryDirectory(prefix="smartiot-alerts-shot-") as tmp:
        config = load_config(Path(tmp) / "config.toml", Path(tmp) / "data", env={},
                             overrides={"theme": args.theme})
        base._seed(config.database_url, args.fleet)
        seed_extras(config.database_url)
        context = AppContext(config, base._plugins())
        window = build_main_window(context)
        context.plugins.startup(context)
        try:
            window.resize(1280, 800)
            window.show()
            page = window.show_page("alerts")
            base._settle(app, 3.0)
            critical = next(a for a in page.model.alerts()
                            if a.severity is Severity.CRITICAL and a.state is AlertState.ACTIVE)
            page.select_alerts([critical.alert_id])
            page.table.setFocus()
            base._settle(app, 2.0)
            args.out.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(args.out / "alerts-page.png"))
            window.resize(1400, 900)
            acked = next(a for a in page.model.alerts() if a.acknowledged_by == "maria")
            page.select_alerts([acked.alert_id])
            page.splitter.setSizes([260, 560])
            base._settle(app, 1.5)
            page.detail.grab().save(str(args.out / "alert-detail.png"))
            window.show_page("rejected")
            base._settle(app, 2.0)
            rejected = window.page_widget("rejected")
            rejected.table.selectRow(0)
            base._settle(app, 0.5)
            window.grab().save(str(Path(tmp).parent / "rejected-page.png"))
            print(f"wrote {args.out / 'alerts-page.png'} and {args.out / 'alert-detail.png'}")
        finally:
            window.close()
            context.plugins.shutdown(context)
            context.close()
            # Delete the window while the QApplication still exists: left to the
            # interpreter's final garbage collection, PySide aborts on exit.
            window.deleteLater()
            base._settle(app, 0.3)
            gc.collect()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
