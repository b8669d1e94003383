"""``smartiot devices list|show``: the fleet inventory from a terminal."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from core.context import AppContext
from core.errors import NotFound
from core.model import Device, DeviceStatus
from core.ports.alerts import AlertQuery
from core.ports.registry import DeviceQuery
from plugins.devices.service import OPEN_STATES

LIST_FIELDS = ("device_id", "name", "device_type", "status", "organization",
               "firmware_version", "tags", "last_seen")


def configure_devices(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="devices_action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="list devices, optionally filtered")
    ls.add_argument("--status", action="append", default=[],
                    choices=[s.value for s in DeviceStatus], help="repeatable")
    ls.add_argument("--type", dest="device_type", action="append", default=[],
                    help="device type (repeatable)")
    ls.add_argument("--org", action="append", default=[], help="organization (repeatable)")
    ls.add_argument("--tag", default="", help="only devices with this tag")
    ls.add_argument("--search", default="", help="text in id, name or place")
    ls.add_argument("--limit", type=int, default=None)
    fmt = ls.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="JSON array")
    fmt.add_argument("--csv", action="store_true", help="CSV with a header row")
    show = sub.add_parser("show", help="one device: metadata, latest values, link, alerts")
    show.add_argument("device_id")
    show.add_argument("--json", action="store_true")


def run_devices(args: argparse.Namespace, context: AppContext) -> int:
    if args.devices_action == "list":
        return _list(args, context)
    return _show(args, context)


def _record(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id, "name": d.name, "device_type": d.device_type,
        "status": d.status.value, "organization": d.organization,
        "firmware_version": d.firmware_version or "", "tags": sorted(d.tags),
        "last_seen": d.last_seen.isoformat() if d.last_seen else None,
        "location": None if d.location is None else {
            "latitude": d.location.latitude, "longitude": d.location.longitude,
            "label": d.location.label},
        "metadata": d.metadata,
        "created_at": d.created_at.isoformat(), "updated_at": d.updated_at.isoformat(),
    }


def _list(args: argparse.Namespace, context: AppContext) -> int:
    query = DeviceQuery(
        text=args.search, statuses=frozenset(DeviceStatus(s) for s in args.status),
        device_types=frozenset(args.device_type), organizations=frozenset(args.org),
        tag=args.tag, limit=args.limit)
    devices = context.backend.registry.list(query)
    if args.json:
        json.dump([_record(d) for d in devices], sys.stdout, indent=2)
        print()
        return 0
    rows = [[d.device_id, d.name, d.device_type, d.status.value, d.organization,
             d.firmware_version or "", ";".join(sorted(d.tags)),
             d.last_seen.isoformat(timespec="seconds") if d.last_seen else ""]
            for d in devices]
    if args.csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(LIST_FIELDS)
        writer.writerows(rows)
        return 0
    if not rows:
        print("no devices match", file=sys.stderr)
        return 0
    header = ["DEVICE", "NAME", "TYPE", "STATUS", "ORG", "FIRMWARE", "TAGS", "LAST SEEN"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(rows)} device(s)")
    return 0


def _show(args: argparse.Namespace, context: AppContext) -> int:
    backend = context.backend
    try:
        device = backend.registry.get(args.device_id)
    except NotFound as exc:
        print(f"smartiot: {exc}", file=sys.stderr)
        return 1
    latest = backend.telemetry.latest(device.device_id)
    link = backend.link_stats.get(device.device_id) if backend.link_stats else None
    alerts = backend.alerts.list(AlertQuery(device_id=device.device_id, states=OPEN_STATES))
    if args.json:
        out = _record(device)
        out["latest"] = {m: {"value": r.value, "ts": r.ts.isoformat()}
                         for m, r in sorted(latest.items())}
        out["link"] = None if link is None else {
            "received": link.received, "lost": link.lost, "duplicates": link.duplicates,
            "out_of_order": link.out_of_order, "rejected": link.rejected,
            "reboots": link.reboots, "last_seq": link.last_seq}
        out["open_alerts"] = [{"alert_id": a.alert_id, "rule_id": a.rule_id,
                               "severity": a.severity.value, "state": a.state.value,
                               "message": a.message, "created_at": a.created_at.isoformat()}
                              for a in alerts]
        json.dump(out, sys.stdout, indent=2)
        print()
        return 0
    loc = device.location
    pairs = [
        ("Device", device.device_id), ("Name", device.name or "—"),
        ("Type", device.device_type), ("Status", device.status.value),
        ("Organization", device.organization), ("Firmware", device.firmware_version or "—"),
        ("Tags", ", ".join(sorted(device.tags)) or "—"),
        ("Location", "—" if loc is None else
         f"{loc.latitude:.6g}, {loc.longitude:.6g} {loc.label}".rstrip()),
        ("Last seen", device.last_seen.isoformat(timespec="seconds")
         if device.last_seen else "never"),
        ("Registered", device.created_at.isoformat(timespec="seconds")),
    ]
    for key, value in pairs:
        print(f"{key:<13}{value}")
    print("\nLatest values")
    if not latest:
        print("  (none)")
    for metric, reading in sorted(latest.items()):
        print(f"  {metric:<20}{reading.value:>12.4g}   {reading.ts.isoformat(timespec='seconds')}")
    print("\nLink")
    if backend.link_stats is None:
        print("  not available on this backend")
    elif link is None:
        print("  no messages counted yet")
    else:
        print(f"  received {link.received}, lost {link.lost} ({link.loss_ratio:.1%}), "
              f"duplicates {link.duplicates}, out of order {link.out_of_order}, "
              f"rejected {link.rejected}, reboots {link.reboots}")
    print(f"\nOpen alerts ({len(alerts)})")
    for a in alerts:
        print(f"  {a.created_at.isoformat(timespec='seconds')}  {a.severity.value:<8} "
              f"{a.state.value:<12} {a.rule_id}: {a.message}")
    return 0
