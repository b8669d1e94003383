"""``smartiot broker``: a team's broker files, and the passwords to hand out.

``config`` writes mosquitto.conf, the password file and the ACL for the team
broker the README documents; the passwords behind them live in the secret
store of the machine that ran it (created on first use, kept on re-runs, so
adding devices never changes anyone's password). ``password`` prints one of
them for provisioning a device, the hub's machine or a console's.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.context import AppContext
from core.errors import SmartIotError
from plugins.local.broker_accounts import (
    ACCOUNTS_PASSWORD,
    ACCOUNTS_USER,
    dynsec_conf_lines,
    find_dynsec_plugin,
    write_dynsec_config,
)
from simulator.broker_auth import (
    COMMAND_ROLES,
    COMMANDER_PASSWORD,
    COMMANDER_USER,
    FLEET_SECRET,
    HUB_PASSWORD,
    HUB_USER,
    BrokerAuthError,
    TeamListeners,
    console_secret_name,
    console_username,
    device_password,
    ensure_secret,
    mosquitto_team_conf,
    parse_console,
    read_device_list,
    stored_secret,
    team_credentials,
    write_auth_files,
)
from simulator.broker_queue import DEFAULT_INTERVAL_S, DEFAULT_OUTAGE_S, hub_queue


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="broker_action", metavar="ACTION", required=True)
    c = sub.add_parser("config", help="write mosquitto.conf, password file and ACL for a team")
    c.add_argument("--out", required=True, help="directory for mosquitto.conf, passwd and acl")
    devices = c.add_mutually_exclusive_group(required=True)
    devices.add_argument("--devices", type=int, metavar="N",
                         help="devices PREFIX-00000 ... (as `smartiot simulate --devices N`)")
    devices.add_argument("--device-list", metavar="FILE", help="device ids, one per line")
    c.add_argument("--prefix", default="env", help="device id prefix for --devices (default env)")
    c.add_argument("--console", action="append", default=[], metavar="USER:ROLE",
                   help="a console account, e.g. maria:engineer (repeat); roles "
                        f"{', '.join(sorted(COMMAND_ROLES))} may send commands, support "
                        "only watches")
    c.add_argument("--bind", default="0.0.0.0", help="address to listen on (default all)")
    c.add_argument("--port", type=int, default=1883,
                   help="plain MQTT port with passwords (default 1883; 0 turns it off)")
    c.add_argument("--tls-port", type=int, help="TLS port, passwords (e.g. 8883)")
    c.add_argument("--mtls-port", type=int,
                   help="mutual-TLS port: clients present a certificate signed by --cafile and "
                        "its common name is the user name (device id), as on AWS IoT Core")
    c.add_argument("--cafile", help="CA certificate for the TLS ports (signs device certs)")
    c.add_argument("--certfile", help="the broker's certificate")
    c.add_argument("--keyfile", help="the broker's private key")
    c.add_argument("--person-accounts", action="store_true",
                   help="let the hub give each signed-in person their own broker account, "
                        "limited by role (mosquitto's dynamic-security plugin)")
    c.add_argument("--hub-outage", type=float, default=DEFAULT_OUTAGE_S / 60, metavar="MIN",
                   help="minutes of telemetry the broker queues for the hub while it is away "
                        f"(default {DEFAULT_OUTAGE_S / 60:g}); sized with --interval")
    c.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, metavar="S",
                   help="the devices' reporting interval in seconds, for sizing that queue "
                        f"(default {DEFAULT_INTERVAL_S:g})")

    p = sub.add_parser("password", help="print a broker password from the secret store")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--device", metavar="ID", help="a device's (derived from the fleet secret)")
    who.add_argument("--hub", action="store_true", help="the hub's")
    who.add_argument("--commander", action="store_true",
                     help=f"the hub's account for commands people send through its REST API "
                          f"({COMMANDER_USER})")
    who.add_argument("--console", metavar="USER", help="a console's")
    who.add_argument("--accounts", action="store_true",
                     help=f"the hub's control account for people's broker accounts "
                          f"({ACCOUNTS_USER})")


def run(args: argparse.Namespace, context: AppContext) -> int:
    try:
        if args.broker_action == "config":
            return _config(args)
        return _password(args)
    except BrokerAuthError as exc:
        print(f"smartiot broker: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"smartiot broker: {exc}", file=sys.stderr)
        return 1


def _config(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    if args.devices is not None:
        if args.devices < 0:
            raise BrokerAuthError("--devices must be 0 or more")
        device_ids = [f"{args.prefix}-{i:05d}" for i in range(args.devices)]
    else:
        device_ids = read_device_list(Path(args.device_list))
    consoles = [parse_console(spec) for spec in args.console]
    users = [u for u, _ in consoles]
    if len(set(users)) != len(users):
        raise BrokerAuthError("each --console user may appear once")

    def path(value: str | None) -> Path | None:
        return Path(value).expanduser().resolve() if value else None

    listeners = TeamListeners(bind=args.bind, port=args.port or None, tls_port=args.tls_port,
                              mtls_port=args.mtls_port, cafile=path(args.cafile),
                              certfile=path(args.certfile), keyfile=path(args.keyfile))
    try:
        queue = hub_queue(len(device_ids), interval_s=args.interval,
                          outage_s=args.hub_outage * 60)
    except ValueError as exc:
        raise BrokerAuthError(f"--hub-outage/--interval: {exc}") from None
    conf = mosquitto_team_conf(out, listeners, run_as_root=os.geteuid() == 0, queue=queue)
    try:
        credentials = team_credentials(consoles)
    except SmartIotError as exc:
        raise BrokerAuthError(f"the broker passwords need the secret store: {exc}") from None
    files = write_auth_files(out, device_ids, credentials)
    (out / "data").mkdir(exist_ok=True)
    dynsec = ""
    if args.person_accounts:
        plugin = find_dynsec_plugin()
        if plugin is None:
            raise BrokerAuthError("--person-accounts: mosquitto's dynamic-security plugin "
                                  "(mosquitto_dynamic_security.so) is not installed here")
        try:
            accounts_password = ensure_secret(ACCOUNTS_PASSWORD)
        except SmartIotError as exc:
            raise BrokerAuthError(f"the broker passwords need the secret store: {exc}") from None
        dynsec_file = write_dynsec_config(out, accounts_password)
        conf += "\n".join(dynsec_conf_lines(dynsec_file, plugin)) + "\n"
        dynsec = str(dynsec_file)
    (out / "mosquitto.conf").write_text(conf)
    print(f"wrote {out / 'mosquitto.conf'}, {files.password_file} ({files.users:,} users) "
          f"and {files.acl_file}")
    print(f"start the broker with: mosquitto -c {out.resolve() / 'mosquitto.conf'}")
    print(f"hub restarts lose nothing: {queue.describe()} (--hub-outage, --interval)")
    print(f"hub user {HUB_USER}: password in the secret store as {HUB_PASSWORD}; on the hub's "
          f"machine: smartiot broker password --hub | smartiot secrets set {HUB_PASSWORD}")
    print(f"commander user {COMMANDER_USER} (the hub sends the commands people ask for through "
          f"its REST API): password in the secret store as {COMMANDER_PASSWORD}; on the hub's "
          f"machine: smartiot broker password --commander | smartiot secrets set "
          f"{COMMANDER_PASSWORD}")
    for user, role in consoles:
        rights = "commands and desired state" if role in COMMAND_ROLES else "read only"
        print(f"console user {console_username(user)} ({role}, {rights}): on that console, "
              f"store `smartiot broker password --console {user}` as broker.password")
    if args.person_accounts:
        print(f"people's own broker accounts: {dynsec} (the hub manages them as "
              f"{ACCOUNTS_USER}); on the hub's machine: smartiot broker password --accounts | "
              f"smartiot secrets set {ACCOUNTS_PASSWORD}")
    print(f"devices log in as their device id; passwords derive from {FLEET_SECRET} "
          f"(smartiot broker password --device ID; `smartiot simulate` uses the secret itself)")
    return 0


def _password(args: argparse.Namespace) -> int:
    name = FLEET_SECRET if args.device else (
        HUB_PASSWORD if args.hub else COMMANDER_PASSWORD if args.commander
        else ACCOUNTS_PASSWORD if args.accounts
        else console_secret_name(args.console))
    value = stored_secret(name)
    if not value:
        print(f"smartiot broker: no {name} in the secret store; run `smartiot broker config` "
              "first", file=sys.stderr)
        return 1
    print(device_password(value, args.device) if args.device else value)
    return 0
