"""``smartiot devices list|show|register|command``: the fleet from a terminal.

``register`` and ``command`` call the same use cases as the Devices page
(core.services.devices: role check and audit entry; the command channel
persists every command before it goes on the wire and records the answer), so
a command sent from a shell shows up in the device's Commands tab like one
sent from the window, and a role refused there is refused here.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import sys
from typing import Any

from core.context import AppContext
from core.errors import NotFound, SmartIotError, ValidationError
from core.model import Device, DeviceStatus, Location
from core.ports.alerts import AlertQuery
from core.ports.commands import CommandOutcome
from core.ports.registry import DeviceQuery
from plugins.devices.service import OPEN_STATES, register_device, send_command

DEVICE_COMMANDS = ("ping", "reboot", "identify", "set-interval")

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

    reg = sub.add_parser("register", help="register a device before it first reports")
    reg.add_argument("device_id", metavar="DEVICE")
    reg.add_argument("--type", dest="device_type", required=True,
                     help="device type, e.g. environmental, pump, tracker")
    reg.add_argument("--name", default="", help="a name people recognise")
    reg.add_argument("--org", default="", help="organization (default: the profile's)")
    reg.add_argument("--tag", action="append", default=[], metavar="TAG",
                     help="a tag such as hall-a or site=berlin (repeatable)")
    reg.add_argument("--lat", type=float, default=None, help="latitude in degrees")
    reg.add_argument("--lon", type=float, default=None, help="longitude in degrees")
    reg.add_argument("--place", default="", help="label of the location, e.g. 'Pump house 3'")

    cmd = sub.add_parser(
        "command", help="send ping, reboot, identify or set-interval and wait for the answer",
        description="Send a command to a device through the hub's broker and wait for its "
        "answer. Exit code 0: the device answered ok; 1: it answered with an error or did "
        "not answer in time.")
    cmd.add_argument("device_id", metavar="DEVICE")
    # not dest="command": that is the top-level subcommand's name
    cmd.add_argument("device_command", metavar="COMMAND", choices=DEVICE_COMMANDS)
    cmd.add_argument("seconds", nargs="?", type=float, default=None, metavar="SECONDS",
                     help="set-interval: the new reporting interval; identify: how long to "
                     "blink (default 10)")
    cmd.add_argument("--timeout", type=float, default=10.0, metavar="S",
                     help="seconds to wait for the answer (default 10)")
    cmd.add_argument("--json", action="store_true", help="machine-readable result")


def run_devices(args: argparse.Namespace, context: AppContext) -> int:
    if args.devices_action == "list":
        return _list(args, context)
    if args.devices_action == "register":
        return _register(args, context)
    if args.devices_action == "command":
        return _command(args, context)
    return _show(args, context)


def _register(args: argparse.Namespace, context: AppContext) -> int:
    if (args.lat is None) != (args.lon is None):
        print("smartiot devices register: give both --lat and --lon, or neither",
              file=sys.stderr)
        return 2
    try:
        location = None
        if args.lat is not None:
            location = Location(args.lat, args.lon, args.place.strip())
        device = Device(
            args.device_id, name=args.name.strip(), device_type=args.device_type.strip(),
            organization=(args.org or context.config.profile.organization).strip(),
            status=DeviceStatus.OFFLINE, location=location,
            tags=frozenset(t.strip() for t in args.tag if t.strip()))
        stored = register_device(context.backend, device, context.actor)
    except ValidationError as exc:
        print(f"smartiot devices register: {exc}", file=sys.stderr)
        return 2
    except SmartIotError as exc:  # refused for this role, or the store said no
        print(f"smartiot devices register: {exc}", file=sys.stderr)
        return 1
    where = "" if stored.location is None else (
        f" at {stored.location.latitude:.6g}, {stored.location.longitude:.6g}")
    print(f"registered {stored.device_id} ({stored.device_type}, {stored.organization})"
          f"{where}")
    return 0


def _command(args: argparse.Namespace, context: AppContext) -> int:
    params: dict[str, Any] = {}
    if args.device_command == "set-interval":
        if args.seconds is None or not math.isfinite(args.seconds) or args.seconds <= 0:
            print("smartiot devices command: set-interval needs SECONDS > 0, e.g. "
                  f"`smartiot devices command {args.device_id} set-interval 30`", file=sys.stderr)
            return 2
        params["seconds"] = args.seconds
    elif args.device_command == "identify" and args.seconds is not None:
        params["seconds"] = args.seconds
    elif args.seconds is not None:
        print(f"smartiot devices command: {args.device_command} takes no SECONDS", file=sys.stderr)
        return 2
    if not args.timeout > 0:
        print("smartiot devices command: --timeout must be > 0", file=sys.stderr)
        return 2
    profile = context.config.profile
    if profile.backend == "local" and profile.broker == "embedded":
        print("smartiot devices command: the profile's broker is the console's embedded one, "
              "which only the console window reaches; pass the hub's broker "
              "(--broker mqtt://host:1883) or use a team profile", file=sys.stderr)
        return 2
    # A command needs the broker, but this process must not become a second hub
    # or start a demo fleet: it acts as one more console.
    config = context.config
    context.config = dataclasses.replace(config, profiles={
        **config.profiles,
        config.profile_name: dataclasses.replace(profile, hub=False, demo_fleet=False)})
    context.live = True
    backend = context.backend
    if backend.commands is None:
        print(f"smartiot devices command: the {backend.name!r} backend cannot send commands",
              file=sys.stderr)
        return 1
    try:
        future = send_command(backend, args.device_id, args.device_command, context.actor, params,
                              timeout_s=args.timeout)
        result = future.result(timeout=args.timeout + 10)
    except SmartIotError as exc:  # not registered, refused for this role, not connected
        print(f"smartiot devices command: {exc}", file=sys.stderr)
        return 1
    latency = "" if result.latency_ms is None else f" in {result.latency_ms:.0f} ms"
    if args.json:
        print(json.dumps({"device_id": result.device_id, "command": result.command,
                          "request_id": result.request_id, "outcome": result.outcome.value,
                          "latency_ms": result.latency_ms, "result": result.payload}))
    elif result.outcome is CommandOutcome.OK:
        details = json.dumps(result.payload) if result.payload else ""
        print(f"{args.device_id}: {args.device_command} ok{latency} {details}".rstrip())
    else:
        why = result.payload.get("error") or result.outcome.value
        print(f"{args.device_id}: {args.device_command} {result.outcome.value}{latency}: {why}",
              file=sys.stderr)
    return 0 if result.outcome is CommandOutcome.OK else 1


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
