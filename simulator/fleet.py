"""A fleet of simulated devices: groups of vectorised models, schedules, seq counters.

The fleet is pure and deterministic: it never sleeps, never touches the
network and takes the simulated time from its caller.  The MQTT runtime
drives :meth:`Fleet.tick` from its clock, reads :meth:`Fleet.offline_mask` to
disconnect sessions, passes encoded publishes through
:meth:`Fleet.apply_message_faults` and publishes the result; ``generate`` does
the same headless.  Same seed, groups, faults, start time and tick times give
byte-identical payloads.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from core.errors import ValidationError
from core.model.ids import validate_device_id
from core.protocol.payloads import Telemetry, TelemetryRows, json_str
from core.protocol.topics import telemetry_topic
from simulator.faults import (
    MESSAGE_FAULTS,
    FaultPlan,
    FaultSpec,
    Outgoing,
    Reorderer,
    ResolvedFault,
    ValueFaultInjector,
    duplicate,
    loss,
    malformed,
)
from simulator.models import BUILTIN_MODELS, Battery, Radio, SensorModel
from simulator.models.base import BoolArray
from simulator.ota.faults import OtaConfig, OtaFaults

# Child streams of a group's SeedSequence; fault masks use 1000 + fault index.
_MODEL, _BATTERY, _RADIO, _VALUE_FAULTS, _SCHEDULE = range(5)
MAX_BOOT_AGE_S = 30 * 86_400.0  # devices were switched on up to a month before the run
_MESSAGES = 5  # child stream of a block for its message faults
# A group is cut into blocks, the unit a shard steps (see _Block): at least
# MIN_BLOCKS of them (so up to 8 shards get devices of any group) of at most
# BLOCK_SIZE devices (a block costs ~0.1 ms of numpy calls per tick whatever its
# size). Derived from the group alone, never from the shard count, so every
# split of the fleet computes the same numbers.
BLOCK_SIZE = 500
MIN_BLOCKS = 8


@dataclass(frozen=True)
class DeviceGroup:
    """``count`` devices of one model.  Group parameters go to the model, except
    ``battery_capacity_mah``, ``battery_current_ma`` and ``radio_distance_m`` which
    tune the shared battery and radio."""

    name: str
    model_name: str
    count: int
    org: str = "demo"
    device_type: str | None = None     # None: the model's device_type
    firmware: str = "1.0.0"
    interval_s: float = 10.0
    params: Mapping[str, Any] = field(default_factory=dict)
    id_prefix: str | None = None       # None: the group name
    ota: OtaFaults | None = None       # None: the fleet's OTA faults

    @property
    def prefix(self) -> str:
        return self.id_prefix or self.name


_SHARED_KEYS = {"battery_capacity_mah": "capacity_mah", "battery_current_ma": "current_ma",
                "radio_distance_m": "median_distance_m"}


class _Due(NamedTuple):
    """One group's devices that publish in a tick: indexes in the group, their seq
    and uptime, and the group's readings (all devices, by metric)."""

    send: NDArray[np.int64]
    seqs: NDArray[np.int64]
    uptimes: NDArray[np.int64]
    values: Mapping[str, NDArray[np.float64]]


class _Block:
    """Consecutive devices of a group with their own models
    and random streams (keyed by the block's position, not by who runs it).

    A shard steps only the blocks holding its devices, and because nothing a
    block draws depends on another block, it computes the same bytes for them
    as one process running the whole fleet. One model for the whole group
    would make a shard step every device to keep the random streams aligned."""

    def __init__(self, lo: int, hi: int, cls: type[SensorModel],
                 model_params: Mapping[str, Any], shared: Mapping[str, float],
                 rng: Any) -> None:
        self.lo, self.hi, n = lo, hi, hi - lo
        self.model: SensorModel = cls(n, rng(_MODEL), model_params)
        self.battery = Battery(n, rng(_BATTERY),
                               capacity_mah=shared.get("capacity_mah",
                                                       cls.battery_defaults["capacity_mah"]),
                               current_ma=shared.get("current_ma",
                                                     cls.battery_defaults["current_ma"]))
        radio_distance = shared.get("median_distance_m", cls.radio_defaults["median_distance_m"])
        self.radio = Radio(n, rng(_RADIO), median_distance_m=radio_distance,
                           gain_db=cls.radio_defaults["gain_db"])
        self.injector = ValueFaultInjector(n, cls.metrics, rng(_VALUE_FAULTS))
        self.msg_rng: np.random.Generator = rng(_MESSAGES)
        self.stepped = True   # False: another shard runs every device of the block

    def step(self, t_s: float, dt: float, elapsed: float, active: list[ResolvedFault],
             drain: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
        lo, hi = self.lo, self.hi
        self.battery.drain_factor = drain[lo:hi]
        values = self.model.step(t_s, dt)
        values.update(self.battery.step(dt))
        values.update(self.radio.step(dt, self.model.radio_distance_m()))
        return self.injector.apply(values, elapsed,
                                   [f._replace(mask=f.mask[lo:hi]) for f in active])


class _GroupState:
    def __init__(self, index: int, group: DeviceGroup, offset: int, seed: int,
                 start_s: float, models: Mapping[str, type[SensorModel]]) -> None:
        if group.model_name not in models:
            raise ValidationError(
                f"group {group.name!r}: unknown model {group.model_name!r}; "
                f"known: {', '.join(sorted(models))}"
            )
        if isinstance(group.count, bool) or not isinstance(group.count, int) or group.count < 0:
            raise ValidationError(f"group {group.name!r}: count {group.count!r} must be >= 0")
        if not group.interval_s > 0:
            raise ValidationError(f"group {group.name!r}: interval_s must be > 0")
        self.index, self.group, self.offset, self.n = index, group, offset, group.count
        key = (index, zlib.crc32(group.name.encode()))

        def rng(k: int) -> np.random.Generator:
            return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(*key, k)))

        cls = models[group.model_name]
        self.model_cls = cls
        self.block_size = min(BLOCK_SIZE, max(1, math.ceil(self.n / MIN_BLOCKS)))
        model_params = {k: v for k, v in group.params.items() if k not in _SHARED_KEYS}
        shared = {_SHARED_KEYS[k]: float(v) for k, v in group.params.items() if k in _SHARED_KEYS}
        self.blocks = [
            _Block(lo, min(lo + self.block_size, self.n), cls, model_params, shared,
                   lambda k, b=b: np.random.default_rng(
                       np.random.SeedSequence(seed, spawn_key=(*key, k, b))))
            for b, lo in enumerate(range(0, self.n, self.block_size))
        ]
        self.names = (*cls.metrics, "battery_pct", "battery_v", "rssi")
        sched = rng(_SCHEDULE)
        self.interval = np.full(self.n, float(group.interval_s))
        # per-device phase: 10,000 devices must not all publish on the same instant
        self.next_due = start_s + sched.uniform(0.0, 1.0, self.n) * self.interval
        self.boot_t = start_s - sched.uniform(0.0, MAX_BOOT_AGE_S, self.n)
        self.seq = np.zeros(self.n, dtype=np.int64)
        self.ids = [f"{group.prefix}-{i:05d}" for i in range(self.n)]
        for device_id in self.ids[:1] + self.ids[-1:]:
            validate_device_id(device_id)
        self.device_type = group.device_type or cls.device_type
        # The version each device runs: the group's until an OTA update changes it.
        self.firmware = [group.firmware] * self.n
        # The same as JSON strings, for the batch encoder (tick_messages).
        self.ids_json: NDArray[np.bytes_] = np.array(
            [json_str(d).encode() for d in self.ids], dtype=np.bytes_)
        firmware = json_str(group.firmware).encode()
        self.firmware_json: NDArray[np.bytes_] = np.full(self.n, firmware,
                                                         dtype=f"S{len(firmware)}")
        self.rows: TelemetryRows | None = (
            TelemetryRows(self.names) if all(type(k) is str for k in self.names) else None)
        self.fired: set[int] = set()   # one-shot faults already applied


class Fleet:
    """All simulated devices.  Device indexes are global: group after group, in order."""

    def __init__(self, groups: Sequence[DeviceGroup], seed: int = 0, start_s: float = 0.0,
                 faults: FaultPlan | None = None,
                 models: Mapping[str, type[SensorModel]] | None = None,
                 ota: OtaConfig | None = None) -> None:
        """``models`` maps model names to classes: the built-ins plus those that
        plugins register through ``smartiot_register_sensor_models``; ``ota`` holds
        the code-signing keys devices trust and the OTA fault knobs."""
        models = BUILTIN_MODELS if models is None else models
        names = [g.name for g in groups]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValidationError(f"group name(s) used twice: {', '.join(dupes)}")
        prefixes = [g.prefix for g in groups]
        if len(set(prefixes)) != len(prefixes):
            raise ValidationError("two groups share an id_prefix; device ids would collide")
        self.seed, self.start_s = int(seed), float(start_s)
        self.faults = faults or FaultPlan()
        self.ota = ota or OtaConfig()
        self.groups: list[_GroupState] = []
        offset = 0
        for i, g in enumerate(groups):
            self.groups.append(_GroupState(i, g, offset, self.seed, self.start_s, models))
            offset += g.count
        self.size = offset
        self._check_faults()
        self.device_ids: list[str] = [d for gs in self.groups for d in gs.ids]
        self._group_of = np.repeat(np.arange(len(self.groups)), [gs.n for gs in self.groups])
        self._last_t = self.start_s
        self._offline = np.zeros(self.size, dtype=bool)
        self.last_rebooted: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._blocks = [block for gs in self.groups for block in gs.blocks]
        self._block_of = np.repeat(np.arange(len(self._blocks)),
                                   [block.hi - block.lo for block in self._blocks])
        # Keyed by (fault position, block): see apply_message_faults.
        self._reorderers: dict[tuple[int, int], Reorderer] = {}
        self._burst_held: dict[tuple[int, int], list[Outgoing]] = {}
        self._masks: dict[int, BoolArray] = {}
        self._owned: BoolArray | None = None

    def begin_at(self, start_s: float) -> None:
        """Start at ``start_s`` instead of the time the fleet was built for,
        before its first tick: every device's schedule and boot time move with
        it, so the fleet is the same, later (a live run whose devices took a
        while to connect; see ``FleetRuntime``'s ``live``)."""
        shift = float(start_s) - self.start_s
        self.start_s += shift
        self._last_t += shift
        for gs in self.groups:
            gs.next_due += shift
            gs.boot_t += shift

    @property
    def owned(self) -> BoolArray | None:
        """Devices this process publishes for (``--shard``), None for all. Only
        the blocks holding one of them are stepped; set it before the first tick
        (a block left out has not advanced and cannot join later)."""
        return self._owned

    @owned.setter
    def owned(self, mask: BoolArray | None) -> None:
        self._owned = None if mask is None else np.asarray(mask, dtype=bool)
        for gs in self.groups:
            for block in gs.blocks:
                block.stepped = self._owned is None or bool(
                    self._owned[gs.offset + block.lo:gs.offset + block.hi].any())

    def shard_indexes(self, shard: int, shards: int) -> list[int]:
        """Devices of shard ``shard`` of ``shards`` (1-based): whole blocks, dealt
        round-robin over the fleet's blocks in order, so a shard steps only its
        own devices. With more shards than blocks, some shards get none."""
        if not 1 <= shard <= shards:
            raise ValidationError(f"shard {shard}/{shards} must satisfy 1 <= i <= n")
        out: list[int] = []
        k = 0
        for gs in self.groups:
            for block in gs.blocks:
                if k % shards == shard - 1:
                    out.extend(range(gs.offset + block.lo, gs.offset + block.hi))
                k += 1
        return out

    # ------------------------------------------------------------ set-up checks
    def _check_faults(self) -> None:
        names = {gs.group.name: gs for gs in self.groups}
        for spec in self.faults.specs:
            if spec.group is not None and spec.group not in names:
                raise ValidationError(f"fault {spec.kind!r}: unknown group {spec.group!r}; "
                                      f"groups: {', '.join(names)}")
            targets = [names[spec.group]] if spec.group else list(self.groups)
            metrics = spec.params.get("metrics")
            if metrics:
                known = {m for gs in targets for m in gs.names}
                bad = sorted(set(metrics) - known)
                if bad:
                    raise ValidationError(f"fault {spec.kind!r}: unknown metric {bad[0]!r}")
            if spec.kind == "bearing_failure" and spec.group is not None and not hasattr(
                names[spec.group].model_cls, "start_bearing_failure"
            ):
                raise ValidationError(
                    f"fault 'bearing_failure': group {spec.group!r} has no bearings "
                    f"(model {names[spec.group].group.model_name!r})"
                )

    def _global_mask(self, fault_index: int) -> BoolArray:
        cached = self._masks.get(fault_index)
        if cached is not None:
            return cached
        mask = np.zeros(self.size, dtype=bool)
        for gs in self.groups:
            for f in self.faults.resolve(gs.group.name, gs.n, self.seed):
                if f.position == fault_index:
                    mask[gs.offset:gs.offset + gs.n] = f.mask
        self._masks[fault_index] = mask
        return mask

    # ------------------------------------------------------------ lookups
    def locate(self, device_index: int) -> tuple[_GroupState, int]:
        if not 0 <= device_index < self.size:
            raise ValidationError(f"device index {device_index} is outside 0..{self.size - 1}")
        gs = self.groups[int(self._group_of[device_index])]
        return gs, device_index - gs.offset

    def topic(self, device_index: int) -> str:
        gs, local = self.locate(device_index)
        return telemetry_topic(gs.group.org, gs.ids[local])

    def org(self, device_index: int) -> str:
        return self.locate(device_index)[0].group.org

    @property
    def min_interval_s(self) -> float:
        """The fastest reporting interval now in force (sets the runtime's tick)."""
        return min((float(gs.interval.min()) for gs in self.groups if gs.n), default=1.0)

    def device_info(self, device_index: int) -> tuple[str, str, str, str]:
        """(device id, organization, device type, firmware) for sessions and reports."""
        gs, local = self.locate(device_index)
        return gs.ids[local], gs.group.org, gs.device_type, gs.firmware[local]

    def set_firmware(self, device_index: int, version: str) -> None:
        """The image a device booted (OTA): telemetry and status report it from now on."""
        gs, local = self.locate(device_index)
        gs.firmware[local] = version
        encoded = json_str(version).encode()
        if len(encoded) > gs.firmware_json.itemsize:  # a bytes_ array would truncate it
            gs.firmware_json = gs.firmware_json.astype(f"S{len(encoded)}")
        gs.firmware_json[local] = encoded

    def ota_faults(self, device_index: int) -> OtaFaults:
        group = self.locate(device_index)[0].group
        return group.ota if group.ota is not None else self.ota.faults

    def uptime_s(self, device_index: int, t_s: float) -> int:
        gs, local = self.locate(device_index)
        return max(0, math.floor(t_s - float(gs.boot_t[local])))

    # ------------------------------------------------------------ runtime control
    def inject(self, kind: str, params: Mapping[str, Any] | None = None, *,
               duration_s: float | None = None, fraction: float | None = None,
               devices: Sequence[int] | None = None, group: str | None = None,
               delay_s: float = 0.0) -> FaultSpec:
        """Add a fault while the fleet runs (QA poking a live system): it starts
        ``delay_s`` after the latest tick. Appending keeps every earlier fault's
        position, so device selection and per-fault state are undisturbed."""
        elapsed = self._last_t - self.start_s
        spec = FaultSpec(kind, dict(params or {}), start_s=max(0.0, elapsed + delay_s),
                         duration_s=duration_s, fraction=fraction, devices=devices,
                         group=group)
        candidate = FaultPlan((*self.faults.specs, spec))
        previous, self.faults = self.faults, candidate
        try:
            self._check_faults()
        except ValidationError:
            self.faults = previous
            raise
        return spec

    def set_interval(self, device_index: int, seconds: float) -> None:
        """Change one device's reporting interval (``set-interval`` command, shadow);
        the next report is due ``seconds`` after the last tick."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0:
            raise ValidationError(f"interval {seconds!r} must be a number of seconds > 0")
        gs, local = self.locate(device_index)
        gs.interval[local] = float(seconds)
        gs.next_due[local] = self._last_t + float(seconds)

    def interval(self, device_index: int) -> float:
        gs, local = self.locate(device_index)
        return float(gs.interval[local])

    def reboot(self, device_index: int, t_s: float | None = None) -> None:
        """Reboot one device (``reboot`` command): seq and uptime restart from 0."""
        gs, local = self.locate(device_index)
        gs.seq[local] = 0
        gs.boot_t[local] = self._last_t if t_s is None else t_s

    def apply_setpoints(self, device_index: int, setpoints: Mapping[str, Any]) -> None:
        """Shadow desired state for one device (keys: see the model's docstring)."""
        gs, local = self.locate(device_index)
        block = gs.blocks[local // gs.block_size]
        mask = np.zeros(block.hi - block.lo, dtype=bool)
        mask[local - block.lo] = True
        block.model.apply_setpoints(mask, setpoints)

    def offline_mask(self) -> BoolArray:
        """Devices that are disconnected as of the last tick (drop, flap, empty battery);
        the runtime closes their sessions (Last Will) and reconnects when this clears."""
        return self._offline.copy()

    # ------------------------------------------------------------ simulation
    def _connection(self, gs: _GroupState, t_s: float, elapsed: float,
                    active: list[ResolvedFault]
                    ) -> tuple[BoolArray, BoolArray, NDArray[np.float64]]:
        offline = np.zeros(gs.n, dtype=bool)
        rebooted = np.zeros(gs.n, dtype=bool)
        drain = np.ones(gs.n)
        for f in active:
            kind, params = f.spec.kind, f.spec.params
            if kind == "drop":
                offline |= f.mask
            elif kind == "flap":
                phase = (elapsed - f.spec.start_s) % params["period_s"]
                if phase < params["down_s"]:
                    offline |= f.mask
            elif kind == "battery_depletion":
                drain = np.where(f.mask, params["factor"], drain)
            elif kind in ("reboot", "bearing_failure") and f.position not in gs.fired:
                gs.fired.add(f.position)
                if kind == "reboot":
                    rebooted |= f.mask
                elif hasattr(gs.model_cls, "start_bearing_failure"):
                    for block in gs.blocks:
                        block.model.start_bearing_failure(  # type: ignore[attr-defined]
                            f.mask[block.lo:block.hi], params["time_to_failure_s"])
        gs.seq[rebooted] = 0
        gs.boot_t[rebooted] = t_s
        return offline, rebooted, drain

    def _advance(self, t_s: float) -> Iterator[tuple[_GroupState, _Due]]:
        """Advance every device to sim time ``t_s``; per group with messages to build,
        the devices that send now and their readings (what :meth:`tick` and
        :meth:`tick_messages` turn into payloads)."""
        dt = t_s - self._last_t
        if dt < 0:
            raise ValidationError(f"tick time {t_s} is before the previous tick {self._last_t}")
        elapsed = t_s - self.start_s
        rebooted_all = []
        for gs in self.groups:
            if gs.n == 0:
                continue
            active = self.faults.active(elapsed, gs.group.name, gs.n, self.seed)
            offline, rebooted, drain = self._connection(gs, t_s, elapsed, active)
            if len(gs.blocks) == 1 and gs.blocks[0].stepped:
                block = gs.blocks[0]
                values = block.step(t_s, dt, elapsed, active, drain)
                offline |= block.battery.depleted
            else:
                values = {}
                for block in gs.blocks:
                    if not block.stepped:
                        continue
                    for m, v in block.step(t_s, dt, elapsed, active, drain).items():
                        if m not in values:  # rows of blocks not stepped are never read
                            values[m] = np.zeros(gs.n, dtype=v.dtype)
                        values[m][block.lo:block.hi] = v
                    offline[block.lo:block.hi] |= block.battery.depleted
            self._offline[gs.offset:gs.offset + gs.n] = offline
            rebooted_all.append(np.flatnonzero(rebooted) + gs.offset)

            due = gs.next_due <= t_s + 1e-9
            idx = np.flatnonzero(due)
            if idx.size == 0:
                continue
            late = np.floor((t_s - gs.next_due[idx]) / gs.interval[idx]) + 1.0
            gs.next_due[idx] += late * gs.interval[idx]
            seqs = gs.seq[idx]
            gs.seq[idx] += 1
            keep = ~offline[idx]
            if self.owned is not None:
                keep &= self.owned[gs.offset + idx]
            send = idx[keep]
            if send.size == 0:
                continue
            # A reboot command stamps its boot with the latest tick's time, which
            # can be after the time of a tick still being sent: uptime 0, never -1
            # (which the hub quarantines as out of range).
            uptimes = np.maximum(np.floor(t_s - gs.boot_t[send]), 0).astype(np.int64)
            yield gs, _Due(send, seqs[keep], uptimes, values)
        self.last_rebooted = (np.concatenate(rebooted_all) if rebooted_all
                              else np.zeros(0, dtype=np.int64))
        self._last_t = t_s

    def tick(self, t_s: float) -> list[tuple[int, Telemetry]]:
        """Advance every device to sim time ``t_s`` and return the telemetry of the
        devices due now (global index, message), in index order.

        Devices that are offline (drop/flap/empty battery) still sample and count
        ``seq`` but their readings are lost, so the hub sees the gap."""
        ts_ms = round(t_s * 1000)
        out: list[tuple[int, Telemetry]] = []
        for gs, due in self._advance(t_s):
            out.extend(self._telemetry(gs, due, ts_ms))
        return out

    @staticmethod
    def _telemetry(gs: _GroupState, due: _Due, ts_ms: int,
                   rows: list[int] | None = None) -> Iterator[tuple[int, Telemetry]]:
        """``Telemetry`` for the given positions in ``due.send`` (all by default):
        the reference path."""
        send, seq_a, up_a = due.send, due.seqs, due.uptimes
        if rows is not None:
            pick = np.asarray(rows, dtype=np.int64)
            send, seq_a, up_a = send[pick], seq_a[pick], up_a[pick]
        seqs, uptimes = seq_a.tolist(), up_a.tolist()
        values = np.column_stack([due.values[m][send] for m in gs.names]).tolist()
        names, dtype, fw, ids, base = gs.names, gs.device_type, gs.firmware, gs.ids, gs.offset
        return (
            (base + i, Telemetry(ids[i], s, ts_ms, dict(zip(names, row, strict=True)),
                                 dtype, fw[i], up))
            for i, s, row, up in zip(send.tolist(), seqs, values, uptimes, strict=True)
        )

    def tick_messages(self, t_s: float) -> list[Outgoing]:
        """:meth:`tick` with the payloads encoded, as the runtime publishes them: the
        same bytes as ``Telemetry.encode`` of each message, but a group's messages are
        written together (:class:`~core.protocol.payloads.TelemetryRows`) instead of
        through a dict and a ``Telemetry`` each. Rows with values the batch cannot
        write (NaN, inf, huge or tiny, from faults) take ``Telemetry.encode``."""
        ts_ms = round(t_s * 1000)
        out: list[Outgoing] = []
        new = tuple.__new__
        for gs, due in self._advance(t_s):
            send = due.send
            encoder = gs.rows
            columns = [] if encoder is None else [due.values[m][send] for m in encoder.names]
            if encoder is None or not all(c.dtype == np.float64 for c in columns):
                out.extend(new(Outgoing, (t_s, i, m.encode()))
                           for i, m in self._telemetry(gs, due, ts_ms))
                continue
            indexes = (send + gs.offset).tolist()
            payloads = encoder.encode(ts_ms, gs.device_type, gs.ids_json[send], due.seqs,
                                      gs.firmware_json[send], columns, due.uptimes)
            if None in payloads:  # values only Telemetry.encode writes (faults, mostly)
                bad = [k for k, p in enumerate(payloads) if p is None]
                for k, (_i, message) in zip(bad, self._telemetry(gs, due, ts_ms, bad),
                                            strict=True):
                    payloads[k] = message.encode()
            out.extend(map(new, repeat(Outgoing), zip(repeat(t_s), indexes, payloads)))
        return out

    def apply_message_faults(self, t_s: float, messages: Sequence[Outgoing]) -> list[Outgoing]:
        """Pass one tick's encoded publishes through the active message faults
        (in plan order); burst and reorder hold messages across ticks.

        Each block of devices draws from its own stream and keeps its own held
        messages, so which messages a fault hits does not depend on which other
        devices run in the same process (``--shard``)."""
        if not any(spec.kind in MESSAGE_FAULTS for spec in self.faults.specs):
            return list(messages)
        by_block: dict[int, list[Outgoing]] = {}
        block_of = self._block_of
        for m in messages:
            by_block.setdefault(int(block_of[m.device]), []).append(m)
        waiting = {b for (_i, b), held in self._burst_held.items() if held}
        waiting.update(b for (_i, b), r in self._reorderers.items() if r.holding)
        out: list[Outgoing] = []
        for b in sorted(by_block.keys() | waiting):
            out.extend(self._block_message_faults(t_s, b, by_block.get(b, [])))
        return out

    def _block_message_faults(self, t_s: float, b: int, msgs: list[Outgoing]
                              ) -> list[Outgoing]:
        elapsed = t_s - self.start_s
        rng = self._blocks[b].msg_rng
        for i, spec in enumerate(self.faults.specs):
            if spec.kind not in MESSAGE_FAULTS:
                continue
            mask = self._global_mask(i)
            params = spec.params
            if spec.kind == "burst":
                held = self._burst_held.setdefault((i, b), [])
                if spec.is_active(elapsed):
                    held.extend(m for m in msgs if mask[m.device])
                    msgs = [m for m in msgs if not mask[m.device]]
                elif held:
                    msgs = [m._replace(t_s=t_s) for m in held] + msgs
                    held.clear()
                continue
            if spec.kind == "reorder":
                r = self._reorderers.get((i, b))
                if r is None:
                    r = self._reorderers[(i, b)] = Reorderer(params["p"], params["window"],
                                                             rng, mask)
                # outside the window the reorderer only releases what it holds
                r.p = params["p"] if spec.is_active(elapsed) else 0.0
                msgs = r.feed(msgs)
                continue
            if not spec.is_active(elapsed):
                continue
            if spec.kind == "loss":
                msgs = loss(msgs, params["p"], rng, mask)
            elif spec.kind == "duplicate":
                msgs = duplicate(msgs, params["p"], rng, mask)
            else:
                msgs = malformed(msgs, params["p"], rng, mask)
        return msgs

    def flush(self, t_s: float) -> list[Outgoing]:
        """Release messages still held by burst/reorder (end of a run)."""
        out = [m._replace(t_s=t_s) for _key, held in sorted(self._burst_held.items())
               for m in held]
        self._burst_held.clear()
        for _key, r in sorted(self._reorderers.items(), key=lambda kv: kv[0]):
            out.extend(r.flush(t_s))
        return out

    def generate(self, duration_s: float, step_s: float = 1.0
                 ) -> Iterator[tuple[float, int, bytes]]:
        """Headless run: (publish time, device index, payload) for ``duration_s``
        seconds of sim time ticked every ``step_s``, message faults applied."""
        if not step_s > 0:
            raise ValidationError(f"step_s {step_s!r} must be > 0")
        steps = math.ceil(duration_s / step_s)
        t = self.start_s
        for k in range(steps):
            t = self.start_s + k * step_s
            yield from self.apply_message_faults(t, self.tick_messages(t))
        yield from self.flush(t)

