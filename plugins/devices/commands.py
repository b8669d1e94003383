"""``smartiot devices list|show|register|command|desired``: the fleet from a terminal.

``register``, ``command`` and ``desired`` call the same use cases as the Devices page
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
import time
from pathlib import Path
from typing import Any

from core.context import AppContext
from core.errors import NotFound, SmartIotError, ValidationError
from core.model import AlertState, Device, DeviceStatus, Location
from core.ports.commands import CommandOutcome
from core.ports.registry import DeviceQuery
from core.ports.shadows import ShadowDocument
from core.text import cli_time
from plugins.devices.desired_state import parse_desired

OPEN_STATES = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})

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

    des = sub.add_parser(
        "desired", help="change a device's desired state (its shadow), as the Devices page does",
        description="Set keys of a device's desired state through the hub's shadow service. "
        "VALUE is read as JSON when it parses (30, true, null, {\"a\": 1}), else as text; "
        "a dotted KEY sets a nested key (setpoints.temperature=21); null removes a key. "
        "Exit code 0: stored (and, with --wait, reported back by the device); 1: refused, "
        "rejected or not reported in time; 2: bad arguments.")
    des.add_argument("device_id", metavar="DEVICE")
    des.add_argument("assignments", nargs="*", metavar="KEY=VALUE",
                     help="desired keys, e.g. interval=5 setpoints.temperature=21")
    des.add_argument("--file", type=Path, default=None, metavar="JSON",
                     help="a JSON object of desired keys (KEY=VALUE pairs are applied on top)")
    des.add_argument("--wait", type=float, default=0.0, metavar="S",
                     help="wait up to S seconds for the device to report the new state")
    des.add_argument("--json", action="store_true", help="print the shadow document as JSON")


def run_devices(args: argparse.Namespace, context: AppContext) -> int:
    if args.devices_action == "list":
        return _list(args, context)
    if args.devices_action == "register":
        return _register(args, context)
    if args.devices_action == "command":
        return _command(args, context)
    if args.devices_action == "desired":
        return _desired(args, context)
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
        stored = context.api.devices.register(device)
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


def parse_assignments(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs to a desired-state object; dotted keys nest. Errors
    name the pair, so a typo in the fifth of six is easy to find."""
    desired: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        parts = key.strip().split(".")
        if not sep or not all(p.strip() for p in parts):
            raise ValidationError(f"{pair!r}: expected KEY=VALUE, e.g. interval=5 or "
                                  "setpoints.temperature=21")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        node = desired
        for part in parts[:-1]:
            child = node.setdefault(part.strip(), {})
            if not isinstance(child, dict):
                raise ValidationError(f"{pair!r}: {part.strip()!r} is already set to a value, "
                                      "not an object")
            node = child
        node[parts[-1].strip()] = value
    return desired


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _without_nulls(desired: dict[str, Any]) -> dict[str, Any]:
    return {k: _without_nulls(v) if isinstance(v, dict) else v
            for k, v in desired.items() if v is not None}


def _as_console(context: AppContext, action: str) -> str:
    """Reaching devices needs the hub's broker, but this process must not become a
    second hub or start a demo fleet: it acts as one more console. Returns an
    error message when the profile's broker is one only the window reaches."""
    profile = context.config.profile
    if profile.backend == "local" and profile.broker == "embedded":
        return (f"smartiot devices {action}: the profile's broker is the console's embedded "
                "one, which only the console window reaches; pass the hub's broker "
                "(--broker mqtt://host:1883) or use a team profile")
    config = context.config
    context.config = dataclasses.replace(config, profiles={
        **config.profiles,
        config.profile_name: dataclasses.replace(profile, hub=False, demo_fleet=False)})
    context.live = True
    return ""


def _desired(args: argparse.Namespace, context: AppContext) -> int:
    try:
        desired: dict[str, Any] = {}
        if args.file is not None:
            try:
                desired = parse_desired(args.file.read_text(encoding="utf-8"))
            except OSError as exc:
                raise ValidationError(f"cannot read ({exc.strerror or exc})") from None
            except ValidationError as exc:
                raise ValidationError(f"{args.file}: {exc}") from None
        desired = _merge(desired, parse_assignments(args.assignments))
    except ValidationError as exc:
        print(f"smartiot devices desired: {exc}", file=sys.stderr)
        return 2
    if not desired:
        print("smartiot devices desired: nothing to set; give KEY=VALUE pairs or --file JSON",
              file=sys.stderr)
        return 2
    if not args.wait >= 0:
        print("smartiot devices desired: --wait must be >= 0", file=sys.stderr)
        return 2
    problem = _as_console(context, "desired")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    devices = context.api.devices
    try:
        document = devices.update_desired(args.device_id, desired)
    except SmartIotError as exc:  # not registered, refused for this role, rejected, no hub
        print(f"smartiot devices desired: {exc}", file=sys.stderr)
        return 1
    print(f"{args.device_id}: desired state stored (shadow version {document.version})")
    if args.wait > 0:
        # Only the keys set here: other desired keys may be ones this device ignores.
        def pending() -> dict[str, Any]:
            return ShadowDocument(args.device_id, desired=_without_nulls(desired),
                                  reported=document.reported).delta

        deadline = time.monotonic() + args.wait
        while pending() and time.monotonic() < deadline:
            time.sleep(0.25)
            document = devices.shadow(args.device_id)
        if pending():
            print(f"{args.device_id}: not reported within {args.wait:g} s; still differs: "
                  f"{json.dumps(pending(), sort_keys=True)}", file=sys.stderr)
            return 1
        print(f"{args.device_id}: reported state follows")
    if args.json:
        print(json.dumps({"device_id": document.device_id, "version": document.version,
                          "desired": document.desired, "reported": document.reported,
                          "delta": document.delta}, sort_keys=True))
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
    problem = _as_console(context, "command")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    devices = context.api.devices
    capabilities = devices.capabilities()
    if not capabilities.commands:
        print(f"smartiot devices command: the {capabilities.backend!r} backend cannot send "
              "commands", file=sys.stderr)
        return 1
    try:
        result = devices.command(args.device_id, args.device_command, params,
                                 timeout_s=args.timeout)
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
    devices = context.api.devices.all(query)
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
    for row, d in zip(rows, devices, strict=True):
        row[-1] = cli_time(d.last_seen)  # CSV above keeps the stored ISO form
    header = ["DEVICE", "NAME", "TYPE", "STATUS", "ORG", "FIRMWARE", "TAGS", "LAST SEEN"]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(rows)} device(s)")
    return 0


def _show(args: argparse.Namespace, context: AppContext) -> int:
    devices = context.api.devices
    try:
        details = devices.details(args.device_id)
    except NotFound as exc:
        print(f"smartiot: {exc}", file=sys.stderr)
        return 1
    device, latest, link = details.device, details.latest, details.link
    alerts = [a for a in details.alerts if a.state in OPEN_STATES]
    if args.json:
        out = _record(device)
        out["latest"] = {m: {"value": r.value, "ts": r.ts.isoformat()}
                         for m, r in sorted(latest.items())}
        out["link"] = None if link is None else {
            "received": link.received, "lost": link.lost, "duplicates": link.duplicates,
            "out_of_order": link.out_of_order, "rejected": link.rejected,
            "reboots": link.reboots, "last_seq": link.last_seq, "hub_lost": link.hub_lost}
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
        ("Last seen", cli_time(device.last_seen, empty="never")),
        ("Registered", cli_time(device.created_at)),
    ]
    for key, value in pairs:
        print(f"{key:<13}{value}")
    print("\nLatest values")
    if not latest:
        print("  (none)")
    for metric, reading in sorted(latest.items()):
        print(f"  {metric:<20}{reading.value:>12.4g}   {cli_time(reading.ts)}")
    print("\nLink")
    if not devices.capabilities().link_stats:
        print("  not available on this backend")
    elif link is None:
        print("  no messages counted yet")
    else:
        print(f"  received {link.received}, lost {link.lost} ({link.loss_ratio:.1%}), "
              f"duplicates {link.duplicates}, out of order {link.out_of_order}, "
              f"rejected {link.rejected}, reboots {link.reboots}"
              + (f"; {link.hub_lost} lost while the hub was away (not the device's)"
                 if link.hub_lost else ""))
    print(f"\nOpen alerts ({len(alerts)})")
    for a in alerts:
        print(f"  {cli_time(a.created_at)}  {a.severity.value:<8} "
              f"{a.state.value:<12} {a.rule_id}: {a.message}")
    return 0
