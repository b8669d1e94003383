"""The devices use cases as a front end sees them (see core.ports.fleet_api)."""

from __future__ import annotations

from typing import Protocol


class DevicesApi(Protocol):
    """Filled in with one method per use case; no Actor parameter."""
