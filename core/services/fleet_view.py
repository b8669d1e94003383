"""What people read about the fleet, limited to their organization (the
devices themselves, their history and shadow are core.services.devices'):
alerts, rules and deployments (the dashboard statistics and sensor queries
are core.services.analytics').

Reads need no permission (every role sees the fleet it works on) but they do
need a scope: an actor with an organization sees only that organization's
devices and what belongs to them, and a device of another organization is
answered as unknown rather than forbidden, so its id cannot be probed. An
actor without an organization (the single-user local console) sees all.

Pages are cut here, not in the front end, with an opaque ``next`` token, so
the REST API, the CLI and a future remote console page through the same
rows in the same order.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from core.errors import NotFound, ValidationError
from core.model import Device
from core.model.roles import Actor
from core.model.timeutil import utcnow
from core.ports.alerts import AlertStore
from core.ports.deployments import DeploymentService
from core.ports.hub import AlertRuleStore
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.ports.shadows import ShadowService
from core.ports.telemetry import TelemetryStore

T = TypeVar("T")

MAX_PAGE = 500
DEFAULT_PAGE = 50
MAX_QUERY_SPAN = timedelta(days=366)


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a listing; ``next`` is empty on the last page."""

    items: list[T]
    next: str = ""


def encode_token(offset: int, after: str = "") -> str:
    """``after``: the sort key of the page's last row, for listings that
    continue from it (keyset) rather than skip ``offset`` rows."""
    body: dict[str, object] = {"o": offset}
    if after:
        body["a"] = after
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[int, str]:
    """(offset, key of the last row read) a ``next`` token stands for; anything
    else is the caller's mistake and is named as such (a 400 naming ``next``)."""
    if not token:
        return 0, ""
    bad = ValidationError(f"next: {token[:40]!r} is not a token this server issued; "
                          "start again from the first page (no next)")
    try:
        padded = token + "=" * (-len(token) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
        offset, after = body["o"], body.get("a", "")
    except (ValueError, KeyError, TypeError, AttributeError):
        raise bad from None
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0 \
            or not isinstance(after, str):
        raise bad
    return offset, after


def decode_token(token: str) -> int:
    """The offset a ``next`` token stands for."""
    return decode_cursor(token)[0]


def _limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit: {limit} must be between 1 and {MAX_PAGE}")
    return limit


def _page(rows: Sequence[T], offset: int, limit: int) -> Page[T]:
    """``rows`` holds up to limit + 1 rows from ``offset``: one more tells
    whether there is a next page without counting the whole table."""
    items = list(rows[:limit])
    return Page(items, encode_token(offset + limit) if len(rows) > limit else "")


class FleetView:
    def __init__(self, registry: DeviceRegistry, alerts: AlertStore, telemetry: TelemetryStore,
                 *, deployments: DeploymentService | None = None,
                 rules: AlertRuleStore | None = None,
                 shadows: ShadowService | None = None,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._registry = registry
        self._alerts = alerts
        self._telemetry = telemetry
        self._deployments = deployments
        self._rules = rules
        self._shadows = shadows
        self._clock = clock

    # ------------------------------------------------------------------ scope
    @staticmethod
    def _orgs(actor: Actor) -> frozenset[str]:
        return frozenset({actor.organization}) if actor.organization else frozenset()

    def _visible(self, actor: Actor, device: Device | None) -> bool:
        return device is not None and (not actor.organization
                                       or device.organization == actor.organization)

    def device(self, actor: Actor, device_id: str) -> Device:
        """The device, or NotFound when it is unknown or outside the actor's organization."""
        device = self._registry.find(device_id)
        if device is None or not self._visible(actor, device):
            raise NotFound(f"device {device_id} is not registered")
        return device

    def _visible_ids(self, actor: Actor) -> set[str] | None:
        if not actor.organization:
            return None
        return {d.device_id for d in self._registry.list(DeviceQuery(
            organizations=self._orgs(actor)))}

    # Alerts and rules are read through core.services.alerting.service.AlertService,
    # with the same organization scope.


def _check_span(start: datetime, end: datetime) -> None:
    if start >= end:
        raise ValidationError(f"start: {start.isoformat()} must be before end {end.isoformat()}")
    if end - start > MAX_QUERY_SPAN:
        raise ValidationError("end: a query spans at most 366 days")


def _bucket_ms(bucket_s: float | None) -> int | None:
    if bucket_s is None:
        return None
    if not math.isfinite(bucket_s) or not 1 <= bucket_s <= 86400:
        raise ValidationError(f"bucket_s: {bucket_s} must be between 1 and 86400 seconds")
    return int(bucket_s * 1000)
