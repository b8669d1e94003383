"""``smartiot audit verify|list|export``: the audit trail from a terminal.

Exit codes: 0 done (verify: the trail is intact and its checkpoints' signatures
were checked), 1 verify found a problem (each printed, the first naming the
first bad entry) or the request was refused, 2 bad arguments, 3 verify found
the chain intact but could not check the signatures (no checkpoint key here).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.context import AppContext
from core.errors import PermissionDenied, SmartIotError
from core.ports.audit import AuditEntry, AuditFilter
from core.services.audit import EXPORT_FORMATS, entry_json
from core.text import cli_time
from plugins.audit.service import parse_since

UNCHECKED = 3


def configure_audit(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_action", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="check the hash chain and its signed checkpoints")
    verify.add_argument("--json", action="store_true", help="machine-readable report")

    ls = sub.add_parser("list", help="list entries (oldest first), optionally filtered")
    _filters(ls)
    ls.add_argument("--limit", type=int, default=None, help="at most N entries (the newest)")
    ls.add_argument("--json", action="store_true", help="JSON array")

    ex = sub.add_parser("export", help="write entries as CSV or JSON with the head hash")
    _filters(ex)
    ex.add_argument("--format", choices=EXPORT_FORMATS, default="csv")
    ex.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")


def _filters(p: argparse.ArgumentParser) -> None:
    p.add_argument("--actor", default="", help="only this user")
    p.add_argument("--action", default="",
                   help="only this action (alert.acknowledge), or a prefix ending in '.' "
                        "(alert.)")
    p.add_argument("--target", default="", help="subject contains this (device or alert id)")
    p.add_argument("--since", default="", help="30m, 2h, 7d or a date such as 2026-12-01")
    p.add_argument("--denied", action="store_true", help="refused attempts only")


def _query(args: argparse.Namespace, *, limit: int | None = None,
           newest_first: bool = False) -> AuditFilter:
    since = None
    if args.since:
        try:
            since = parse_since(args.since)
        except ValueError as exc:
            raise _BadArgument(f"--since: {exc}") from None
    return AuditFilter(actor=args.actor, action=args.action, subject=args.target, since=since,
                       outcome="denied" if args.denied else "", limit=limit,
                       newest_first=newest_first)


class _BadArgument(ValueError):
    pass


def run_audit(args: argparse.Namespace, context: AppContext) -> int:
    try:
        service = context.api.audit
        if args.audit_action == "verify":
            report = service.verify()
            if args.json:
                print(json.dumps({
                    "ok": report.ok, "entries": report.entries, "head_seq": report.head_seq,
                    "head_hash": report.head_hash, "checkpoints": report.checkpoints,
                    "first_bad_seq": report.first_bad_seq, "problems": list(report.problems),
                    "signatures_checked": report.signatures_checked,
                    "pending": report.pending}, indent=2))
            elif report.ok:
                print(report.summary())
            else:
                print(f"audit trail NOT intact; first bad entry: #{report.first_bad_seq}",
                      file=sys.stderr)
                for problem in report.problems:
                    print(f"  {problem}", file=sys.stderr)
            if not report.ok:
                return 1
            return 0 if report.signatures_checked else UNCHECKED
        if args.audit_action == "list":
            if args.limit is not None and args.limit < 1:
                raise _BadArgument("--limit must be at least 1")
            entries = service.list(_query(args, limit=args.limit,
                                          newest_first=args.limit is not None))
            entries.sort(key=lambda e: e.seq)
            _print_list(entries, as_json=args.json)
            return 0
        exported = service.export(args.format, _query(args))
        if args.output == "-":
            sys.stdout.write(exported.text)
        else:
            Path(args.output).write_text(exported.text, encoding="utf-8")
            print(f"{exported.entries} entries written to {args.output} "
                  f"(head #{exported.head_seq} {exported.head_hash})", file=sys.stderr)
        return 0
    except _BadArgument as exc:
        print(f"smartiot audit: {exc}", file=sys.stderr)
        return 2
    except PermissionDenied as exc:
        print(f"smartiot audit: not allowed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        raise SmartIotError(f"cannot write {args.output}: {exc.strerror}") from None


def _print_list(entries: list[AuditEntry], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([entry_json(e) for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        print("no audit entries match", file=sys.stderr)
        return
    for e in entries:
        outcome = " DENIED" if e.details.get("outcome") == "denied" else ""
        role = e.details.get("role", "")
        claimed = e.details.get("claimed_user")
        who = e.actor + (f" ({role})" if role else "") + (f" [claimed {claimed}]"
                                                          if claimed else "")
        print(f"{e.seq:>6}  {cli_time(e.ts)}  {who:<28} "
              f"{e.action:<22} {e.subject}{outcome}")
