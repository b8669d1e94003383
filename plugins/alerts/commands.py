"""``smartiot alerts list|ack|snooze|resolve``: the alert queue from a terminal.

Support staff script their shift hand-over and work from SSH sessions, so the
CLI offers what the Alerts page does, with the same lifecycle rules: it calls
the same use cases (``context.api.alerts``: role check, organization scope,
versioned save, then audit entry), and an action that
lost to a colleague says who won ("a1b2: already acknowledged by maria at
10:42"). IDs may be abbreviated to any unique prefix, as with git.

Exit codes: 0 all done, 1 at least one alert failed (each is named), 2 bad
arguments (argparse's own convention).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from core.context import AppContext
from core.errors import NotFound, SmartIotError
from core.model import Alert, AlertState, Severity
from core.model.roles import Actor
from core.ports.fleet_api.alerts import ActionResult, AlertsApi
from core.services.fleet_view import MAX_PAGE
from core.text import cli_time

SHORT_ID = 8
_USER_HELP = ("a claim only, noted in the audit trail: you act as your OS account (on a "
              "REST API profile: as the person signed in, and the claim is ignored)")
_OPEN = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})


def configure_alerts(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="alerts_action", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="list alerts (default: open ones, newest first)")
    ls.add_argument("--state", action="append", default=[],
                    choices=[*(s.value for s in AlertState), "open", "all"],
                    help="filter by state; repeatable (default: open = active + acknowledged)")
    ls.add_argument("--severity", action="append", default=[],
                    choices=[s.value for s in Severity], help="filter by severity; repeatable")
    ls.add_argument("--device", default="", help="only alerts of this device id")
    ls.add_argument("--limit", type=int, default=None, help="show at most N alerts")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    ack = sub.add_parser("ack", help="acknowledge alerts (you are on it)")
    ack.add_argument("ids", nargs="+", metavar="ID", help="alert id or unique prefix")
    # Optional, as in the Alerts page's dialog: an acknowledgement first of all stops
    # the escalation, and a required comment only teaches people to type "ok".
    ack.add_argument("--comment", default="",
                     help="what you are doing about it (optional, kept in the audit trail)")
    ack.add_argument("--user", default="", help=_USER_HELP)

    snz = sub.add_parser("snooze", help="silence alerts for a while (they stay open)")
    snz.add_argument("ids", nargs="+", metavar="ID", help="alert id or unique prefix")
    snz.add_argument("--for", dest="duration", required=True, type=parse_duration,
                     metavar="DURATION", help="how long: 90s, 30m, 2h, 1d or 1h30m")
    snz.add_argument("--comment", default="",
                     help="why it can wait (optional, kept in the audit trail)")
    snz.add_argument("--user", default="", help=_USER_HELP)

    res = sub.add_parser("resolve", help="resolve alerts (the problem is fixed)")
    res.add_argument("ids", nargs="+", metavar="ID", help="alert id or unique prefix")
    res.add_argument("--comment", default="", help="what fixed it (kept in the audit trail)")
    res.add_argument("--user", default="", help=_USER_HELP)


def run_alerts(args: argparse.Namespace, context: AppContext) -> int:
    try:
        if args.alerts_action == "list":
            return _list(args, context.api.alerts)
        actor_for(args, context)
        alerts = context.api.alerts
        if not alerts.features().audited:
            print("smartiot alerts: note: this backend has no audit trail; this action is "
                  "saved but not audited", file=sys.stderr)
        ids, failures = resolve_ids(alerts, args.ids)
    except SmartIotError as exc:
        print(f"smartiot alerts: {exc}", file=sys.stderr)
        return 1
    full_ids = list(ids.values())
    if args.alerts_action == "ack":
        results = alerts.acknowledge_many(full_ids, args.comment)
        verb = "acknowledged"
    elif args.alerts_action == "snooze":
        until = datetime.now(UTC) + args.duration
        results = alerts.snooze_many(full_ids, until, args.comment)
        verb = f"snoozed until {cli_time(until)}"
    else:
        results = alerts.resolve_many(full_ids, args.comment)
        verb = "resolved"
    given_for = {full: given for given, full in ids.items()}
    for result in results:
        _report(result, given_for.get(result.alert_id, result.alert_id), verb, failures)
    order = {given: i for i, given in enumerate(args.ids)}
    for given, why in sorted(failures, key=lambda f: order.get(f[0], len(order))):
        print(f"{given}: {why}", file=sys.stderr)
    return 1 if failures else 0


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    """``30m``, ``2h``, ``1h30m``, ``90s``, ``1d``: the way people say how long."""
    cleaned = text.strip().lower().replace(" ", "")
    parts = _DURATION_PART.findall(cleaned)
    if not cleaned or "".join(n + u for n, u in parts) != cleaned:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration; use e.g. 90s, 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * _UNIT_S[u] for n, u in parts)
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a snooze must last longer than 0 s")
    if seconds > 30 * 86400:
        raise argparse.ArgumentTypeError(
            f"{text!r}: at most 30 days; resolve the alert or change its rule instead")
    return timedelta(seconds=seconds)


def actor_for(args: argparse.Namespace, context: AppContext) -> Actor:
    """``--user`` is a claim, not an identity (core.identity): the action is
    recorded under the OS account with the claimed name noted beside it."""
    actor = context.actor
    claimed = (getattr(args, "user", "") or "").strip()
    if claimed and context.config.profile.api_url:
        # on the REST API the server records the person signed in, and no claim
        print(f"smartiot alerts: note: --user {claimed} is ignored: on the REST API you act "
              "as the person signed in (smartiot login)", file=sys.stderr)
    elif claimed and claimed != actor.user:
        print(f"smartiot alerts: note: acting as {actor.user} (the OS account); "
              f"--user {claimed} is recorded in the audit trail as a claim only",
              file=sys.stderr)
        context.note_claim(claimed)
    return context.actor


def _report(result: ActionResult, given: str, verb: str,
            failures: list[tuple[str, str]]) -> None:
    if result.ok and result.alert is not None:
        a = result.alert
        print(f"{a.alert_id[:SHORT_ID]} {verb} ({a.device_id}: {a.message})")
    else:
        failures.append((given, result.error))


def resolve_ids(alerts: AlertsApi, given: list[str]) -> tuple[dict[str, str],
                                                               list[tuple[str, str]]]:
    """Map each given id or prefix to one full id; unknown and ambiguous ones
    become failures naming the candidates. The alerts the person may see are
    listed at most once, and only if some id is not complete."""
    found: dict[str, str] = {}
    failures: list[tuple[str, str]] = []
    every: list[str] | None = None
    for text in dict.fromkeys(given):
        try:
            found[text] = alerts.get_alert(text).alert_id
            continue
        except NotFound:
            pass
        if every is None:
            every = [a.alert_id for a in _all(alerts)]
        matches = [alert_id for alert_id in every if alert_id.startswith(text)]
        if len(matches) == 1:
            found[text] = matches[0]
        elif not matches:
            failures.append((text, "no alert with this id or prefix"))
        else:
            shown = ", ".join(m[:SHORT_ID + 4] for m in matches[:5])
            more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
            failures.append((text, f"ambiguous prefix, matches {shown}{more}"))
    return found, failures


def _all(alerts: AlertsApi, *, limit: int | None = None, states: frozenset[AlertState] =
         frozenset(), severities: frozenset[Severity] = frozenset(),
         device_id: str = "") -> list[Alert]:
    """Newest first, page after page, up to ``limit`` (None: every one)."""
    found: list[Alert] = []
    token = ""
    while limit is None or len(found) < limit:
        size = MAX_PAGE if limit is None else min(MAX_PAGE, limit - len(found))
        page = alerts.list_alerts(states=states, severities=severities, device_id=device_id,
                                  limit=size, next_token=token)
        found.extend(page.items)
        token = page.next
        if not token:
            break
    return found


def _list(args: argparse.Namespace, alerts: AlertsApi) -> int:
    if args.limit is not None and args.limit < 1:
        print("smartiot alerts list: --limit must be at least 1", file=sys.stderr)
        return 2
    chosen = set(args.state or ["open"])
    states: frozenset[AlertState] = frozenset()
    if "all" not in chosen:
        states = frozenset(AlertState(s) for s in chosen - {"open"})
        states |= _OPEN if "open" in chosen else frozenset()
    found = _all(alerts, limit=args.limit, states=states, device_id=args.device,
                 severities=frozenset(Severity(s) for s in args.severity))
    if args.json:
        print(json.dumps([_as_json(a) for a in found], indent=2))
        return 0
    if not found:
        print("no alerts match")
        return 0
    for a in found:
        who = a.acknowledged_by if a.state is AlertState.ACKNOWLEDGED else a.resolved_by
        state = a.state.value + (f" by {who}" if who else "")
        if a.is_snoozed():
            state += " (snoozed)"
        print(f"{a.alert_id[:SHORT_ID]}  {a.severity.value:<8}  {state:<24}  "
              f"{cli_time(a.created_at)}  {a.device_id}  {a.message}")
    return 0


def _as_json(a: Alert) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "alert_id": a.alert_id, "device_id": a.device_id, "rule_id": a.rule_id,
        "severity": a.severity.value, "state": a.state.value, "message": a.message,
        "value": a.value, "created_at": iso(a.created_at), "updated_at": iso(a.updated_at),
        "acknowledged_at": iso(a.acknowledged_at), "acknowledged_by": a.acknowledged_by,
        "ack_comment": a.ack_comment, "resolved_at": iso(a.resolved_at),
        "resolved_by": a.resolved_by, "snoozed_until": iso(a.snoozed_until),
        "version": a.version,
    }
