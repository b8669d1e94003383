"""The aws backend's live feed for a console working through the REST API
(an aws profile with an ``api_url``): built once the person's Cognito
session exists, started at once (it waits for a sign-in by itself)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from core.context import AppContext
from core.errors import NotFound, SmartIotError
from core.model import Device
from plugins.aws.live.credentials import IdentityPoolCredentials
from plugins.aws.live.feed import IotLiveFeed

log = logging.getLogger(__name__)

DEVICE_CACHE_S = 30.0


class ApiDevices:
    """A device's record for status messages, through the REST API (the
    console holds no AWS keys that could read DynamoDB), kept briefly."""

    def __init__(self, context: AppContext) -> None:
        self._context = context
        self._cache: dict[str, tuple[float, Device | None]] = {}
        self._lock = threading.Lock()

    def __call__(self, device_id: str) -> Device | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(device_id)
        if hit is not None and now - hit[0] < DEVICE_CACHE_S:
            return hit[1]
        try:
            device: Device | None = self._context.api.devices.get(device_id)
        except NotFound:
            device = None
        except SmartIotError as exc:
            log.info("device %s not looked up through the API: %s", device_id, exc)
            return None
        with self._lock:
            self._cache[device_id] = (now, device)
        return device


def console_live_feed(context: AppContext) -> IotLiveFeed | None:
    """None when the profile's session is not a Cognito one (nothing to sign with)."""
    from plugins.aws.console_access.endpoints import resolve
    from plugins.aws.console_access.session import CognitoSession

    session: Any = getattr(context.remote, "provider", None)
    if not isinstance(session, CognitoSession):
        return None
    # the session was set up first, so a sandbox it started has written its state file
    endpoints = resolve(context.config.profile, context.config.data_dir)
    pool = session.pool
    credentials = IdentityPoolCredentials(
        endpoints.identity_pool_id, pool.region, pool.user_pool_id, session.access_token,
        endpoint_url=endpoints.endpoint_url)

    def organization() -> str:
        actor = session.actor
        return actor.organization if actor is not None else ""

    feed = IotLiveFeed(endpoints.iot_endpoint, pool.region, credentials,
                       organization=organization, find_device=ApiDevices(context))
    return feed.start()
