"""``smartiot db``: look at and migrate the store from a terminal.

Start-up migrates automatically; the command exists for the team set-up,
where an administrator upgrades the shared PostgreSQL database on purpose
before rolling out new consoles."""

from __future__ import annotations

import argparse

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
                        help="print a status line every S seconds (default 10)")


def run_hub(args: argparse.Namespace, context: AppContext) -> int:
    """Headless hub for a team: one per broker and database, consoles use profiles
    with ``hub = false`` against the same broker and database."""
    import signal
    import threading

    from plugins.local.backend import build_local_backend

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    backend = build_local_backend(context, run_hub=True, demo_fleet=args.demo, live=True)
    hub = backend.hub
    assert hub is not None
    try:
        if not hub.wait_connected(15):
            reason = hub.link.last_error or "no answer yet"
            print(f"hub: still connecting to {backend.broker_url} ({reason}); retrying in "
                  "the background", flush=True)
        print(f"hub running: broker {backend.broker_url}, database "
              f"{context.config.database_url.split('@')[-1]}", flush=True)
        while not stop.wait(args.status_every):
            snap = hub.snapshot()
            print(f"hub: {snap['connection']}, {snap['messages_per_s']:.0f} msg/s, "
                  f"{snap['readings_written']:,} readings stored, "
                  f"{snap['quarantined']:,} rejected", flush=True)
    finally:
        backend.close()
    print("hub stopped", flush=True)
    return 0
