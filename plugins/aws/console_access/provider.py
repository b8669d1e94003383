"""The aws plugin's identity provider (``smartiot_register_identity_providers``):
a profile of the ``aws`` backend with an ``api_url`` signs in to the stage's
Cognito user pool, and the REST API client sends its ID token."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.context import AppContext
    from plugins.aws.console_access.session import CognitoSession


log = logging.getLogger(__name__)


def _load_backend_modules() -> None:
    try:
        import plugins.aws.backend
        import plugins.aws.live.wiring  # noqa: F401
    except Exception:  # only a head start: the build says what is wrong
        log.debug("loading the aws backend ahead of the sign-in failed", exc_info=True)


def connect(context: AppContext) -> CognitoSession:
    """Resolve where to sign in (profile, sandbox state or the stack's outputs).
    In the console (``context.live``) a sandbox profile whose sandbox is not
    running starts it, and stops it again when the console closes; a CLI
    command says how to start it instead."""
    from plugins.aws.cognito.signin import CognitoPool
    from plugins.aws.console_access import redaction
    from plugins.aws.console_access.endpoints import resolve
    from plugins.aws.console_access.launch import LaunchedSandbox
    from plugins.aws.console_access.session import CognitoSession, describe_pool

    redaction.install()
    data_dir = context.config.data_dir
    launched: list[LaunchedSandbox] = []

    def start_sandbox() -> dict[str, Any]:
        sandbox = LaunchedSandbox(data_dir)
        launched.append(sandbox)
        return sandbox.start()

    if context.live:
        # While the person types their password: load what the backend and the
        # live feed are built from after the sign-in (seconds on a busy machine),
        # so live data connects promptly after it.
        threading.Thread(target=_load_backend_modules, daemon=True,
                         name="aws-backend-warm-up").start()
    endpoints = resolve(context.config.profile, data_dir,
                        start_sandbox=start_sandbox if context.live else None)
    pool = CognitoPool(endpoints.region, endpoints.user_pool_id,
                       endpoints.user_pool_client_id, endpoints.endpoint_url)
    return CognitoSession(pool, api_url=endpoints.api_url, description=describe_pool(pool),
                          demo=list(endpoints.demo),
                          on_close=launched[0].stop if launched else None)
