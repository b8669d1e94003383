"""``smartiot users list|add|set-role|disable|enable|passwd``: the user
directory from a terminal, through the same use cases as ``/users`` (admins
only; every change and every refusal is in the audit trail).

Passwords (for signing in to the hub's REST API) are never arguments, which
would land in shell history and ``ps``: ``--password-stdin`` reads one line
from standard input, and a terminal is asked twice. The team's first admin is
added this way on the hub's machine, the only one that reaches the database
(docs/team.md).

Exit codes: 0 done, 1 refused or not found (the reason on stderr), 2 bad
arguments (the message names the argument).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from core.context import AppContext
from core.errors import ConcurrentModification, NotFound, PermissionDenied, ValidationError
from core.model.roles import Role
from core.model.users import UserAccount

ROLES = [r.value for r in Role]


def configure_users(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the people in the directory (an organization's admin: "
                                     "its people)")
    ls.add_argument("--json", action="store_true", help="JSON array")
    add = sub.add_parser("add", help="add a person with a role (and an organization)")
    add.add_argument("name", help="the name they sign in with (their OS account here)")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--org", default="", help="their organization (an organization's admin "
                                               "always adds into their own)")
    add.add_argument("--password-stdin", action="store_true",
                     help="read their initial password from standard input (one line); "
                          "without it a terminal asks twice, and a script adds no password")
    role = sub.add_parser("set-role", aliases=["role"], help="change a person's role")
    role.add_argument("name")
    role.add_argument("role", choices=ROLES)
    for action, text in (("disable", "refuse the person's actions and sign-ins from now on"),
                         ("enable", "let a disabled person act again")):
        sub.add_parser(action, help=text).add_argument("name")
    pw = sub.add_parser("passwd", help="set a person's password (their sign-ins end)")
    pw.add_argument("name")
    pw.add_argument("--password-stdin", action="store_true",
                    help="read the password from standard input (one line)")


def run_users(args: argparse.Namespace, context: AppContext) -> int:
    try:
        users = context.api.users
        if args.users_action == "list":
            _print(users.list(), as_json=args.json)
            return 0
        if args.users_action == "add":
            password = _read_password(args.password_stdin, required=False)
            account = users.add(args.name, args.role, args.org, password)
            if password is None:
                print(f"{account.name} has no password yet: they cannot sign in until "
                      f"`smartiot users passwd {account.name}`", file=sys.stderr)
        elif args.users_action in ("set-role", "role"):
            account = users.set_role(args.name, args.role)
        elif args.users_action == "passwd":
            password = _read_password(args.password_stdin, required=True)
            assert password is not None
            account = users.set_password(args.name, password)
            print(f"password of {account.name} set; their sign-ins ended", file=sys.stderr)
        else:
            account = users.set_disabled(args.name, args.users_action == "disable")
        print(_line(account))
        return 0
    except ValidationError as exc:
        print(f"smartiot users: {exc}", file=sys.stderr)
        return 2
    except PermissionDenied as exc:
        print(f"smartiot users: not allowed: {exc}", file=sys.stderr)
        return 1
    except (NotFound, ConcurrentModification) as exc:
        print(f"smartiot users: {exc}", file=sys.stderr)
        return 1


def _read_password(from_stdin: bool, *, required: bool) -> str | None:
    """One line from stdin, or asked twice on a terminal; None when there is
    no terminal and nothing was asked for (and none is required)."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise ValidationError("--password-stdin: standard input held no password")
        return line
    if not sys.stdin.isatty():
        if required:
            raise ValidationError("password: no terminal to ask on; pass --password-stdin "
                                  "and write it to standard input")
        return None
    first = getpass.getpass("Password: ")
    if not first and not required:
        return None
    if getpass.getpass("Password again: ") != first:
        raise ValidationError("password: the two entries differ; nothing changed")
    return first


def _line(u: UserAccount) -> str:
    state = "disabled" if u.disabled else "enabled"
    return f"{u.name:<24} {u.role.value:<11} {u.organization or '-':<16} {state}"


def _print(accounts: list[UserAccount], *, as_json: bool) -> None:
    if as_json:
        print(json.dumps([{"name": u.name, "role": u.role.value,
                           "organization": u.organization, "disabled": u.disabled,
                           "version": u.version} for u in accounts], indent=2))
        return
    if not accounts:
        print("no users in the directory", file=sys.stderr)
        return
    for u in accounts:
        print(_line(u))
