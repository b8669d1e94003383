"""``POST /me/iot-access``: lets a signed-in console use IoT Core.

IoT Core checks two policies for a connection made with Cognito identity
credentials: the identity pool role's IAM policy (serverless.yml's
``ConsoleRole``) and an IoT policy attached to the caller's Cognito identity.
An authenticated identity has no IoT policy until someone attaches one, and
IoT Core refuses its connection until then. AWS's guidance for authenticated
identities is a backend call with ``iot:AttachPolicy`` (the console holds no
AWS keys that could do it, and must not), so the API does it once per person:

1. the caller's identity id comes from the identity pool itself: GetId with the
   caller's own ID token as the login (the token the authorizer verified).
   A caller can therefore only ever get access for the identity that token
   maps to; an ``identity_id`` in the body is only compared with it (403 when
   it differs), never used;
2. AttachPolicy of the stage's ``iot-console-{stage}`` policy to that identity.
   Attaching a policy already attached changes nothing, so a second sign-in,
   another machine or a retry are all fine.

The answer is the identity id; the console asks the identity pool for
credentials of exactly that identity and connects as ``<identity id>-<console>``
(the policy's ``client/${cognito-identity.amazonaws.com:sub}-*``).

The identity of a person never changes in a pool, so it is kept per container
(keyed on the token's verified ``sub``) and GetId runs once per person and
container.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import BaseModel, ConfigDict, Field

from core.errors import ConfigError, PermissionDenied
from core.model.roles import Actor

log = logging.getLogger(__name__)

PATH = "/me/iot-access"
KEEP_IDENTITIES = 10_000  # people per container whose identity id is kept


def console_policy_name(stage: str) -> str:
    """serverless.yml's ``custom.consoleIotPolicy``."""
    return f"iot-console-{stage}"


def login_provider(region: str, user_pool_id: str) -> str:
    """The identity pool's name for the user pool as a login provider."""
    return f"cognito-idp.{region}.amazonaws.com/{user_pool_id}"


@dataclass(frozen=True, slots=True)
class IotAccess:
    identity_id: str
    policy_name: str


class ConsoleIotAccess:
    """``iot``: a boto3 ``iot`` client; ``identity``: a ``cognito-identity`` one."""

    def __init__(self, iot: Any, identity: Any, *, identity_pool_id: str, region: str,
                 user_pool_id: str, policy_name: str) -> None:
        if not identity_pool_id or not user_pool_id:
            raise ConfigError("IoT access for consoles needs the stage's identity pool and "
                              "user pool (SMARTIOT_IDENTITY_POOL_ID, SMARTIOT_USER_POOL_ID)")
        from plugins.aws.console_access import redaction

        redaction.install()  # GetId carries the caller's ID token: never in a DEBUG log
        self._iot = iot
        self._identity = identity
        self.identity_pool_id = identity_pool_id
        self.provider = login_provider(region, user_pool_id)
        self.policy_name = policy_name
        self._identities: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.get_id_calls = 0  # what the identity pool was asked (tests, the log)

    def grant(self, subject: str, id_token: str, claimed: str = "") -> IotAccess:
        """Attach the console policy to the identity ``id_token`` maps to.
        ``subject``: the token's verified ``sub`` (the cache key);
        ``claimed``: the identity the caller says it is, refused when not its own."""
        if not subject or not id_token:
            raise PermissionDenied("IoT access needs the caller's ID token")
        identity_id = self.identity_of(subject, id_token)
        if claimed and claimed != identity_id:
            log.warning("refused IoT access for identity %s to the caller whose identity is %s",
                        claimed, identity_id)
            raise PermissionDenied(f"identity {claimed} is not the caller's own; a console can "
                                   "only be given IoT access for its own Cognito identity")
        self._iot.attach_policy(policyName=self.policy_name, target=identity_id)
        log.info("IoT policy %s attached to identity %s", self.policy_name, identity_id)
        return IotAccess(identity_id, self.policy_name)

    def identity_of(self, subject: str, id_token: str) -> str:
        with self._lock:
            known = self._identities.get(subject)
            if known is not None:
                self._identities.move_to_end(subject)
                return known
        answer = self._identity.get_id(IdentityPoolId=self.identity_pool_id,
                                       Logins={self.provider: id_token})
        identity_id = str(answer["IdentityId"])
        with self._lock:
            self.get_id_calls += 1
            identity_id = self._identities.setdefault(subject, identity_id)
            while len(self._identities) > KEEP_IDENTITIES:
                self._identities.popitem(last=False)
        return identity_id


class IotAccessRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    identity_id: str = Field(default="", max_length=128,
                             description="optional: the identity the console uses; refused "
                             "(403) unless it is the caller's own")


def bearer_token(headers: Mapping[str, str]) -> str:
    for key, value in headers.items():
        if key.lower() == "authorization":
            value = value.strip()
            return value[7:].strip() if value[:7].lower() == "bearer " else value
    return ""


def iot_access_router(access: Callable[[], ConsoleIotAccess | None],
                      actor: Callable[[], Actor],
                      respond: Callable[[Any], Response[Any]]) -> Router:
    """The route over ``access`` (None: this backend has no identity pool; 404).
    ``actor``: the caller as the API's other routes see it (a disabled account
    is refused); ``respond``: the API's envelope."""
    router = Router()

    @router.post(PATH, summary="Let this person's console receive live data from IoT Core "
                 "(attach the console IoT policy to their Cognito identity)", tags=["users"])
    def grant(body: Annotated[IotAccessRequest, Body()]) -> Response[Any]:
        who = actor()
        granting = access()
        if granting is None:
            from core.errors import NotFound

            raise NotFound("this API has no identity pool for live data")
        event = router.current_event
        context = event.raw_event.get("requestContext") or {}
        claims = (context.get("authorizer") or {}).get("claims") or {}
        subject = str(claims.get("sub") or "")
        result = granting.grant(subject, bearer_token(event.headers or {}), body.identity_id)
        log.info("live data for %s: identity %s", who.user, result.identity_id)
        return respond({"identity_id": result.identity_id, "policy_name": result.policy_name})

    return router
