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
