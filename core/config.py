"""Configuration: one TOML file, ``SMARTIOT_*`` environment overrides, CLI flags.

Precedence is file < environment < flags, resolved once at start-up into an
immutable ``Config``. Every error names the file, the key and what is
allowed, because a technician editing the file by hand must be able to fix
it from the message alone. Secrets are refused outright: they belong in the
OS keyring, never in a file that gets copied between laptops.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.errors import ConfigError, ValidationError
from core.model.ids import is_valid_device_id
from core.model.roles import Role

# Which backends exist is up to the loaded plugins (smartiot_register_backends):
# the file only needs a name, checked against them by check_backend().
BACKEND_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
THEMES = ("light", "dark")
PROFILE_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
BROKER_URL = re.compile(r"(mqtts?)://[^\s/:]+(:\d{1,5})?/?")
# An aws profile's stage names its tables, buckets and functions (iot-devices-<stage>).
AWS_STAGE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
API_URL = re.compile(r"https?://[^\s/:@]+(:\d{1,5})?(/[^\s?#]*)?")
# An aws profile's api_url may be this word: the REST API's URL is then the
# stack's ServiceEndpoint output, found with the pool ids (DescribeStacks).
API_URL_FROM_STACK = "stack"
_SECRET_WORDS = ("password", "secret", "token", "passphrase", "private_key", "api_key")


@dataclass(frozen=True, slots=True)
class Profile:
    """Where the console gets its data from; ``local`` works offline out of the box."""

    name: str
    backend: str = "local"
    broker: str = "embedded"
    database: str = ""
    organization: str = "demo"
    demo_fleet: bool = True
    # Run the hub (ingestion, shadows, alert engine) inside the console. A team
    # runs one `smartiot hub` next to the shared database and turns this off.
    hub: bool = True
    # Where the hub receives telemetry: "process" (a child process of its own, so
    # its MQTT work does not share the writer's GIL: the default, what keeps up at
    # fleet scale) or "thread" (in the hub's process; tests and tiny set-ups).
    hub_receiver: str = "process"
    # With ``hub``: run it as a child process (`smartiot hub` on the same
    # broker and database, stopped with the console) instead of in the
    # console's own process, so a large fleet's ingest does not compete with
    # the window for one interpreter (docs/benchmarks.md, "Console at fleet scale").
    hub_process: bool = False
    # Without ``hub_process``: the console's own hub moves into that child
    # process by itself once it knows more than this many devices (0: never).
    # Below it the hub in the window's process is the lighter set-up; above it
    # the hub's work costs the window its smoothness (docs/benchmarks.md,
    # "The hub moves out as the fleet grows").
    hub_process_above: int = 1500
    # The aws backend (plugins/aws, docs/aws.md): a named profile of ~/.aws/config
    # (credentials never here), the region, the stage that names every resource
    # (tables iot-devices-<stage>, iot-alerts-<stage>, ...) and, for moto or
    # `smartiot aws sandbox`, the endpoint to use instead of AWS.
    aws_profile: str = ""
    region: str = ""
    stage: str = "dev"
    endpoint_url: str = ""
    iot_endpoint: str = ""
    # Telemetry history of an aws profile: "dynamodb" (the default) or "timestream".
    telemetry: str = "dynamodb"
    # botocore's retries of an aws profile's clients (throttling, dropped
    # connections): "standard" (the default) or "adaptive" (also slows the
    # client down while AWS throttles it), and how many attempts in all.
    aws_retry_mode: str = "standard"
    aws_max_attempts: int = 5
    # `smartiot hub` serves the REST API (sign-in, every use case) here, host:port,
    # when set (or given `--api`); HTTPS when both PEM paths are set. Consoles of
    # the team then reach the data through it, never the database.
    api_listen: str = ""
    api_tls_cert: str = ""
    api_tls_key: str = ""
    # The hub's firmware file server (the local stand-in for S3): where it listens
    # (host[:port]) and the host[:port] put into download URLs. Off loopback it
    # serves HTTPS only, from these PEM files.
    files_bind: str = "127.0.0.1"
    files_advertise: str = ""
    files_tls_cert: str = ""
    files_tls_key: str = ""
    # The REST API this console works through (the hub's, or API Gateway's):
    # set, the console signs in there and opens no database; pages get their
    # data from the API and live events from the broker.
    api_url: str = ""
    # Sign-in on AWS (docs/aws.md, "The console on AWS"): the stage's Cognito
    # user pool, the console's app client and the identity pool (live topics).
    # Ids, not secrets. Left empty, they are read from the stack's outputs
    # (CloudFormation DescribeStacks of smartiot-<stage>), or for aws-local
    # from the running sandbox's state file.
    user_pool_id: str = ""
    user_pool_client_id: str = ""
    identity_pool_id: str = ""


PROFILE_KEYS: dict[str, type] = {
    f.name: (bool if f.type in ("bool", bool) else int if f.type in ("int", int) else str)
    for f in dataclasses.fields(Profile)
    if f.name != "name"
}

BUILTIN_PROFILES: dict[str, Profile] = {
    "local": Profile("local"),
    # A team profile: the team's broker and database are named in the file (or
    # api_url), never guessed, so a machine's own 127.0.0.1 services and the
    # postgres superuser are not used by accident (check_team_profile).
    "lab": Profile(
        "lab",
        broker="",
        database="",
        organization="lab",
        demo_fleet=False,
        hub=False,
    ),
    # `smartiot aws sandbox` on its default ports (docs/aws.md, "The sandbox").
    # The user pool's ids are new on every sandbox start: they are read from
    # the sandbox's state file (<data dir>/aws-sandbox.json) while it runs, as
    # is its MQTT-over-WebSocket URL for consoles (mqtt_ws_url).
    "aws-local": Profile(
        "aws-local",
        backend="aws",
        broker="mqtt://127.0.0.1:1884",
        demo_fleet=False,
        hub=False,
        region="us-east-1",
        stage="sandbox",
        endpoint_url="http://127.0.0.1:5000",
        api_url="http://127.0.0.1:3000",
    ),
}


@dataclass(frozen=True, slots=True)
class Config:
    path: Path
    data_dir: Path
    profile_name: str = "local"
    profiles: dict[str, Profile] = field(default_factory=lambda: dict(BUILTIN_PROFILES))
    theme: str = "light"
    # A name asked for in the file, SMARTIOT_USER or a flag. Not an identity:
    # core.identity names the OS account and notes this one beside it.
    user: str = ""
    # The role asked for (core.model.roles); empty means the profile's default
    # (core.identity.default_role: admin for the one-process set-up).
    role: str = ""
    # Who may appear by publishing, per organization ("*": every other one):
    # "open", "known-only" or "rate-limited [N/min]" (the hub enforces it).
    registration: dict[str, str] = field(default_factory=dict)

    @property
    def profile(self) -> Profile:
        return self.profiles[self.profile_name]

    @property
    def database_url(self) -> str:
        """Empty means the default SQLite file in the data dir."""
        return self.profile.database or f"sqlite:///{self.data_dir / 'smartiot.db'}"


def check_team_profile(config: Config) -> None:
    """A profile without a hub of its own (``hub = false``) and without an
    ``api_url`` works on the team's broker and database directly (the hub's
    machine): both must be named, because a silent default would reach
    whatever happens to run on this machine. Raises ConfigError naming the
    keys to add."""
    profile = config.profile
    if profile.backend != "local" or profile.hub or profile.api_url:
        return
    named = {"broker": profile.broker != "embedded" and bool(profile.broker),
             "database": bool(profile.database)}
    missing = [key for key, ok in named.items() if not ok]
    if not missing:
        return
    examples = {"broker": 'broker = "mqtt://HOST:1883"',
                "database": 'database = "postgresql+psycopg://USER@HOST/DB"'}
    raise ConfigError(
        f"{config.path}: profile {config.profile_name!r} runs no hub of its own (hub = false) "
        f"but names no {' and no '.join(missing)}; add "
        f"{' and '.join(examples[k] for k in missing)} under [profiles.{config.profile_name}] "
        "(or give --broker/--database), or api_url = \"http://HUB:8080\" for a console that "
        "signs in to the team's hub (docs/team.md)")


TOP_LEVEL_KEYS = {"profile": str, "theme": str, "user": str, "role": str, "profiles": dict,
                  "registration": dict}
REGISTRATION_POLICY = re.compile(r"open|known-only|rate-limited(?: [1-9][0-9]{0,6}/min)?")

ENV_TOP = {
    "SMARTIOT_PROFILE": "profile",
    "SMARTIOT_THEME": "theme",
    "SMARTIOT_USER": "user",
    "SMARTIOT_ROLE": "role",
}
ENV_PROFILE = {f"SMARTIOT_{key.upper()}": key for key in PROFILE_KEYS}


def load_config(
    path: Path,
    data_dir: Path,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Read ``path`` (missing file = defaults), then apply env and flag overrides.

    ``overrides`` uses the same keys as the file: ``profile``, ``theme``,
    ``user`` or any profile key (applied to the active profile)."""
    env = os.environ if env is None else env
    raw = _read_toml(path)
    top: dict[str, Any] = {}
    registration: dict[str, str] = {}
    profiles = dict(BUILTIN_PROFILES)
    where = str(path)
    for key, value in raw.items():
        if key not in TOP_LEVEL_KEYS:
            _unknown(where, key, TOP_LEVEL_KEYS)
        if key == "profiles":
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{where}: 'profiles' must be a table of [profiles.NAME] sections"
                )
            for name, table in value.items():
                profiles[name] = _parse_profile(where, name, table, profiles.get(name))
        elif key == "registration":
            registration = _parse_registration(where, value)
        else:
            top[key] = _expect_str(where, key, value)

    for var, key in ENV_TOP.items():
        if var in env:
            top[key] = env[var]
    flag_top = {k: v for k, v in (overrides or {}).items() if k in ENV_TOP.values()}
    top.update({k: v for k, v in flag_top.items() if v is not None})

    profile_name = top.get("profile", "local")
    if profile_name not in profiles:
        raise ConfigError(
            f"{where}: profile {profile_name!r} is not defined; known profiles: "
            f"{', '.join(sorted(profiles))} (add a [profiles.{profile_name}] section)"
        )
    theme = top.get("theme", "light")
    if theme not in THEMES:
        raise ConfigError(f"{where}: key 'theme' must be one of {', '.join(THEMES)}, got {theme!r}")

    profile_over: dict[str, Any] = {}
    for var, key in ENV_PROFILE.items():
        if var in env:
            profile_over[key] = _coerce(f"environment variable {var}", key, env[var])
    for key, value in (overrides or {}).items():
        if value is None or key in ENV_TOP.values():
            continue
        if key not in PROFILE_KEYS:
            _unknown("command line", key, PROFILE_KEYS)
        profile_over[key] = value
    if profile_over:
        merged = dataclasses.replace(profiles[profile_name], **profile_over)
        _validate_profile("overrides", merged)
        profiles[profile_name] = merged

    user = top.get("user") or _login_name()
    role = top.get("role", "")
    if role:
        try:
            role = Role.parse(role).value
        except ValidationError as exc:
            raise ConfigError(f"{where}: key 'role': {exc}") from None
    return Config(path=path, data_dir=data_dir, profile_name=profile_name, profiles=profiles,
                  theme=theme, user=user, role=role, registration=registration)


def _parse_registration(where: str, table: Any) -> dict[str, str]:
    """``[registration]``: organization (or "*") = policy."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: 'registration' must be a table of organization = policy")
    policies: dict[str, str] = {}
    for org, policy in table.items():
        if org != "*" and not is_valid_device_id(org):
            raise ConfigError(f"{where}: registration: {org!r} is not an organization name")
        if not isinstance(policy, str) or REGISTRATION_POLICY.fullmatch(policy) is None:
            raise ConfigError(
                f"{where}: key 'registration.{org}' must be \"open\", \"known-only\" or "
                f"\"rate-limited N/min\", got {policy!r}")
        policies[org] = policy
    return policies


def _login_name() -> str:
    """The OS account, from the real user id (not ``LOGNAME``/``USER``): the default
    name must not itself be a claim someone else set in the environment."""
    from core.identity import os_account

    return os_account()


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror})") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _unknown(where: str, key: str, allowed: Mapping[str, Any]) -> None:
    if any(word in key.lower() for word in _SECRET_WORDS):
        raise ConfigError(
            f"{where}: key {key!r} looks like a secret; secrets are never kept in the config "
            f"file. Store it in the OS keyring with: smartiot secrets set {key}"
        )
    close = difflib.get_close_matches(key, list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"{where}: unknown key {key!r}{hint}; allowed keys: {', '.join(sorted(allowed))}"
    )


def _expect_str(where: str, key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: key {key!r} must be a string, got {value!r}")
    return value


def _coerce(where: str, key: str, value: str) -> Any:
    if PROFILE_KEYS[key] is bool:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    if PROFILE_KEYS[key] is int:
        try:
            return int(value.strip())
        except ValueError:
            raise ConfigError(f"{where}: {key} must be a whole number, got {value!r}") from None
    return value


def _parse_profile(where: str, name: str, table: Any, base: Profile | None) -> Profile:
    if PROFILE_NAME.fullmatch(name) is None:
        raise ConfigError(
            f"{where}: profile name {name!r} must be lower-case letters, digits and '-', "
            "starting with a letter"
        )
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [profiles.{name}] must be a table")
    values: dict[str, Any] = {}
    for key, value in table.items():
        full = f"profiles.{name}.{key}"
        if key not in PROFILE_KEYS:
            _unknown_profile_key(where, name, key)
        expected = PROFILE_KEYS[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            kind = {bool: "true or false", int: "a whole number"}.get(expected, "a string")
            raise ConfigError(f"{where}: key {full!r} must be {kind}, got {value!r}")
        values[key] = value
    default = base or (Profile(name, backend="aws") if name.startswith("aws-") else Profile(name))
    profile = dataclasses.replace(default, **values)
    _validate_profile(where, profile)
    return profile


def _unknown_profile_key(where: str, profile: str, key: str) -> None:
    if any(word in key.lower() for word in _SECRET_WORDS):
        raise ConfigError(
            f"{where}: key 'profiles.{profile}.{key}' looks like a secret; secrets are never kept "
            f"in the config file. Store it in the OS keyring with: "
            f"smartiot secrets set {profile}.{key}"
        )
    close = difflib.get_close_matches(key, list(PROFILE_KEYS), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(
        f"{where}: unknown key 'profiles.{profile}.{key}'{hint}; allowed keys: "
        f"{', '.join(sorted(PROFILE_KEYS))}"
    )


def _validate_profile(where: str, profile: Profile) -> None:
    prefix = f"{where}: key 'profiles.{profile.name}."
    if BACKEND_NAME.fullmatch(profile.backend) is None:
        raise ConfigError(
            f"{prefix}backend' must be the name of a backend plugin (lower-case letters, "
            f"digits, '-' or '_', e.g. local), got {profile.backend!r}"
        )
    if profile.broker not in ("embedded", "") and BROKER_URL.fullmatch(profile.broker) is None:
        raise ConfigError(
            f"{prefix}broker' must be 'embedded' or a URL like mqtt://host:1883 or "
            f"mqtts://host:8883, got {profile.broker!r}"
        )
    if profile.database and "://" not in profile.database:
        raise ConfigError(
            f"{prefix}database' must be empty (the built-in SQLite file) or a SQLAlchemy URL "
            f"such as postgresql://user@host/db, got {profile.database!r}"
        )
    if "@" in profile.database.split("://", 1)[-1].split("/", 1)[0] and ":" in (
        profile.database.split("://", 1)[-1].split("@", 1)[0]
    ):
        raise ConfigError(
            f"{prefix}database' contains a password; keep the URL without it and store the "
            f"password with: smartiot secrets set {profile.name}.database"
        )
    if profile.api_url == API_URL_FROM_STACK and profile.backend != "aws":
        raise ConfigError(
            f"{prefix}api_url' = \"{API_URL_FROM_STACK}\" (the stack's ServiceEndpoint) is for "
            f"an aws profile only; give the REST API's URL, like http://hub:8080")
    if profile.api_url and profile.api_url != API_URL_FROM_STACK \
            and API_URL.fullmatch(profile.api_url) is None:
        raise ConfigError(
            f"{prefix}api_url' must be empty or the REST API's URL, like http://hub:8080 or "
            f"https://abc.execute-api.eu-west-1.amazonaws.com/dev (or \"{API_URL_FROM_STACK}\" on "
            f"an aws profile: the stack's ServiceEndpoint), got {profile.api_url!r}"
        )
    if profile.backend == "aws" and not profile.region and not profile.endpoint_url:
        raise ConfigError(f"{prefix}region' is required for an aws profile (e.g. eu-west-1)")
    if AWS_STAGE.fullmatch(profile.stage) is None:
        raise ConfigError(
            f"{prefix}stage' must be 1-32 lower-case letters, digits or '-' (it names the "
            f"AWS resources, e.g. iot-devices-<stage>), got {profile.stage!r}")
    if profile.hub_receiver not in ("process", "thread"):
        raise ConfigError(
            f"{prefix}hub_receiver' must be \"process\" (telemetry received in a child "
            f"process) or \"thread\" (in the hub's process), got {profile.hub_receiver!r}")
    if profile.hub_process_above < 0:
        raise ConfigError(
            f"{prefix}hub_process_above' must be 0 (the hub stays in the console's process) "
            f"or a number of devices, got {profile.hub_process_above!r}")
    if profile.aws_retry_mode not in ("standard", "adaptive"):
        raise ConfigError(
            f"{prefix}aws_retry_mode' must be \"standard\" or \"adaptive\" (botocore's retry "
            f"modes), got {profile.aws_retry_mode!r}")
    if not 1 <= profile.aws_max_attempts <= 20:
        raise ConfigError(
            f"{prefix}aws_max_attempts' must be 1-20 (attempts per AWS request, the first "
            f"included), got {profile.aws_max_attempts!r}")
    if profile.endpoint_url and not profile.endpoint_url.startswith(("http://", "https://")):
        raise ConfigError(
            f"{prefix}endpoint_url' must be empty (AWS itself) or an http(s) URL such as "
            f"http://127.0.0.1:5000 (moto or `smartiot aws sandbox`), got "
            f"{profile.endpoint_url!r}")


def check_backend(config: Config, available: Iterable[str]) -> None:
    """The profile's backend must be provided by a loaded plugin.

    Checked where the plugins are known (start-up of the window, a command or
    the hub, and when the backend is built), not while reading the file: a
    third-party backend is as valid as the built-in ones, and `smartiot
    plugins` must still run to show why one is missing.
    """
    names = sorted(available)
    if config.profile.backend in names:
        return
    listed = ", ".join(names) or "none"
    raise ConfigError(
        f"profile {config.profile_name!r} uses backend {config.profile.backend!r}, but no "
        f"loaded plugin provides it (available: {listed}); see `smartiot plugins`"
    )


def config_to_toml(config: Config) -> str:
    """Serialise what differs from the built-in defaults.

    A small writer of our own keeps core free of third-party packages; the
    config holds only strings and booleans, which JSON's string escaping
    renders as valid TOML basic strings."""
    lines = [
        "# Smart IoT Fleet Console configuration. Secrets go in the OS keyring, never here.",
        f"profile = {_toml_value(config.profile_name)}",
        f"theme = {_toml_value(config.theme)}",
    ]
    if config.user and config.user != _login_name():
        lines.append(f"user = {_toml_value(config.user)}")
    if config.role:
        lines.append(f"role = {_toml_value(config.role)}")
    for name, profile in sorted(config.profiles.items()):
        base = BUILTIN_PROFILES.get(name) or (
            Profile(name, backend="aws") if name.startswith("aws-") else Profile(name)
        )
        changed = {
            key: getattr(profile, key)
            for key in PROFILE_KEYS
            if getattr(profile, key) != getattr(base, key)
        }
        if not changed and name in BUILTIN_PROFILES:
            continue
        lines.append("")
        lines.append(f"[profiles.{name}]")
        lines.extend(f"{key} = {_toml_value(value)}" for key, value in changed.items())
    return "\n".join(lines) + "\n"


def _toml_value(value: str | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def save_config(config: Config) -> None:
    """Write atomically so a crash mid-save never leaves a half-written file."""
    config.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = config.path.with_suffix(".toml.tmp")
    tmp.write_text(config_to_toml(config), encoding="utf-8")
    os.replace(tmp, config.path)
