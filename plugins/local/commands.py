"""``smartiot db``: look at and migrate the store from a terminal.

Start-up migrates automatically; the command exists for the team set-up,
where an administrator upgrades the shared PostgreSQL database on purpose
before rolling out new consoles."""

from __future__ import annotations

import argparse
from typing import Any

from core.context import AppContext
from core.store.engine import create_store_engine
from core.store.migrate import current_revision, head_revision, upgrade


def configure_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("status", "upgrade"), help="show or apply migrations")


def run_db(args: argparse.Namespace, context: AppContext) -> int:
    url = context.config.database_url
    engine = create_store_engine(url)
    try:
        if args.action == "upgrade":
            upgrade(engine)
        current = current_revision(engine)
        head = head_revision()
        state = "up to date" if current == head else f"behind (newest is {head})"
        print(f"database : {engine.url.render_as_string(hide_password=True)}")
        print(f"revision : {current or 'empty'} — {state}")
        return 0 if current == head else 1
    finally:
        engine.dispose()


def configure_hub(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true",
                        help="also run the demo fleet (with the embedded broker)")
    parser.add_argument("--status-every", type=float, default=10.0, metavar="S",
                        help="print a status line every S seconds (default 10), and at once "
                             "when the hub becomes degraded or recovers")
    parser.add_argument("--drain-timeout", type=float, default=30.0, metavar="S",
                        help="on Ctrl+C, wait up to S seconds for the inbox to be stored "
                             "(default 30)")


def status_line(snap: dict[str, Any]) -> str:
    """One line for a person watching the hub: link, rates, totals, and what is
    wrong when something is (database away, load shed)."""
    parts = [f"hub: {snap['connection']}",
             f"{snap['messages_per_s']:,.0f} msg/s",
             f"{snap['readings_per_s']:,.0f} readings/s",
             f"{snap['readings_written']:,} readings stored",
             f"{snap['quarantined']:,} rejected",
             f"inbox {snap['inbox']:,}"]
    if snap["shed_overload"]:
        parts.append(f"{snap['shed_overload']:,} shed (overload)")
    if snap["outages"]:
        parts.append(f"{snap['outages']} database outage(s), longest "
                     f"{snap['longest_outage_s']:.0f} s")
    line = ", ".join(parts)
    if snap["degraded"]:
        line += f" -- {snap['degraded']}"
    return line


def run_hub(args: argparse.Namespace, context: AppContext) -> int:
    """Headless hub for a team: one per broker and database, consoles use profiles
    with ``hub = false`` against the same broker and database.

    Exit status: 0 after a clean stop; 3 when the hub ended degraded (database
    still away) or lost data (QoS 0 shed under overload, rows not stored), so a
    supervisor or a script notices."""
    import signal
    import threading
    import time

    from plugins.local.backend import build_local_backend

    stop = threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    backend = build_local_backend(context, run_hub=True, demo_fleet=args.demo, live=True)
    # Plugins start and stop with the hub as they do with the window, on its backend.
    context.adopt_backend(backend)
    hub = backend.hub
    assert hub is not None
    problems: list[str] = []
    try:
        context.plugins.startup(context)
        if not hub.wait_connected(15):
            reason = hub.link.last_error or "no answer yet"
            print(f"hub: still connecting to {backend.broker_url} ({reason}); retrying in "
                  "the background", flush=True)
        print(f"hub running: broker {backend.broker_url}, database "
              f"{context.config.database_url.split('@')[-1]}, session {hub.link.client_id}",
              flush=True)
        last_print = time.monotonic()
        was_degraded = ""
        while not stop.wait(0.5):
            degraded = hub.degraded()
            now = time.monotonic()
            changed = bool(degraded) != bool(was_degraded) or (
                degraded.split(" for ")[0] != was_degraded.split(" for ")[0])
            if changed or now - last_print >= args.status_every:
                if was_degraded and not degraded:
                    print(f"hub: recovered ({was_degraded.removeprefix('degraded: ')} "
                          "before)", flush=True)
                print(status_line(hub.snapshot()), flush=True)
                last_print = now
            was_degraded = degraded
    finally:
        context.plugins.shutdown(context)  # while the hub still runs: plugins may use it
        if backend.hub is not None:
            print("hub stopping: storing the inbox", flush=True)
            backend.hub.stop(timeout_s=args.drain_timeout)
            problems = backend.hub.problems()
            print(status_line(backend.hub.snapshot()), flush=True)
            backend.hub = None  # stopped already; close() stops the rest
        backend.close()
        for signum, handler in previous.items():
            if handler is not None:  # None: installed outside Python, nothing to restore
                signal.signal(signum, handler)
    if problems:
        print("hub stopped with problems: " + "; ".join(problems), flush=True)
        return 3
    print("hub stopped", flush=True)
    return 0
