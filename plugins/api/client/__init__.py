"""The console's HTTP client of the REST API: one FleetApi implementation for
the hub's API (team set-up) and API Gateway (AWS). No Qt, no boto3."""

from plugins.api.client.errors import (
    Conflict,
    FieldError,
    HubUnreachable,
    NotOfferedOverApi,
    SignInRequired,
    SlowDown,
)
from plugins.api.client.fleet import HttpFleetApi
from plugins.api.client.tokens import TokenSession
from plugins.api.client.transport import StaticToken, TokenSource

__all__ = ["Conflict", "FieldError", "HttpFleetApi", "HubUnreachable", "NotOfferedOverApi",
           "SignInRequired", "SlowDown", "StaticToken", "TokenSession", "TokenSource"]
