"""``smartiot simulate``: a seeded, fault-injecting fleet over real MQTT.

Prints a live progress line and, at the end (duration reached or Ctrl-C), a
summary per device type. An unreachable broker is a message and a retry with
jittered backoff, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from core.errors import SmartIotError, ValidationError
from core.secrets import env_name
from simulator.broker import BrokerError, EmbeddedBroker, login_works
from simulator.broker_auth import CONSOLE_PASSWORD, FLEET_SECRET, device_password, stored_secret
from simulator.local_brokers import console_broker, find_local_broker
from simulator.models import BUILTIN_MODELS, SensorModel
from simulator.presence import check_ids_free, with_id_prefix
from simulator.replay import ReplaySource
from simulator.runtime import FleetRuntime, RuntimeStats
from simulator.scenario import Scenario, load_scenario, single_group
from simulator.source import FleetSource, shard_indexes
from simulator.target import BrokerTarget

log = logging.getLogger(__name__)

BUNDLED = ("demo", "office", "factory", "trackers", "chaos", "ota_lab")


def configure(parser: argparse.ArgumentParser) -> None:
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--scenario", help=f"scenario file, or a bundled one: {', '.join(BUNDLED)}")
    what.add_argument("--devices", type=int, help="simulate N devices of --type")
    what.add_argument("--replay", metavar="CSV",
                      help="publish recorded readings (device_id,metric,ts,value or "
                      "device_id,ts,<metric>...) re-timestamped to --start")
    parser.add_argument("--type", default="environmental",
                        help="sensor model for --devices (default: environmental)")
    parser.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    parser.add_argument("--start", help="simulated start time, ISO 8601 or epoch seconds "
                        "(default: now); with --seed it makes runs byte-identical")
    parser.add_argument("--duration", type=float, help="simulated seconds to run (default: "
                        "until Ctrl-C)")
    parser.add_argument("--rate", type=float,
                        help="messages per second per device (overrides the intervals)")
    parser.add_argument("--speed", type=float, help="simulated seconds per real second")
    parser.add_argument("--broker", help="mqtt://host:port or mqtts://host:port, or 'console' "
                        "for the embedded broker of the console running on this machine "
                        "(default: the profile's broker; on the embedded profile, start an "
                        "embedded broker)")
    parser.add_argument("--ca", help="CA certificate for mqtts")
    parser.add_argument("--cert", help="client certificate for mqtts (AWS IoT Core)")
    parser.add_argument("--key", help="client private key for mqtts")
    parser.add_argument("--username", help="one broker user for every device; the password "
                        "comes from the secret 'broker.password'. Without it each device logs "
                        "in as itself when the secret 'broker.fleet_secret' is set "
                        "(see `smartiot broker config`)")
    parser.add_argument("--anonymous", action="store_true",
                        help="connect to --broker without credentials (only for a broker that "
                        "allows anonymous clients); without it a missing secret is an error")
    parser.add_argument("--id-prefix", default="", metavar="PREFIX",
                        help="put PREFIX before every device id (qa- makes qa-office-00000): "
                        "a fleet of its own next to devices already on the broker")
    parser.add_argument("--take-over", action="store_true",
                        help="connect even when device ids of this run are online on --broker "
                        "already, replacing those devices' sessions")
    parser.add_argument("--shard", default="1/1", help="run shard i of n, e.g. 2/4")
    parser.add_argument("--qos", type=int, choices=(0, 1), default=0,
                        help="QoS for telemetry (default 0; status, shadow, commands use 1)")
    parser.add_argument("--connect-rate", type=float, default=1000.0,
                        help="new connections per second (default 1000)")
    parser.add_argument("--org", default="demo", help="organization for --devices")
    parser.add_argument("--trusted-key", action="append", default=[], metavar="PEM",
                        help="code-signing public key (PEM file) the devices trust for OTA "
                        "updates; repeat for several")


def parse_start(value: str | None) -> float:
    if value is None:
        return float(int(time.time()))
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(
            f"--start {value!r} is neither epoch seconds nor an ISO 8601 time "
            "(e.g. 2026-11-26T08:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def parse_shard(value: str) -> tuple[int, int]:
    try:
        i, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise ValidationError(f"--shard {value!r} must look like 2/4") from None
    if not 1 <= i <= n:
        raise ValidationError(f"--shard {value}: need 1 <= i <= n")
    return i, n


def profile_broker(context: Any) -> str | None:
    """The active profile's broker, so `smartiot --profile lab simulate` feeds the
    team's broker rather than a private one nobody else sees; None (start an
    embedded broker) on a profile whose broker is the embedded one."""
    profile = getattr(getattr(context, "config", None), "profile", None)
    broker = getattr(profile, "broker", "") or ""
    return broker if broker and broker != "embedded" else None


def resolve_scenario(args: argparse.Namespace,
                     models: Mapping[str, type[SensorModel]]) -> Scenario:
    if args.devices is not None:
        interval = 1.0 / args.rate if args.rate else 1.0
        return with_id_prefix(single_group(args.devices, args.type, interval_s=interval,
                                           org=args.org, models=models), args.id_prefix)
    name = args.scenario or "office"
    path = Path(name)
    if not path.exists() and name in BUNDLED:
        path = Path(str(resources.files("resources") / "scenarios" / f"{name}.toml"))
    scenario = load_scenario(path, models)
    if args.rate:
        groups = tuple(replace(g, interval_s=1.0 / args.rate) for g in scenario.groups)
        scenario = replace(scenario, groups=groups)
    return with_id_prefix(scenario, args.id_prefix)


def _device_logins(target: BrokerTarget, device_ids: list[str]) -> str | None:
    """The fleet secret the devices derive their passwords from: a console's
    embedded broker on this machine (same OS user) gets the devices added to
    its password file with a secret made for this run; otherwise the team
    broker's, from the secret store (`smartiot broker config`)."""
    local = find_local_broker(target.host, target.port)
    if local is None:
        secret, why = _secret_or_reason(FLEET_SECRET)
        if secret is None:
            raise ValidationError(
                f"no credentials for the devices on {target.url}: the secret {FLEET_SECRET!r} "
                f"is not set ({why}). Set it with `smartiot secrets set {FLEET_SECRET}` or the "
                f"environment variable {env_name(FLEET_SECRET)} (the team broker's fleet "
                "secret, see `smartiot broker config`), give --username or --cert, or pass "
                "--anonymous for a broker that allows anonymous clients")
        return secret
    secret = local.add_devices(device_ids)
    last = device_ids[-1] if device_ids else None
    if last and not login_works(target.host, target.port, last,
                                device_password(secret, last), timeout_s=10):
        raise BrokerError(f"the embedded broker at {target.url} did not accept the new devices")
    print(f"added {len(device_ids):,} devices to the embedded {local.kind} broker at "
          f"{target.url}", file=sys.stderr)
    return secret


def _secret(name: str) -> str | None:
    return _secret_or_reason(name)[0]


def _secret_or_reason(name: str) -> tuple[str | None, str]:
    """The secret, or None and why (for the error that names it)."""
    try:
        value = stored_secret(name)
    except SmartIotError as exc:
        log.warning("cannot read %s from the secret store: %s", name, exc)
        return None, f"the secret store cannot be read: {exc}"
    return value, "" if value else "neither in the secret store nor in the environment"


class Progress:
    """One line that rewrites itself on a terminal, a line every 10 s in a log."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = total
        self.tty = stream.isatty()
        self._last_published = 0
        self._last_t = 0.0
        self._last_line = -10.0

    def __call__(self, stats: RuntimeStats, elapsed: float) -> None:
        rate = (stats.published - self._last_published) / max(elapsed - self._last_t, 1e-9)
        self._last_published, self._last_t = stats.published, elapsed
        line = (f"[{elapsed:7.1f}s] connected {stats.connected:,}/{self.total:,}  "
                f"{rate:,.0f} msg/s  sent {stats.published:,}  errors {stats.connect_errors:,}")
        if stats.last_error and stats.connected < self.total:
            line += f"  last error: {stats.last_error} (retrying with backoff)"
        if self.tty:
            self.stream.write("\r" + line[:200].ljust(120))
            self.stream.flush()
        elif elapsed - self._last_line >= 10:
            self.stream.write(line + "\n")
            self._last_line = elapsed

    def done(self) -> None:
        if self.tty:
            self.stream.write("\n")


def summary(stats: RuntimeStats, elapsed: float, name: str) -> str:
    lines = [f"scenario {name}: {elapsed:.1f} s, {stats.published:,} publishes, "
             f"{stats.produced:,} readings generated"]
    if stats.all_connected_after_s is not None:
        lines.append(f"all devices connected after {stats.all_connected_after_s:.1f} s")
    lines.append(f"{'type':<16}{'devices':>9}{'sent':>12}{'dropped':>10}{'reconnects':>12}")
    for name, t in sorted(stats.by_type.items()):
        lines.append(f"{name:<16}{t.devices:>9,}{t.sent:>12,}{t.dropped:>10,}{t.reconnects:>12,}")
    if stats.connect_errors:
        lines.append(f"connection errors: {stats.connect_errors:,} (last: {stats.last_error})")
    return "\n".join(lines)


def run(args: argparse.Namespace, context: Any) -> int:
    models: dict[str, type[SensorModel]] = dict(BUILTIN_MODELS)
    if context is not None:
        for spec in context.plugins.sensor_models().values():
            if isinstance(spec.factory, type) and issubclass(spec.factory, SensorModel):
                models.setdefault(spec.model_name, spec.factory)
    try:
        start_s = parse_start(args.start)
        shard = parse_shard(args.shard)
        source: FleetSource
        if args.replay:
            if args.id_prefix:
                raise ValidationError("--id-prefix works with --scenario and --devices; a "
                                      "--replay publishes the devices its recording names")
            replay = ReplaySource(args.replay, start_s=start_s, org=args.org)
            source, name, seed = replay, f"replay of {args.replay}", args.seed or 0
            speed = args.speed or 1.0
            duration = args.duration if args.duration is not None else replay.duration_s + 1.0
        else:
            scenario = resolve_scenario(args, models)
            name = scenario.name
            seed = args.seed if args.seed is not None else scenario.seed
            speed = args.speed or scenario.speed
            duration = args.duration if args.duration is not None else scenario.duration_s
            keys = [Path(p).read_bytes() for p in args.trusted_key]
            source = scenario.build_fleet(seed=seed, start_s=start_s, models=models,
                                          trusted_keys=keys)
        if speed <= 0:
            raise ValidationError("--speed must be positive")
        broker: EmbeddedBroker | None = None
        if args.broker == "console":  # its port changes at every start
            args.broker = console_broker()
        elif not args.broker:
            args.broker = profile_broker(context)
        # This shard's devices only: another shard adds (and keys) its own.
        device_ids = [source.device_info(i)[0] for i in shard_indexes(source, shard)]
        if args.broker and args.anonymous:
            if args.username or args.cert:
                raise ValidationError("--anonymous takes no --username or --cert")
            target = BrokerTarget.parse(args.broker, ca_file=args.ca)
            print(f"connecting to {target.url} without credentials (--anonymous)",
                  file=sys.stderr)
            check_ids_free(target, device_ids, take_over=args.take_over)
        elif args.broker:
            password = None
            if args.username:
                password, why = _secret_or_reason(CONSOLE_PASSWORD)
                if password is None:
                    raise ValidationError(
                        f"--username {args.username} needs a password: the secret "
                        f"{CONSOLE_PASSWORD!r} is not set ({why}). Set it with `smartiot "
                        f"secrets set {CONSOLE_PASSWORD}` or the environment variable "
                        f"{env_name(CONSOLE_PASSWORD)}")
            # Never quietly without credentials: a fleet that connects anonymously
            # to a broker that allows it would publish as nobody in particular.
            target = BrokerTarget.parse(args.broker, ca_file=args.ca, cert_file=args.cert,
                                        key_file=args.key, username=args.username,
                                        password=password)
            # Before the devices are added: re-keying an online device's login
            # would lock it out at its next reconnect.
            check_ids_free(target, device_ids, take_over=args.take_over,
                           can_read=bool(args.username))
            if not (args.username or args.cert):
                target = replace(target, fleet_secret=_device_logins(target, device_ids))
        else:
            broker = EmbeddedBroker(devices=device_ids).start()
            target = BrokerTarget.parse(broker.url, fleet_secret=broker.fleet_secret)
            print(f"started embedded {broker.kind} broker at {broker.url}", file=sys.stderr)
    except (ValidationError, BrokerError, OSError) as exc:
        print(f"smartiot simulate: {exc}", file=sys.stderr)
        return 2
    try:
        runtime = FleetRuntime(source, target, speed=speed, telemetry_qos=args.qos,
                               connect_rate=args.connect_rate, shard=shard, seed=seed,
                               live=args.start is None)
        total = len(runtime.sessions)
        print(f"simulating {total:,} devices ({name}, seed {seed}, shard "
              f"{shard[0]}/{shard[1]}) against {target.url}", file=sys.stderr)
        progress = Progress(sys.stderr, total)

        def interrupt(signum: int, frame: FrameType | None) -> None:
            runtime.stop()

        previous = signal.signal(signal.SIGINT, interrupt)
        signal.signal(signal.SIGTERM, interrupt)
        began = time.monotonic()
        try:
            stats = runtime.run(duration, progress=progress)
        finally:
            signal.signal(signal.SIGINT, previous)
            progress.done()
        print(summary(stats, time.monotonic() - began, name))
        return 0
    finally:
        if broker is not None:
            broker.stop()
