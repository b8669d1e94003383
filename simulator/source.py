"""What the MQTT runtime needs from whatever produces the devices' data:
the seeded :class:`~simulator.fleet.Fleet` or a :class:`~simulator.replay.ReplaySource`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from core.protocol.payloads import Telemetry
from simulator.faults import Outgoing


class FleetSource(Protocol):
    size: int
    start_s: float
    last_rebooted: NDArray[np.int64]

    def tick(self, t_s: float) -> list[tuple[int, Telemetry]]: ...

    def apply_message_faults(self, t_s: float, messages: Sequence[Outgoing]) -> list[Outgoing]: ...

    def flush(self, t_s: float) -> list[Outgoing]: ...

    def offline_mask(self) -> NDArray[np.bool_]: ...

    def device_info(self, index: int) -> tuple[str, str, str, str]: ...

    def set_interval(self, index: int, seconds: float) -> None: ...

    def interval(self, index: int) -> float: ...

    def reboot(self, index: int, t_s: float | None = None) -> None: ...

    def apply_setpoints(self, index: int, setpoints: Mapping[str, Any]) -> None: ...

    def uptime_s(self, index: int, t_s: float) -> int: ...


def shard_indexes(source: FleetSource, shard: tuple[int, int]) -> list[int]:
    """The device indexes shard ``(i, n)`` runs. The seeded fleet deals whole
    blocks of devices (:meth:`~simulator.fleet.Fleet.shard_indexes`) so a shard
    computes only its own devices; any other source deals devices round-robin.
    The runtime and the CLI (which adds and keys the shard's devices on an
    embedded broker) both ask here, so they always agree."""
    i, n = shard
    if not 1 <= i <= n:
        raise ValueError(f"shard {i}/{n} must satisfy 1 <= i <= n")
    by_blocks = getattr(source, "shard_indexes", None)
    mine = list(by_blocks(i, n)) if callable(by_blocks) else list(range(i - 1, source.size, n))
    if not mine and n > 1:
        raise ValueError(f"shard {i}/{n} gets no devices: the fleet of {source.size} "
                         f"device(s) splits into fewer than {n} parts; use fewer shards")
    return mine
