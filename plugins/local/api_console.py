"""The local backend of a console that works through the REST API (a
profile's ``api_url``): no database, no hub, only the live feed.

The database belongs to the hub (issue 16): such a console reads and changes
data through ``context.api`` (the HTTP client), and follows the devices on
the team's broker as any team console does (TeamObserver), with the person's
own broker login from the sign-in where the hub hands one out. The observer's
two look-ups (a device's record when its status changes, alerts changed
lately) go through the same API instead of a store.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any, cast

from core.context import AppContext
from core.errors import SmartIotError
from core.model import Alert
from core.ports.alerts import AlertQuery, AlertStore
from core.ports.backend import Backend
from core.ports.registry import DeviceRegistry
from core.ports.telemetry import TelemetryStore
from core.services.device_lookup import CachedDeviceLookup
from core.services.event_bus import EventBus

log = logging.getLogger(__name__)

ALERT_PAGE = 200  # newest alerts read per poll; older ones changing are seen on reload


class _NoStore:
    """Stands where a store would be: any use says where the data lives instead."""

    def __init__(self, api_url: str) -> None:
        self._api_url = api_url

    def __getattr__(self, name: str) -> Any:
        raise SmartIotError(f"this console works through the hub's API at {self._api_url} "
                            "and opens no database; use context.api")


class ApiAlertChanges:
    """``list(AlertQuery(changed_since=...))`` for the observer's poll."""

    def __init__(self, context: AppContext) -> None:
        self._context = context

    def list(self, query: AlertQuery) -> list[Alert]:
        page = self._context.api.alerts.list_alerts(limit=ALERT_PAGE)
        since = query.changed_since
        return [a for a in page.items if since is None or a.updated_at >= since]


class ApiConsoleBackend(Backend):
    def __init__(self, api_url: str, bus: EventBus) -> None:
        nothing = _NoStore(api_url)
        super().__init__(name="local", registry=cast(DeviceRegistry, nothing),
                         alerts=cast(AlertStore, nothing),
                         telemetry=cast(TelemetryStore, nothing), live=bus)
        self.bus = bus
        self.observer: Any = None

    def close(self) -> None:
        if self.observer is not None:
            try:
                self.observer.stop()
            except Exception:
                log.exception("stopping the live feed failed")


def build_api_console_backend(context: AppContext, *, live: bool) -> ApiConsoleBackend:
    from plugins.local.backend import _broker_address, _team_logins
    from plugins.local.hub.mqtt_link import MqttLink
    from plugins.local.hub.observer import TeamObserver

    profile = context.config.profile
    backend = ApiConsoleBackend(profile.api_url, EventBus())
    if not live:
        return backend
    # The person's own broker account from the sign-in (limited by their role on
    # the broker itself), else the profile's broker and the console's login.
    remote = context.remote
    person = remote.broker_login() if remote is not None else None
    if person is not None:
        broker_url: str = person.url
        console_login: tuple[str | None, str | None] = (person.username, person.password)
    elif profile.broker != "embedded":
        broker_url = profile.broker
        _hub_login, console_login = _team_logins(context)
    else:
        return backend  # no team broker named: pages work, nothing moves by itself
    host, port, tls = _broker_address(broker_url)
    tls_context = None
    if tls:
        import ssl

        tls_context = ssl.create_default_context()

    def link(filters: Any, on_message: Any) -> MqttLink:
        return MqttLink(host, port, client_id=f"smartiot-console-{uuid.uuid4().hex[:8]}",
                        filters=filters, on_message=on_message, tls_context=tls_context,
                        username=console_login[0], password=console_login[1])

    try:
        backend.observer = TeamObserver(link, backend.bus,
                                        cast(DeviceRegistry, CachedDeviceLookup(context)),
                                        cast(AlertStore, ApiAlertChanges(context)))
        backend.observer.start()
    except Exception:
        backend.close()
        raise
    return backend
