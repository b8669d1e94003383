"""Who may log in to the broker and what each one may publish and read.

One model, two renderings: the mosquitto password and ACL files the embedded
broker and a team's broker load, and the same rules evaluated in Python for
the in-process amqtt broker (which cannot read mosquitto's files itself). The
rules follow AWS IoT Core's policies:

- a device logs in as its device id and may publish only its own telemetry,
  status, command responses and shadow/jobs *requests*, and read only its own
  commands, shadow and jobs answers;
- only the hub answers shadow and jobs requests (the ``accepted``/``rejected``,
  ``delta``, ``documents``, ``notify`` topics) and reads every device topic;
- consoles read the fleet; only console roles allowed to act on devices
  publish commands and desired-state updates;
- the hub's commander (``smartiot.commander``) sends the commands and
  desired-state updates people ask for through the hub's REST API: the server
  checks each person's role and organisation first (core.services.devices), so
  the broker lets this one account act on any device, while the hub's own
  ingest account still may not publish a command.

Non-device user names contain a dot, which no device id may (docs/protocol.md),
so the per-device ``pattern`` rules can never name a real device's topic for
them, and no device can be registered under the hub's or a console's name.

Device passwords are derived (HMAC of a fleet secret and the device id), so a
simulator holding the fleet secret knows 10,000 passwords without a list.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import InvalidDeviceId
from core.model.ids import validate_device_id
from core.protocol.topics import HUB_STATUS_TOPIC
from simulator.broker_queue import MAX_INFLIGHT_LINE, HubQueue, hub_queue

HUB_USER = "smartiot.hub"
# Reads who is online (the retained status topics) and nothing else: how
# `smartiot simulate` finds device ids already in use before it connects.
PRESENCE_USER = "smartiot.presence"
# Sends what people ask for through the hub's REST API (a console's rights with
# a command role); kept apart from HUB_USER so the ingest login cannot command.
COMMANDER_USER = "smartiot.commander"
CONSOLE_PREFIX = "console."
# Console roles (core.model.roles) that may act on devices over MQTT: commands and
# desired-state edits. "support" looks and does not touch.
COMMAND_ROLES = frozenset({"technician", "engineer", "admin"})
READ_ONLY_ROLES = frozenset({"support"})
ALL_ROLES = COMMAND_ROLES | READ_ONLY_ROLES

# Secret-store names (never the config file).
FLEET_SECRET = "broker.fleet_secret"
HUB_PASSWORD = "broker.hub.password"
COMMANDER_PASSWORD = "broker.commander.password"  # on the hub's machine
CONSOLE_PASSWORD = "broker.password"  # this console's own password (also `simulate --username`)

# mosquitto_passwd's defaults for the PBKDF2-SHA512 ("$7$") format.
PBKDF2_ITERATIONS = 101
SALT_BYTES = 12

CONSOLE_USER = re.compile(r"[A-Za-z0-9_-]{1,64}")


class BrokerAuthError(ValueError):
    """A user, role or file that cannot be turned into broker credentials."""


# ---------------------------------------------------------------- passwords
def mosquitto_hash(password: str, *, salt: bytes | None = None,
                   iterations: int = PBKDF2_ITERATIONS) -> str:
    """The line mosquitto_passwd writes, computed here: no binary needed on the
    machine that prepares a team's files, and 10,000 devices hash in well under a
    second (docs/security.md has the figures)."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return (f"$7${iterations}${base64.b64encode(salt).decode()}"
            f"${base64.b64encode(digest).decode()}")


def verify_mosquitto_hash(password: str, hashed: str) -> bool:
    parts = hashed.split("$")
    if len(parts) != 5 or parts[1] != "7":
        return False
    try:
        iterations = int(parts[2])
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    if not 1 <= iterations <= 1_000_000:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return hmac.compare_digest(digest, expected)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def device_password(fleet_secret: str, device_id: str) -> str:
    """Per-device password derived from the fleet secret: knowing one device's
    password tells nothing about another's."""
    mac = hmac.new(fleet_secret.encode(), b"smartiot-device:" + device_id.encode(),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def console_username(user: str) -> str:
    if CONSOLE_USER.fullmatch(user) is None:
        raise BrokerAuthError(
            f"console user {user!r} cannot be a broker user name; use 1-64 letters, digits, "
            "'_' or '-'"
        )
    return f"{CONSOLE_PREFIX}{user}"


def check_role(role: str, where: str = "role") -> str:
    role = role.strip().lower()
    if role not in ALL_ROLES:
        raise BrokerAuthError(f"{where}: {role!r} is not one of {', '.join(sorted(ALL_ROLES))}")
    return role


@dataclass(frozen=True)
class ConsoleAccount:
    user: str
    role: str
    password: str

    @property
    def username(self) -> str:
        return console_username(self.user)


@dataclass(frozen=True)
class BrokerCredentials:
    """Everything a broker needs to check logins; ``fleet_secret`` derives the
    device passwords."""

    fleet_secret: str
    hub_password: str
    consoles: tuple[ConsoleAccount, ...] = ()
    commander_password: str = ""  # "": no commander account

    @classmethod
    def generate(cls, consoles: Iterable[tuple[str, str]] = ()) -> BrokerCredentials:
        """Fresh random secrets: what an embedded broker uses, kept in memory
        for the life of the process and never written anywhere but its private
        password file (hashed)."""
        return cls(new_secret(), new_secret(),
                   tuple(ConsoleAccount(u, check_role(r), new_secret()) for u, r in consoles))

    def console(self, user: str) -> ConsoleAccount:
        for account in self.consoles:
            if account.user == user:
                return account
        raise BrokerAuthError(f"no broker account for console user {user!r}")

    def device_password(self, device_id: str) -> str:
        return device_password(self.fleet_secret, device_id)


# ---------------------------------------------------------------- ACL
@dataclass(frozen=True)
class AclRule:
    """One line of a mosquitto ACL file. ``user`` None with ``pattern`` True is
    a pattern for everyone (%u/%c substituted)."""

    access: str  # read | write | readwrite
    topic: str
    user: str | None = None
    pattern: bool = False


# Device rules: %u is the authenticated user name, which for a device is its id.
DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    ("write", "dt/+/%u/telemetry"),
    ("write", "dt/+/%u/status"),
    ("write", "cmd/+/%u/res"),
    ("read", "cmd/+/%u/req"),
    ("write", "$aws/things/%u/shadow/get"),
    ("write", "$aws/things/%u/shadow/update"),
    ("write", "$aws/things/%u/shadow/delete"),
    ("read", "$aws/things/%u/shadow/get/+"),
    ("read", "$aws/things/%u/shadow/update/+"),
    ("read", "$aws/things/%u/shadow/delete/+"),
    ("write", "$aws/things/%u/jobs/get"),
    ("write", "$aws/things/%u/jobs/start-next"),
    ("write", "$aws/things/%u/jobs/+/get"),
    ("write", "$aws/things/%u/jobs/+/update"),
    ("read", "$aws/things/%u/jobs/notify"),
    ("read", "$aws/things/%u/jobs/notify-next"),
    ("read", "$aws/things/%u/jobs/get/+"),
    ("read", "$aws/things/%u/jobs/start-next/+"),
    ("read", "$aws/things/%u/jobs/+/get/+"),
    ("read", "$aws/things/%u/jobs/+/update/+"),
)

HUB_RULES: tuple[tuple[str, str], ...] = (
    ("read", "dt/+/+/telemetry"),
    ("read", "dt/+/+/status"),
    ("read", "cmd/+/+/res"),
    ("readwrite", "$aws/things/+/shadow/#"),
    ("readwrite", "$aws/things/+/jobs/#"),
    ("readwrite", HUB_STATUS_TOPIC),  # its heartbeat and Last Will; nobody else writes it
)

CONSOLE_READ_RULES: tuple[tuple[str, str], ...] = (
    ("read", "dt/+/+/telemetry"),
    ("read", "dt/+/+/status"),
    ("read", HUB_STATUS_TOPIC),
    ("read", "cmd/+/+/res"),
    ("read", "$aws/things/+/shadow/update/accepted"),
    ("read", "$aws/things/+/shadow/update/rejected"),
)

PRESENCE_RULES: tuple[tuple[str, str], ...] = (
    ("read", "dt/+/+/status"),
)

CONSOLE_COMMAND_RULES: tuple[tuple[str, str], ...] = (
    ("write", "cmd/+/+/req"),
    ("write", "$aws/things/+/shadow/update"),
)

COMMANDER_RULES: tuple[tuple[str, str], ...] = CONSOLE_READ_RULES + CONSOLE_COMMAND_RULES


def acl_rules(consoles: Iterable[tuple[str, str]]) -> list[AclRule]:
    """``consoles``: (user, role) pairs."""
    rules = [AclRule(access, topic, pattern=True) for access, topic in DEVICE_PATTERNS]
    rules += [AclRule(access, topic, user=HUB_USER) for access, topic in HUB_RULES]
    rules += [AclRule(access, topic, user=PRESENCE_USER) for access, topic in PRESENCE_RULES]
    rules += [AclRule(access, topic, user=COMMANDER_USER) for access, topic in COMMANDER_RULES]
    for user, role in consoles:
        name = console_username(user)
        rules += [AclRule(access, topic, user=name) for access, topic in CONSOLE_READ_RULES]
        if check_role(role, f"console {user}") in COMMAND_ROLES:
            rules += [AclRule(access, topic, user=name) for access, topic in CONSOLE_COMMAND_RULES]
    return rules


def acl_text(consoles: Iterable[tuple[str, str]]) -> str:
    rules = acl_rules(consoles)
    lines = ["# Generated by smartiot: what each broker user may publish (write) and",
             "# subscribe to (read). Devices log in as their device id (%u).", ""]
    lines += [f"pattern {r.access} {r.topic}" for r in rules if r.pattern]
    current: str | None = None
    for rule in rules:
        if rule.pattern:
            continue
        if rule.user != current:
            current = rule.user
            lines += ["", f"user {current}"]
        lines.append(f"topic {rule.access} {rule.topic}")
    return "\n".join(lines) + "\n"


def _levels_match(filter_levels: list[str], topic_levels: list[str]) -> bool:
    """MQTT topic matching where the *topic* may itself be a subscription
    filter: ``+`` in the topic is covered only by ``+`` or ``#`` in the rule,
    ``#`` only by ``#`` (mosquitto's check of a SUBSCRIBE against the ACL)."""
    for i, rule_level in enumerate(filter_levels):
        if rule_level == "#":
            return True
        if i >= len(topic_levels):
            return False
        level = topic_levels[i]
        if rule_level == "+":
            if level == "#":
                return False
            continue
        if rule_level != level:
            return False
    return len(filter_levels) == len(topic_levels)


class Acl:
    """mosquitto's acl_file semantics in Python, for the amqtt broker and tests:
    a user's own ``topic`` rules and everyone's ``pattern`` rules; anything not
    granted is denied; wildcards never match a leading ``$`` level."""

    def __init__(self, rules: Iterable[AclRule]) -> None:
        self.patterns = [r for r in rules if r.pattern]
        self.by_user: dict[str, list[AclRule]] = {}
        for rule in rules:
            if not rule.pattern and rule.user is not None:
                self.by_user.setdefault(rule.user, []).append(rule)

    @classmethod
    def parse(cls, text: str, where: str = "ACL") -> Acl:
        rules: list[AclRule] = []
        user: str | None = None
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            words = line.split(None, 2)
            if words[0] == "user" and len(words) == 2:
                user = words[1]
            elif words[0] in ("topic", "pattern") and len(words) == 3 and words[1] in (
                    "read", "write", "readwrite"):
                rules.append(AclRule(words[1], words[2], user=user if words[0] == "topic" else None,
                                     pattern=words[0] == "pattern"))
            elif words[0] in ("topic", "pattern") and len(words) == 2:
                rules.append(AclRule("readwrite", words[1], user=user if words[0] == "topic"
                                     else None, pattern=words[0] == "pattern"))
            else:
                raise BrokerAuthError(f"{where} line {number}: cannot read {line!r}")
        return cls(rules)

    def allows(self, username: str | None, access: str, topic: str) -> bool:
        """``access`` is read (subscribe or receive) or write (publish)."""
        if not username:
            return False
        topic_levels = topic.split("/")
        own = self.by_user.get(username, [])
        candidates: list[tuple[AclRule, str]] = [(r, r.topic) for r in own]
        if not any(c in username for c in "+#/"):  # mosquitto refuses such substitutions
            candidates += [(r, r.topic.replace("%u", username)) for r in self.patterns
                           if "%c" not in r.topic]
        for rule, rule_topic in candidates:
            if access not in rule.access:
                continue
            rule_levels = rule_topic.split("/")
            if topic.startswith("$") and rule_levels[0] in ("+", "#"):
                continue
            if _levels_match(rule_levels, topic_levels):
                return True
        return False


# ---------------------------------------------------------------- password file
def password_lines(device_ids: Iterable[str], credentials: BrokerCredentials, *,
                   accounts: bool = True) -> Iterator[str]:
    """mosquitto password file lines: the hub and consoles (unless not
    ``accounts``), then one line per device."""
    if accounts:
        yield f"{HUB_USER}:{mosquitto_hash(credentials.hub_password)}"
        if credentials.commander_password:
            yield f"{COMMANDER_USER}:{mosquitto_hash(credentials.commander_password)}"
        for account in credentials.consoles:
            yield f"{account.username}:{mosquitto_hash(account.password)}"
    for device_id in device_ids:
        try:
            validate_device_id(device_id)
        except InvalidDeviceId as exc:
            raise BrokerAuthError(f"device {device_id!r} cannot be a broker user: {exc}") from None
        if ":" in device_id:
            # mosquitto's password file splits each line at the first ':'.
            raise BrokerAuthError(f"device {device_id!r} cannot be a broker user: mosquitto "
                                  "user names cannot contain ':'")
        yield f"{device_id}:{mosquitto_hash(credentials.device_password(device_id))}"


def read_password_file(path: Path) -> dict[str, str]:
    users: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, hashed = line.partition(":")
        if not sep or not name:
            raise BrokerAuthError(f"{path} line {number}: expected user:hash")
        users[name] = hashed
    return users


@dataclass
class AuthFiles:
    password_file: Path
    acl_file: Path
    users: int = 0
    consoles: list[tuple[str, str]] = field(default_factory=list)


def write_auth_files(directory: Path, device_ids: Iterable[str],
                     credentials: BrokerCredentials) -> AuthFiles:
    """Writes ``passwd`` and ``acl`` (mode 0600: the hashes are still worth
    guarding) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    consoles = [(a.user, a.role) for a in credentials.consoles]
    lines = list(password_lines(device_ids, credentials))
    passwd = directory / "passwd"
    acl = directory / "acl"
    for path, text in ((passwd, "\n".join(lines) + "\n"), (acl, acl_text(consoles))):
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp, path)
    return AuthFiles(passwd, acl, len(lines), consoles)


# ---------------------------------------------------------------- secret store
def console_secret_name(user: str) -> str:
    """Where ``smartiot broker config`` keeps each console's password; the
    console itself reads ``broker.password`` on its own machine."""
    return f"broker.console.{user}.password"


def stored_secret(name: str) -> str | None:
    from core.secrets import get_secret

    return get_secret(name)


def ensure_secret(name: str) -> str:
    """The stored secret, created (random) and stored on first use."""
    from core.secrets import get_secret, set_secret

    value = get_secret(name)
    if not value:
        value = new_secret()
        set_secret(name, value)
    return value


def team_credentials(consoles: Iterable[tuple[str, str]]) -> BrokerCredentials:
    """A team broker's credentials from the secret store, created on first use,
    so running ``smartiot broker config`` again keeps everyone's passwords."""
    return BrokerCredentials(
        ensure_secret(FLEET_SECRET),
        ensure_secret(HUB_PASSWORD),
        tuple(ConsoleAccount(user, check_role(role, f"console {user}"),
                             ensure_secret(console_secret_name(user)))
              for user, role in consoles),
        ensure_secret(COMMANDER_PASSWORD),
    )


# ---------------------------------------------------------------- team broker
@dataclass(frozen=True)
class TeamListeners:
    """Where a team broker listens. ``port``: plain MQTT with passwords (None:
    off). ``tls_port``: TLS, passwords. ``mtls_port``: mutual TLS as on IoT
    Core, every client presents a certificate signed by ``cafile`` and its
    common name is its user name (a device's CN is its device id)."""

    bind: str = "0.0.0.0"
    port: int | None = 1883
    tls_port: int | None = None
    mtls_port: int | None = None
    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def check(self) -> None:
        if self.port is None and self.tls_port is None and self.mtls_port is None:
            raise BrokerAuthError("the broker needs at least one listener (--port, --tls-port "
                                  "or --mtls-port)")
        if self.tls_port is not None or self.mtls_port is not None:
            for label, path in (("--cafile", self.cafile), ("--certfile", self.certfile),
                                ("--keyfile", self.keyfile)):
                if path is None:
                    raise BrokerAuthError(f"TLS listeners need {label}")
                if not path.is_file():
                    raise BrokerAuthError(f"{label} {path} does not exist")


def mosquitto_team_conf(directory: Path, listeners: TeamListeners, *,
                        run_as_root: bool = False, queue: HubQueue | None = None) -> str:
    """mosquitto.conf for a team's broker: no anonymous clients, our password
    file and ACL, persistent sessions (the hub's QoS 1 backlog survives a
    broker restart), a queue for the hub's session while the hub is away
    (``queue``, simulator.broker_queue), and the listeners asked for."""
    listeners.check()
    queue = queue or hub_queue(1000)
    d = directory.resolve()
    lines = [
        f"# Generated by `smartiot broker config`; run: mosquitto -c {d / 'mosquitto.conf'}",
        "per_listener_settings false",
        "allow_anonymous false",
        f"password_file {d / 'passwd'}",
        f"acl_file {d / 'acl'}",
        "persistence true",
        f"persistence_location {d / 'data'}/",
        *queue.conf_lines(),
        MAX_INFLIGHT_LINE,
        "log_type error",
        "log_type warning",
        "log_type notice",
        *(["user root"] if run_as_root else []),
    ]
    if listeners.port is not None:
        lines += ["", f"listener {listeners.port} {listeners.bind}"]
    for port, mutual in ((listeners.tls_port, False), (listeners.mtls_port, True)):
        if port is None:
            continue
        lines += ["", f"listener {port} {listeners.bind}",
                  f"cafile {listeners.cafile}", f"certfile {listeners.certfile}",
                  f"keyfile {listeners.keyfile}", "tls_version tlsv1.2"]
        if mutual:
            lines += ["require_certificate true", "use_identity_as_username true"]
    return "\n".join(lines) + "\n"


def read_device_list(path: Path) -> list[str]:
    """One device id per line; blank lines and '#' comments are skipped. Errors
    name the file and the line."""
    ids: list[str] = []
    seen: set[str] = set()
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            validate_device_id(line)
        except InvalidDeviceId as exc:
            raise BrokerAuthError(f"{path} line {number}: {exc}") from None
        if line in seen:
            raise BrokerAuthError(f"{path} line {number}: device {line!r} is listed twice")
        seen.add(line)
        ids.append(line)
    return ids


def parse_console(spec: str) -> tuple[str, str]:
    user, sep, role = spec.partition(":")
    if not sep:
        raise BrokerAuthError(f"--console {spec!r}: use USER:ROLE, e.g. maria:engineer")
    console_username(user)
    return user, check_role(role, f"--console {spec}")
