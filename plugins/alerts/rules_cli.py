"""``smartiot rules list|add|import|export``: alert rules from a terminal.

A team keeps its rules in version control and loads them into the shared
database, so the CLI reads and writes the same TOML or JSON files (see
core.services.alerting.rule_files). Every read and change goes through the
alerts use cases (``context.api.alerts``), so it is role-checked, limited to
the person's organization and audited like an edit in the rule editor.
``rules add --defaults`` is the terminal's answer to the first-run prompt on
the Alerts page: the default rule set, into an empty rules table.

Exit codes: 0 done, 1 refused or invalid (the message names file, rule and
field), 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.context import AppContext
from core.errors import SmartIotError, ValidationError
from core.model.rule import AlertRule
from core.services.alerting import build_evaluator
from core.services.alerting.builtin import BUILTIN_RULE_TYPES
from core.services.alerting.rule_files import (
    FORMATS,
    dump_rules,
    read_rules_file,
    rule_to_dict,
)


def configure_rules(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="rules_action", metavar="ACTION", required=True)

    ls = sub.add_parser("list", help="list the alert rules in the database")
    ls.add_argument("--json", action="store_true", help="machine-readable output")

    add = sub.add_parser("add", help="add new rules from a file, or the default rule set")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("file", nargs="?", type=Path, metavar="FILE",
                      help="TOML or JSON rules file; every id in it must be new")
    what.add_argument("--defaults", action="store_true",
                      help="add the default rule set (only into an empty rules table)")
    add.add_argument("--format", choices=FORMATS, help="file format (default: from the suffix)")

    imp = sub.add_parser("import", help="bring the database in line with a rules file: add new "
                                        "ids, update changed rules (others are kept)")
    imp.add_argument("file", type=Path, metavar="FILE", help="TOML or JSON rules file")
    imp.add_argument("--format", choices=FORMATS, help="file format (default: from the suffix)")

    exp = sub.add_parser("export", help="write the rules to a file (or standard output)")
    exp.add_argument("file", nargs="?", type=Path, metavar="FILE",
                     help="where to write (default: standard output)")
    exp.add_argument("--format", choices=FORMATS,
                     help="file format (default: from the suffix, else toml)")


def run_rules(args: argparse.Namespace, context: AppContext) -> int:
    try:
        alerts = context.api.alerts
        if not alerts.features().rules:
            print("smartiot rules: this backend keeps no alert rules", file=sys.stderr)
            return 1
        if args.rules_action == "list":
            return _list(alerts.list_rules(), as_json=args.json)
        if args.rules_action == "export":
            return _export(alerts.list_rules(), args.file, args.format)
        if args.rules_action == "add" and args.defaults:
            for rule in alerts.add_default_rules():
                print(f"added {rule.rule_id} ({rule.name})")
            return 0
        rules = read_rules_file(args.file, args.format)
        _validate(rules, context, str(args.file))
        if args.rules_action == "add":
            existing = {r.rule_id for r in alerts.list_rules()}
            taken = [r for r in rules if r.rule_id in existing]
            if taken:
                raise ValidationError(
                    f"{args.file}: rule id(s) {', '.join(r.rule_id for r in taken)} already "
                    "exist; use `smartiot rules import` to update existing rules")
            for rule in rules:
                added = alerts.add_rule(rule)
                print(f"added {added.rule_id} ({added.name})")
            return 0
        outcome = alerts.import_rules(rules)
        for rule in outcome.added:
            print(f"added {rule.rule_id} ({rule.name})")
        for rule in outcome.updated:
            print(f"updated {rule.rule_id} ({rule.name}) to version {rule.version}")
        print(f"{len(outcome.added)} added, {len(outcome.updated)} updated, "
              f"{len(outcome.unchanged)} unchanged")
        return 0
    except SmartIotError as exc:
        print(f"smartiot rules: {exc}", file=sys.stderr)
        return 1


def _validate(rules: list[AlertRule], context: AppContext, source: str) -> None:
    """Check each rule's parameters against its type before anything is
    stored, so a bad file changes nothing."""
    types = dict(BUILTIN_RULE_TYPES)
    types.update(context.plugins.alert_rule_types())
    for number, rule in enumerate(rules, start=1):
        try:
            build_evaluator(rule, types)
        except ValidationError as exc:
            raise ValidationError(f"{source}: rule {number}: {exc}") from None


def _list(rules: list[AlertRule], *, as_json: bool) -> int:
    if as_json:
        print(json.dumps([{**rule_to_dict(r), "version": r.version} for r in rules], indent=2))
        return 0
    if not rules:
        print("no alert rules; `smartiot rules add --defaults` adds the default set")
        return 0
    for r in rules:
        state = "" if r.enabled else "  (disabled)"
        print(f"{r.rule_id:<24} {r.severity.value:<8} {r.rule_type:<14} {r.name}{state}")
    return 0


def _export(rules: list[AlertRule], path: Path | None, fmt: str | None) -> int:
    chosen = fmt or (path.suffix.lower().lstrip(".") if path is not None else "") or "toml"
    if chosen not in FORMATS:
        raise ValidationError(f"{path}: cannot tell the format from the name; name the file "
                              "*.toml or *.json, or pass --format")
    text = dump_rules(rules, chosen)
    if path is None:
        sys.stdout.write(text)
        return 0
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"{path}: cannot write ({exc.strerror or exc})") from None
    print(f"wrote {len(rules)} rule{'s' if len(rules) != 1 else ''} to {path}", file=sys.stderr)
    return 0
