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
