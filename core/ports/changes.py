"""Change tokens: a cheap answer to "did anything in X change since I looked?".

Pages must show what the hub, another console or a one-shot CLI command
changed, and those writers share nothing with this process but the store.
A backend that can answer cheaply offers ``ChangeTokens``; a watcher
(``core.services.change_feed``) compares them every couple of seconds and
publishes a ``changes`` event per topic that moved, and pages reload then.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping

# Topics a backend reports; pages subscribe to the ones they show.
ALERTS = "alerts"
RULES = "rules"
FIRMWARE = "firmware"
DEPLOYMENTS = "deployments"  # deployments and their per-device executions
DEVICES = "devices"
TOPICS = (ALERTS, RULES, FIRMWARE, DEPLOYMENTS, DEVICES)


class ChangeTokens(ABC):
    @abstractmethod
    def tokens(self) -> Mapping[str, str]:
        """An opaque token per topic that differs whenever the topic's data did
        (a row added, changed or removed). Must be cheap: it runs every 2 s."""
