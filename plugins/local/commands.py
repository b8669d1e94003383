"""``smartiot db``: look at and migrate the store from a terminal.

Start-up migrates automatically; the command exists for the team set-up,
where an administrator upgrades the shared PostgreSQL database on purpose
before rolling out new consoles."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from core.context import AppContext
from core.store.engine import create_store_engine
from core.store.migrate import current_revision, head_revision, upgrade

if TYPE_CHECKING:
    from plugins.local.broker_accounts import DynsecAccounts


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
    parser.add_argument("--api", metavar="HOST:PORT",
                        help="serve the REST API there, e.g. 0.0.0.0:8080: the team's consoles "
                             "sign in and work through it (default: the profile's api_listen; "
                             "off when neither is set)")


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
    dropped = (snap.get("receiver") or {}).get("dropped", 0)
    if dropped:
        parts.append(f"{dropped:,} dropped by the receiver (overload)")
    if snap.get("shed_quarantine"):
        parts.append(f"{snap['shed_quarantine']:,} quarantine rows shed (database away)")
    if snap.get("hub_lost"):
        parts.append(f"{snap['hub_lost']:,} readings lost while the hub was away")
    if snap["outages"]:
        parts.append(f"{snap['outages']} database outage(s), longest "
                     f"{snap['longest_outage_s']:.0f} s")
    line = ", ".join(parts)
    if snap["degraded"]:
        line += f" -- {snap['degraded']}"
    return line


SWEEP_EVERY_S = 5.0


def _person_broker_accounts(context: AppContext, broker_url: str) -> DynsecAccounts | None:
    """People's own broker accounts, when the team broker runs mosquitto's
    dynamic-security plugin and this machine holds the control password
    (``smartiot broker config --person-accounts``); otherwise None and the
    login answer carries no broker login."""
    from core.errors import SmartIotError
    from core.secrets import get_secret
    from plugins.local.broker_accounts import (
        ACCOUNTS_PASSWORD,
        BrokerAccountsError,
        DynsecAccounts,
    )

    try:
        password = get_secret(ACCOUNTS_PASSWORD)
    except SmartIotError as exc:
        print(f"hub: per-person broker accounts are off: {exc}", flush=True)
        return None
    if not password:
        return None
    try:
        accounts = DynsecAccounts.for_broker_url(broker_url, password,
                                                 public_url=context.config.profile.broker)
        accounts.start()
    except BrokerAccountsError as exc:
        print(f"hub: per-person broker accounts are off: {exc}", flush=True)
        return None
    print(f"hub: people sign in with their own broker accounts on {broker_url}", flush=True)
    return accounts


def _sweep_broker_accounts(people: DynsecAccounts, backend: Any) -> None:
    """Disabled people lose their broker account within SWEEP_EVERY_S, however
    they were disabled (the API does it at once; the CLI runs elsewhere)."""
    from plugins.local.broker_accounts import BrokerAccountsError

    if backend.users is None:
        return
    try:
        for name in people.remove_disabled(backend.users):
            print(f"hub: removed the broker account of {name} (disabled)", flush=True)
    except BrokerAccountsError as exc:
        print(f"hub: could not check people's broker accounts: {exc}", flush=True)


def run_hub(args: argparse.Namespace, context: AppContext) -> int:
    """Headless hub for a team: one per broker and database, consoles use profiles
    with ``hub = false`` against the same broker and database.

    Exit status: 0 after a clean stop; 3 when the hub ended degraded (database
    still away) or lost data (QoS 0 shed under overload, rows not stored), so a
    supervisor or a script notices."""
    import dataclasses
    import signal
    import threading
    import time

    from plugins.local.backend import build_local_backend

    if getattr(args, "api", None):  # Namespaces built by callers may leave it out
        config = context.config
        context.config = dataclasses.replace(config, profiles={
            **config.profiles,
            config.profile_name: dataclasses.replace(config.profile, api_listen=args.api)})
    # A console running the hub as its child (plugins.local.hub_process) stops
    # it through this event and hands it the logins of the broker it started.
    stop = getattr(args, "stop", None) or threading.Event()
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    backend = build_local_backend(context, run_hub=True, demo_fleet=args.demo, live=True,
                                  logins=getattr(args, "logins", None))
    # Plugins start and stop with the hub as they do with the window, on its backend.
    context.adopt_backend(backend)
    hub = backend.hub
    assert hub is not None
    problems: list[str] = []
    people = (_person_broker_accounts(context, backend.broker_url)
              if getattr(args, "person_accounts", True) else None)
    backend.broker_accounts = people
    last_sweep = 0.0
    try:
        context.plugins.startup(context)
        failed = {i.name: i.error for i in context.plugins.failures()}
        if context.config.profile.api_listen and "api" in failed:
            print(f"hub: cannot serve the REST API: {failed['api']}", flush=True)
            return 2
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
            if people is not None and now - last_sweep >= SWEEP_EVERY_S:
                last_sweep = now
                _sweep_broker_accounts(people, backend)
    finally:
        context.plugins.shutdown(context)  # while the hub still runs: plugins may use it
        if people is not None:
            people.close()
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
