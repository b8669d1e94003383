"""How much a broker keeps for the hub while the hub is away.

Telemetry is QoS 0 (docs/protocol.md). An MQTT broker keeps nothing at QoS 0
for a subscriber that is offline, so a hub restart lost everything the fleet
sent meanwhile. mosquitto's ``queue_qos0_messages`` makes it queue QoS 0 for
*persistent* sessions too, and the hub has one (a stable client id, no clean
start): the hub then finds an outage's worth waiting when it comes back and
stores it. Consoles use clean sessions, so nothing is queued for them.

The queue is per client; ``max_queued_messages`` is written sized for the
fleet, for brokers that count queued QoS 0 messages against it. Measured on
mosquitto 2.0.11 (tests/integration/hub/test_hub_restart.py): it does *not*
count them (240 queued QoS 0 messages came through a limit of 30), so there
the queue is bounded only by the broker's memory; and once a small
``max_queued_bytes`` had been reached, QoS 0 delivery to the reconnected hub
stopped after 100 messages for good. So ``max_queued_bytes`` is never
written: a stalled hub is worse than a broker using memory for an outage.
``HubQueue(0, ...)`` is a broker that queues nothing (mosquitto's default).
The hub books the seq gaps a lost queue leaves as its own loss (``hub_lost``
in the link statistics), not the devices'. The count is sized for the fleet:
every message it sends during ``outage_s``, plus a quarter for bursts, and
at least ten times mosquitto's default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# mosquitto 2.0.11 (Debian 12's) loses a few messages as it moves a session's
# queue into flight after a reconnect once the queue is longer than
# ``max_inflight_messages``: with 100, a hub away for 4 s beside 70 devices
# found 8 of its ~250 queued messages never sent (the broker's own log: received
# from the device, delivered to other subscribers, never to the hub's session;
# upstream issue eclipse-mosquitto/mosquitto#2349, inflight fixes in 2.0.13).
# Without a broker-side limit the whole queue goes into flight at once, bounded
# by each client's MQTT 5 Receive Maximum (65,535 for the hub), and nothing is
# lost (tests/e2e/test_walk_local_processes.py: a console's hub moved mid-stream).
MAX_INFLIGHT_LINE = "max_inflight_messages 0"
# A telemetry message is ~300 bytes of JSON; mosquitto counts payload bytes.
MESSAGE_BYTES = 512
MIN_QUEUED_MESSAGES = 10_000
DEFAULT_OUTAGE_S = 600.0
DEFAULT_INTERVAL_S = 5.0


@dataclass(frozen=True, slots=True)
class HubQueue:
    """The broker-side queue the hub's session may fill while the hub is away."""

    messages: int
    outage_s: float

    @property
    def memory_bytes(self) -> int:
        """What a full queue holds, at about MESSAGE_BYTES a message."""
        return self.messages * MESSAGE_BYTES

    def conf_lines(self) -> list[str]:
        """mosquitto.conf lines (they apply to every persistent session; devices
        receive little, and consoles' clean sessions queue nothing)."""
        if self.messages <= 0:
            return ["queue_qos0_messages false", "max_queued_messages 1000"]
        return [
            "# The hub's persistent session queues telemetry (QoS 0) while the hub",
            f"# is away: sized for {self.outage_s / 60:g} min of the fleet "
            "(docs/reliability.md).",
            "queue_qos0_messages true",
            f"max_queued_messages {self.messages}",
            "# no max_queued_bytes: mosquitto 2.0.11 stalls QoS 0 delivery after one",
            "# was reached (simulator/broker_queue.py)",
        ]

    def describe(self) -> str:
        return (f"the broker queues up to {self.messages:,} messages "
                f"(~{self.memory_bytes / 1e6:,.0f} MB) for the hub while it is away, "
                f"about {self.outage_s / 60:g} min of the fleet")


def hub_queue(devices: int, *, interval_s: float = DEFAULT_INTERVAL_S,
              outage_s: float = DEFAULT_OUTAGE_S) -> HubQueue:
    """The queue for ``devices`` reporting every ``interval_s`` seconds to last
    an ``outage_s`` hub outage. Bad values raise ValueError naming the option."""
    if devices < 0:
        raise ValueError(f"devices must be 0 or more, not {devices}")
    if not interval_s > 0 or not math.isfinite(interval_s):
        raise ValueError(f"the reporting interval must be a positive number of seconds, "
                         f"not {interval_s}")
    if not outage_s > 0 or not math.isfinite(outage_s):
        raise ValueError(f"the hub outage to cover must be a positive number of seconds, "
                         f"not {outage_s}")
    messages = max(MIN_QUEUED_MESSAGES, math.ceil(devices * outage_s / interval_s * 1.25))
    return HubQueue(messages, outage_s)
