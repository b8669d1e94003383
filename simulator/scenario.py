"""Scenario files: TOML that says which devices to simulate and what goes wrong when.

Errors name the file, the line and the key (``office.toml:14: groups[1].count:
must be a whole number >= 0, got "ten"``), because QA edit these by hand and
a traceback helps nobody. tomllib reports no line numbers for keys, so a small
scan of the text maps each (table, key) to its line.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from core.errors import ValidationError
from simulator.faults import ALL_FAULTS, FaultPlan
from simulator.fleet import DeviceGroup, Fleet
from simulator.models import BUILTIN_MODELS, SensorModel
from simulator.ota.faults import FAULT_KEYS as OTA_FAULT_KEYS
from simulator.ota.faults import OtaConfig, OtaConfigError, OtaFaults

SCENARIO_KEYS = {"name", "description", "seed", "duration_s", "speed"}
GROUP_KEYS = {"name", "model", "count", "org", "firmware", "interval_s", "id_prefix",
              "device_type", "params", "ota"}
FAULT_KEYS = {"kind", "group", "fraction", "devices", "start_s", "duration_s", "params"}
MAX_DEVICES = 100_000


class ScenarioError(ValidationError):
    """An invalid scenario; the message starts with ``file:line:``."""


@dataclass(frozen=True)
class Scenario:
    name: str
    groups: tuple[DeviceGroup, ...]
    faults: FaultPlan = field(default_factory=FaultPlan)
    description: str = ""
    seed: int = 0
    duration_s: float | None = None
    speed: float = 1.0
    source: str = "<built>"
    ota: OtaConfig = field(default_factory=OtaConfig)

    @property
    def device_count(self) -> int:
        return sum(g.count for g in self.groups)

    def build_fleet(self, *, seed: int | None = None, start_s: float = 0.0,
                    models: Mapping[str, type[SensorModel]] | None = None,
                    trusted_keys: Sequence[bytes | str] = (),
                    ota_faults: OtaFaults | None = None,
                    trusted_key_paths: Sequence[Path] = ()) -> Fleet:
        """``trusted_keys`` (PEM) are provisioned in addition to the scenario's, and
        ``trusted_key_paths`` (key files or directories, re-read by the devices);
        ``ota_faults`` replaces the scenario's fleet-wide OTA faults."""
        ota = self.ota.with_keys(trusted_keys, trusted_key_paths)
        if ota_faults is not None:
            ota = OtaConfig(ota.trusted_keys, ota_faults, ota.trusted_key_paths)
        try:
            return Fleet(self.groups, seed=self.seed if seed is None else seed,
                         start_s=start_s, faults=self.faults, models=models, ota=ota)
        except ValidationError as exc:
            raise ScenarioError(f"{self.source}: {exc}") from None


def single_group(count: int, model: str, *, interval_s: float = 1.0, org: str = "demo",
                 firmware: str = "1.0.0",
                 models: Mapping[str, type[SensorModel]] | None = None) -> Scenario:
    """``smartiot simulate --devices N --type T`` without a file."""
    known = BUILTIN_MODELS if models is None else models
    if model not in known:
        raise ScenarioError(
            f"--type {model!r} is not a sensor model; known: {', '.join(sorted(known))}"
        )
    if not 0 < count <= MAX_DEVICES:
        raise ScenarioError(f"--devices {count} must be between 1 and {MAX_DEVICES}")
    prefix = {"environmental": "env", "power_meter": "meter", "pump": "pump",
              "tracker": "trk"}.get(model, model)
    group = DeviceGroup(prefix, model, count, org=org, firmware=firmware,
                        interval_s=interval_s, id_prefix=prefix)
    return Scenario(name=f"{count} x {model}", groups=(group,), source="command line")


# ------------------------------------------------------------------ line lookup
_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*(\"[^\"]+\"|[A-Za-z0-9_\-]+)\s*=")


def _key_lines(text: str) -> dict[tuple[Any, ...], int]:
    """Map (table path..., key) and table paths to 1-based line numbers."""
    lines: dict[tuple[Any, ...], int] = {}
    counters: dict[str, int] = {}
    table: tuple[Any, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            name = header.group(2).replace('"', "").strip()
            parts = name.split(".")
            if header.group(1) == "[[":
                counters[name] = counters.get(name, -1) + 1
                table = (parts[0], counters[name], *parts[1:])
            elif len(parts) > 1 and parts[0] in counters:
                table = (parts[0], counters[parts[0]], *parts[1:])
            else:
                table = tuple(parts)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            lines.setdefault((*table, key.group(1).strip('"')), number)
    return lines


class _Reader:
    def __init__(self, path: str, text: str) -> None:
        self.path = path
        self.lines = _key_lines(text)

    def fail(self, where: tuple[Any, ...], message: str) -> ScenarioError:
        line = None
        probe = where
        while probe and line is None:
            line = self.lines.get(probe)
            probe = probe[:-1]
        label = ".".join(f"[{p}]" if isinstance(p, int) else p for p in where).replace(".[", "[")
        prefix = f"{self.path}:{line}" if line else self.path
        return ScenarioError(f"{prefix}: {label}: {message}" if label else f"{prefix}: {message}")

    def unknown(self, table: Mapping[str, Any], allowed: set[str], where: tuple[Any, ...]) -> None:
        for key in table:
            if key not in allowed:
                raise self.fail((*where, key),
                                f"unknown key; allowed: {', '.join(sorted(allowed))}")

    def number(self, table: Mapping[str, Any], key: str, where: tuple[Any, ...], *,
               default: float | None = None, minimum: float = 0.0, positive: bool = False,
               whole: bool = False) -> Any:
        if key not in table:
            return default
        value = table[key]
        kind = "a whole number" if whole else "a number"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            raise self.fail((*where, key), f"must be {kind}, got {value!r}")
        if value < minimum or (positive and value <= 0):
            bound = f"> {minimum:g}" if positive else f">= {minimum:g}"
            raise self.fail((*where, key), f"must be {kind} {bound}, got {value!r}")
        return value

    def text(self, table: Mapping[str, Any], key: str, where: tuple[Any, ...], *,
             default: str | None = None) -> Any:
        if key not in table:
            if default is None:
                raise self.fail(where, f"{key!r} is required")
            return default
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.fail((*where, key), f"must be non-empty text, got {value!r}")
        return value


def load_scenario(path: str | Path,
                  models: Mapping[str, type[SensorModel]] | None = None) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ScenarioError(f"{path}: scenario file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc}") from None
    return parse_scenario(text, str(path), models, base_dir=path.parent)


def parse_scenario(text: str, source: str = "<scenario>",
                   models: Mapping[str, type[SensorModel]] | None = None,
                   base_dir: Path | None = None) -> Scenario:
    """``base_dir`` resolves relative ``[ota] trusted_key_files``."""
    known = BUILTIN_MODELS if models is None else models
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        location = f"{source}:{match.group(1)}" if match else source
        raise ScenarioError(f"{location}: not valid TOML: {exc}") from None
    r = _Reader(source, text)
    r.unknown(data, SCENARIO_KEYS | {"groups", "faults", "ota"}, ())
    name = r.text(data, "name", ())
    raw_groups = data.get("groups")
    if not isinstance(raw_groups, list) or not raw_groups:
        raise r.fail((), "a scenario needs at least one [[groups]] entry")
    groups = []
    total = 0
    for i, g in enumerate(raw_groups):
        where: tuple[Any, ...] = ("groups", i)
        r.unknown(g, GROUP_KEYS, where)
        model = r.text(g, "model", where)
        if model not in known:
            raise r.fail((*where, "model"), f"unknown sensor model {model!r}; known: "
                         f"{', '.join(sorted(known))}")
        count = r.number(g, "count", where, whole=True)
        if count is None:
            raise r.fail(where, "'count' is required")
        total += count
        params = g.get("params", {})
        if not isinstance(params, dict):
            raise r.fail((*where, "params"), "must be a table")
        group_ota = _ota_faults(r, g.get("ota"), (*where, "ota"))
        try:
            group = DeviceGroup(
                name=r.text(g, "name", where),
                model_name=model,
                count=count,
                org=r.text(g, "org", where, default="demo"),
                device_type=g.get("device_type"),
                firmware=r.text(g, "firmware", where, default="1.0.0"),
                interval_s=float(r.number(g, "interval_s", where, default=10.0, positive=True)),
                params=params,
                id_prefix=g.get("id_prefix"),
                ota=group_ota,
            )
        except ValidationError as exc:
            raise r.fail(where, str(exc)) from None
        try:  # the model checks its own parameters
            Fleet([replace(group, count=min(group.count, 1))], models=known)
        except ValidationError as exc:
            raise r.fail((*where, "params") if params else where, str(exc)) from None
        groups.append(group)
    if total > MAX_DEVICES:
        raise r.fail(("groups",), f"{total} devices in all; the limit is {MAX_DEVICES}")

    raw_faults = data.get("faults", [])
    if not isinstance(raw_faults, list):
        raise r.fail(("faults",), "must be a list of [[faults]] entries")
    group_names = {g.name for g in groups}
    for i, f in enumerate(raw_faults):
        where = ("faults", i)
        r.unknown(f, FAULT_KEYS, where)
        if f.get("kind") not in ALL_FAULTS:
            raise r.fail((*where, "kind"), f"unknown fault kind {f.get('kind')!r}; known: "
                         f"{', '.join(sorted(ALL_FAULTS))}")
        if f.get("group") is not None and f["group"] not in group_names:
            raise r.fail((*where, "group"), f"no group named {f['group']!r}; groups: "
                         f"{', '.join(sorted(group_names))}")
        try:
            FaultPlan.from_dicts([f])
        except (ValidationError, TypeError) as exc:
            raise r.fail(where, str(exc)) from None
    faults = FaultPlan.from_dicts(raw_faults)

    scenario = Scenario(
        name=name,
        groups=tuple(groups),
        faults=faults,
        description=str(data.get("description", "")),
        seed=int(r.number(data, "seed", (), default=0, whole=True)),
        duration_s=r.number(data, "duration_s", (), positive=True),
        speed=float(r.number(data, "speed", (), default=1.0, positive=True)),
        source=source,
        ota=_ota_config(r, data.get("ota"), base_dir),
    )
    # Let the fleet check what only it can (model parameters, fault metrics).
    scenario.build_fleet(models=known)
    return scenario


def _ota_config(r: _Reader, table: Any, base_dir: Path | None) -> OtaConfig:
    """The scenario's ``[ota]`` table: trusted keys and fleet-wide fault knobs."""
    if table is None:
        return OtaConfig()
    if not isinstance(table, dict):
        raise r.fail(("ota",), "must be a table")
    try:
        return OtaConfig.from_table(table, base_dir)
    except OtaConfigError as exc:
        raise r.fail(("ota", *exc.key), exc.detail) from None


def _ota_faults(r: _Reader, table: Any, where: tuple[Any, ...]) -> OtaFaults | None:
    """A group's ``[groups.ota]``: fault knobs for its devices (keys are fleet-wide)."""
    if table is None:
        return None
    if not isinstance(table, dict):
        raise r.fail(where, "must be a table")
    r.unknown(table, set(OTA_FAULT_KEYS), where)
    try:
        return OtaFaults.from_table(table)
    except OtaConfigError as exc:
        raise r.fail((*where, *exc.key), exc.detail) from None
