"""``smartiot login`` and ``smartiot logout``: the CLI signs in to the
profile's REST API (the hub's, or API Gateway's through Cognito on AWS) once;
afterwards every command on that profile (devices, alerts, firmware,
deploy, export) runs as that person, renewing its short-lived token from the
refresh token in the secret store, until ``smartiot logout``.

Interactive by default (the password is read without echo); a script passes
``--username NAME --password-stdin`` and pipes the password in, so it never
appears in the process list or the shell history. A further step (a new
password on the first sign-in, an MFA code) is asked for interactively; a
script is told to sign in interactively once instead.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from core.context import AppContext
from core.errors import ConfigError
from core.model.roles import Actor
from core.ports.identity_provider import SignInChallenge
from core.ports.remote_api import RemoteSession


def configure_login(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--username", help="who signs in (asked for when left out)")
    parser.add_argument("--password-stdin", action="store_true",
                        help="read the password from the first line of standard input")


def configure_logout(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: signs out the profile's person


def _remote(context: AppContext) -> RemoteSession:
    remote = context.remote
    if remote is None:
        raise ConfigError(
            f"profile {context.config.profile_name!r} has no api_url: it works on this "
            "machine's data and needs no sign-in (give --profile with an api_url, e.g. "
            "aws-local or a team profile)")
    return remote


def run_login(args: argparse.Namespace, context: AppContext) -> int:
    remote = _remote(context)
    username = args.username or input(f"User name for {remote.base_url}: ").strip()
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
    result = remote.sign_in(username, password)
    while isinstance(result, SignInChallenge):
        if args.password_stdin:
            print(f"smartiot login: {username} must take a further step to sign in "
                  f"({result.prompt}); run `smartiot login` once interactively",
                  file=sys.stderr)
            return 1
        result = remote.answer_challenge(result, _ask(result))
    _report(result, remote)
    return 0


def _ask(challenge: SignInChallenge) -> str:
    print(challenge.prompt, file=sys.stderr)
    if challenge.kind == "code":
        return input("Code: ").strip()
    while True:
        first = getpass.getpass("New password: ")
        if first == getpass.getpass("Repeat it: "):
            return first
        print("The two passwords differ; again.", file=sys.stderr)


def _report(actor: Actor, remote: RemoteSession) -> None:
    org = f", organization {actor.organization}" if actor.organization else ""
    print(f"signed in to {remote.base_url} as {actor.user} ({actor.role.value}{org}); "
          "commands on this profile now run as you until `smartiot logout`")


def run_logout(args: argparse.Namespace, context: AppContext) -> int:
    del args
    remote = _remote(context)
    remote.sign_out()
    print(f"signed out of {remote.base_url}; the tokens are forgotten on this machine")
    return 0
