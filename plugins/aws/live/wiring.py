"""The aws backend's live feed for a console working through the REST API
(an aws profile with an ``api_url``): built once the person's Cognito
session exists, started at once (it waits for a sign-in by itself)."""

from __future__ import annotations

import logging
from typing import Any

from core.context import AppContext
from core.services.device_lookup import CachedDeviceLookup
from plugins.aws.live.credentials import IdentityPoolCredentials, IotAccessRoute
from plugins.aws.live.feed import IotLiveFeed

log = logging.getLogger(__name__)

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
    # the identity, with the stage's IoT policy attached, from the API: once per person
    access = IotAccessRoute(session.api_url or endpoints.api_url)
    credentials = IdentityPoolCredentials(
        endpoints.identity_pool_id, pool.region, pool.user_pool_id, session.access_token,
        endpoint_url=endpoints.endpoint_url, access=access)

    def organization() -> str:
        actor = session.actor
        return actor.organization if actor is not None else ""

    feed = IotLiveFeed(endpoints.iot_endpoint, pool.region, credentials,
                       organization=organization, find_device=CachedDeviceLookup(context))
    # a sign-in (the dialog, or by itself once Cognito answers again): connect now
    session.on_signed_in(lambda _actor: feed.wake())
    return feed.start()
