"""``smartiot aws sandbox``: start the sandbox, say where it is, run until
Ctrl-C (SIGINT) or SIGTERM, then stop every part and remove the state file.

With ``--json`` the only line on stdout is one JSON object, printed once
everything is up, so a script or a test can read it and go; logs go to
stderr. The same object (mode 0600, it holds the demo passwords) is written
to ``<data dir>/aws-sandbox.json`` while the sandbox runs, where the
``aws-local`` profile finds the endpoints."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

from core.context import AppContext


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON line (endpoints, ids, demo users) once ready")
    parser.add_argument("--stage", default="sandbox", help="stage naming every resource "
                        "(default: sandbox)")
    parser.add_argument("--region", default="us-east-1", help="region (default: us-east-1)")
    parser.add_argument("--devices", type=int, default=8,
                        help="simulated devices (default 8; a quarter are pumps)")
    parser.add_argument("--rate", type=float, default=1.0,
                        help="readings per second per device (default 1)")
    parser.add_argument("--tick-s", type=float, default=None, metavar="SECONDS",
                        help="run scheduled functions (the alert ticker) this often instead "
                             "of the template's rate (default: rate(1 minute))")
    for name, default, what in (("aws-port", 5000, "the AWS endpoint (moto)"),
                                ("api-port", 3000, "the REST API"),
                                ("mqtt-port", 1884, "MQTT for devices"),
                                ("ws-port", 9001, "MQTT over WebSocket for consoles")):
        parser.add_argument(f"--{name}", type=int, default=default, metavar="PORT",
                            help=f"port of {what} (default {default}; 0: any free port)")


def _describe(info: dict[str, Any]) -> str:
    lines = [
        f"Sandbox of stage {info['stage']!r} is up (ready in {info['ready_s']} s):",
        f"  REST API        {info['api_url']}",
        f"  AWS endpoint    {info['endpoint_url']}  (region {info['region']})",
        f"  MQTT (devices)  {info['mqtt_url']}",
        f"  MQTT over WS    {info['mqtt_ws_url']}",
        f"  user pool       {info['user_pool_id']}  app client {info['user_pool_client_id']}",
        f"  identity pool   {info['identity_pool_id']}",
        f"  demo fleet      {len(info['devices'])} devices of organization "
        f"{info['organization']!r}",
        "  demo users (passwords are new each run):",
        *(f"    {u['role']:<11} {u['username']:<16} {u['password']}" for u in info["users"]),
    ]
    for logical_id, why in info["not_created"].items():
        lines.append(f"  not created on moto: {logical_id} ({why})")
    if info["missing"]:
        lines.append(f"  not in this build: {', '.join(info['missing'])}")
    lines.append("Press Ctrl-C to stop.")
    return "\n".join(lines)


def run(args: argparse.Namespace, context: AppContext) -> int:
    from core.errors import ConfigError
    from plugins.aws.sandbox.sandbox import Sandbox, SandboxOptions
    from plugins.aws.sandbox.state import remove_state, write_state
    from simulator.broker import BrokerError

    try:
        options = SandboxOptions(region=args.region, stage=args.stage, aws_port=args.aws_port,
                                 api_port=args.api_port, mqtt_port=args.mqtt_port,
                                 ws_port=args.ws_port, devices=args.devices, rate=args.rate,
                                 tick_s=args.tick_s)
    except ValueError as exc:
        print(f"smartiot aws sandbox: {exc}", file=sys.stderr)
        return 2
    sandbox = Sandbox(options)
    stop = threading.Event()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        stop.set()  # a Ctrl-C during start-up stops right after it

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    data_dir = context.config.data_dir
    # stdout is for the one line (or the summary) only: anything else that
    # prints — the Lambda handlers' Powertools logs, libraries — goes to stderr.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        try:
            sandbox.start()
        except (ValueError, ConfigError, OSError, BrokerError) as exc:
            print(f"smartiot aws sandbox: {exc}", file=sys.stderr)
            return 2
        try:
            info = sandbox.info()
            write_state(data_dir, info)
            if args.json:
                print(json.dumps(info, separators=(",", ":")), file=out, flush=True)
            else:
                print(_describe(info), file=out, flush=True)
            while not stop.wait(0.5):
                pass
        finally:
            sandbox.stop()
            remove_state(data_dir)
    finally:
        sys.stdout = out
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not args.json:
        print("sandbox stopped", file=sys.stderr)
    return 0
