"""Builds the audit use case for the CLI and the page from the application context."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import cast

from core.context import AppContext
from core.identity import is_one_process
from core.ports.audit import AuditReader
from core.services.audit import AuditService
from core.store.audit_anchor import HUB_INTERVAL_S

_DURATION = re.compile(r"(\d+)([smhd])")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def audit_service(context: AppContext) -> AuditService:
    """Where every append signs its own checkpoint, nothing may wait for one;
    a team console allows the hub's interval twice over."""
    grace = (timedelta(0) if is_one_process(context.config.profile)
             else timedelta(seconds=2 * HUB_INTERVAL_S))
    trail = context.backend.audit
    reader = cast(AuditReader, trail) if hasattr(trail, "check") else None
    return AuditService(reader, grace=grace)


def parse_since(text: str, *, now: datetime | None = None) -> datetime:
    """``30m``, ``2h``, ``7d`` (that long ago) or an ISO date/time (local time
    unless it says otherwise)."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if parts and "".join(n + u for n, u in parts) == cleaned:
        seconds = sum(int(n) * _UNIT_S[u] for n, u in parts)
        return (now or datetime.now(UTC)) - timedelta(seconds=seconds)
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 2h, 7d) nor a date "
                         "(2026-12-01 or 2026-12-01T08:00)") from None
    return when.astimezone(UTC)  # a naive time is taken as local time
