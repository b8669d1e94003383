"""``smartiot``: the one entry point for the GUI, the hub and every script.

No arguments opens the console window; subcommands come from plugins through
``smartiot_register_cli_commands``. Qt is imported only when the GUI is asked
for, so the same command works on a headless hub.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from console import dirs
from core import __version__
from core.config import Config, check_backend, check_team_profile, load_config
from core.context import AppContext
from core.errors import ConfigError, SmartIotError
from core.identity import resolve_actor
from core.plugins import PluginManager
from core.registrations import CliCommand

BUILTIN_COMMANDS = ("plugins", "config", "secrets")

GLOBAL_OPTIONS: tuple[tuple[tuple[str, ...], dict[str, object]], ...] = (
    (("--profile",), {"help": "configuration profile to use (default: local)"}),
    (("--config",), {"help": "configuration file (default: the user config dir)"}),
    (("--database",), {"help": "SQLAlchemy URL overriding the profile's database"}),
    (("--broker",), {"help": "broker URL or 'embedded', overriding the profile; for "
                              "simulate also 'console': the embedded broker of the console "
                              "running on this machine"}),
    (("--theme",), {"choices": ("light", "dark"), "help": "colour theme of the window"}),
    (("-v", "--verbose"), {"action": "store_true", "help": "log debug messages"}),
)


def build_parser(commands: dict[str, CliCommand]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="smartiot",
        description="Smart IoT Fleet Console. Without a command, opens the console window.",
    )
    parser.add_argument("--version", action="version", version=f"smartiot {__version__}")
    _add_global_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins with their status and errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    c = sub.add_parser("config", help="show the effective configuration and where it comes from")
    c.add_argument("action", nargs="?", choices=("show", "path", "check"), default="show")

    s = sub.add_parser(
        "secrets", help="store secrets in the OS keyring or the encrypted file (never the config)"
    )
    s.add_argument("action", choices=("set", "delete", "has", "list", "passphrase"))
    s.add_argument("name", nargs="?", help="e.g. broker.password or codesign-passphrase")

    for command in commands.values():
        if command.name in BUILTIN_COMMANDS:
            continue
        cp = sub.add_parser(command.name, help=command.help, aliases=list(command.aliases))
        command.configure(cp)
    _accept_global_options_everywhere(parser)
    return parser


def _add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The options every command shares. Below the top level their default is
    SUPPRESS, so a value given before the command is not reset by a subparser
    that did not see it; a command's own option of the same name wins."""
    taken = parser._option_string_actions
    extra: dict[str, object] = {} if defaults else {"default": argparse.SUPPRESS}
    for flags, kwargs in GLOBAL_OPTIONS:
        if any(flag in taken for flag in flags):
            continue
        parser.add_argument(*flags, **kwargs, **extra)  # type: ignore[arg-type]


def _accept_global_options_everywhere(parser: argparse.ArgumentParser) -> None:
    """``smartiot hub --broker mqtt://…`` is how people type it: every subcommand
    (and sub-subcommand) accepts the global options too."""
    seen: set[int] = {id(parser)}
    todo = [parser]
    while todo:
        current = todo.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                for child in action.choices.values():
                    if id(child) not in seen:
                        seen.add(id(child))
                        _add_global_options(child, defaults=False)
                        todo.append(child)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if ("-v" in argv or "--verbose" in argv) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    plugins = PluginManager()
    commands = plugins.cli_commands()
    parser = build_parser(commands)
    args = parser.parse_args(argv)

    try:
        config = _load(args)
        if args.command is None:
            # the window needs its backend; commands check it when they use it,
            # so `smartiot plugins` still runs to show why one is missing
            check_backend(config, plugins.backends())
        if args.command not in ("plugins", "config", "secrets"):
            check_team_profile(config)
    except ConfigError as exc:
        print(f"smartiot: configuration error: {exc}", file=sys.stderr)
        return 2
    context = AppContext(config, plugins)

    try:
        if args.command is None:
            return _run_gui(context)
        if args.command == "plugins":
            return _cmd_plugins(plugins, as_json=args.json)
        if args.command == "config":
            return _cmd_config(config, args.action)
        if args.command == "secrets":
            from console.secrets import run_secrets_command

            return run_secrets_command(args.action, args.name)
        command = _find(commands, args.command)
        context.live = False
        return command.run(args, context)
    except SmartIotError as exc:
        print(f"smartiot: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        context.close()


def _find(commands: dict[str, CliCommand], name: str) -> CliCommand:
    for command in commands.values():
        if name == command.name or name in command.aliases:
            return command
    raise SmartIotError(f"unknown command {name!r}")


def _load(args: argparse.Namespace) -> Config:
    path = dirs.config_path() if not args.config else os.path.expanduser(args.config)
    from pathlib import Path

    broker = args.broker
    if broker == "console":
        # the running console's embedded broker, found by `smartiot simulate`
        # itself (simulator.local_brokers.console_broker); nothing else takes it
        if args.command != "simulate":
            raise ConfigError("--broker console is for `smartiot simulate` (a fleet beside the "
                              "console running on this machine); give a broker URL")
        broker = None
    overrides = {
        "profile": args.profile,
        "theme": args.theme,
        "database": args.database,
        "broker": broker,
    }
    return load_config(Path(path), dirs.data_dir(), overrides=overrides)


def _run_gui(context: AppContext) -> int:
    from console.display import explain_missing_display, has_display

    if not has_display():
        commands = [*BUILTIN_COMMANDS, *sorted(context.plugins.cli_commands())]
        print(explain_missing_display(commands), file=sys.stderr)
        return 3
    from console.app import run_console

    return run_console(context)


def _cmd_plugins(plugins: PluginManager, *, as_json: bool) -> int:
    infos = plugins.infos()
    if as_json:
        import json

        print(json.dumps([
            {"name": i.name, "status": i.status.value, "source": i.source, "error": i.error,
             "hooks": i.hooks, "version": i.version, "requires": list(i.requires),
             "optional": list(i.optional)}
            for i in infos
        ], indent=2))
    else:
        active = {i.name for i in infos if i.is_active}
        width = max((len(i.name) for i in infos), default=4)
        for info in infos:
            line = f"{info.name:<{width}}  {info.status.value:<8}  {info.source}"
            if info.hooks:
                line += f"  [{', '.join(h.removeprefix('smartiot_') for h in info.hooks)}]"
            print(line)
            for label, names in (("requires", info.requires), ("optional", info.optional)):
                if names:
                    listed = ", ".join(n if n in active else f"{n} (not active)" for n in names)
                    print(f"{'':<{width}}  {label}: {listed}")
            if info.error:
                print(f"{'':<{width}}  error: {info.error}")
    return 0


def _cmd_config(config: Config, action: str) -> int:
    if action == "path":
        print(config.path)
        return 0
    if action == "check":
        print(f"{config.path}: OK (profile {config.profile_name})")
        return 0
    profile = config.profile
    print(f"config file : {config.path}{'' if config.path.exists() else ' (not created yet)'}")
    print(f"data dir    : {config.data_dir}")
    print(f"profile     : {config.profile_name}  (available: {', '.join(sorted(config.profiles))})")
    print(f"theme       : {config.theme}")
    actor = resolve_actor(config)
    claimed = f"; {actor.claimed_user!r} is only noted as a claim" if actor.claimed_user else ""
    print(f"you act as  : {actor.user} (the OS account), role {actor.role.value}{claimed}")
    print(f"secrets     : {_secrets_backend()}")
    for key, _value in profile.__class__.__dataclass_fields__.items():
        if key == "name":
            continue
        print(f"  {key:<12}: {getattr(profile, key)!r}")
    print(f"  {'database url':<12}: {config.database_url}")
    return 0


def _secrets_backend() -> str:
    from core.secrets import SecretsError, describe_backend

    try:
        return describe_backend()
    except SecretsError as exc:
        return f"unavailable: {exc}"


if __name__ == "__main__":
    raise SystemExit(main())
