"""What API Gateway invokes: ``plugins.api.lambda_handler.handler``.

A Lambda container builds the use cases once, on its first request, from the
configuration its environment names (``SMARTIOT_PROFILE``,
``SMARTIOT_DATABASE``, ...), and reuses them for every later request, as
Lambda reuses the container. The caller's identity is whatever API Gateway's
authorizer verified (``requestContext.authorizer.claims``); requests without
claims are answered 401.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from core.ports.idempotency import IdempotencyStore
from plugins.api.app import make_handler
from plugins.api.wiring import ApiServices

_lock = threading.Lock()
_services: ApiServices | None = None
_idempotency: IdempotencyStore | None = None


def _build() -> ApiServices:
    global _services, _idempotency
    with _lock:
        if _services is None:
            from core.config import load_config
            from core.context import AppContext
            from core.plugins import PluginManager
            from plugins.api.commands import api_services, idempotency_store

            # /tmp is the only place a Lambda function may write.
            data_dir = Path(os.environ.get("SMARTIOT_DATA_DIR", "/tmp/smartiot"))
            config = load_config(Path(os.environ.get("SMARTIOT_CONFIG",
                                                     str(data_dir / "config.toml"))), data_dir)
            context = AppContext(config, PluginManager(), live=False)
            _services = api_services(context)
            _idempotency = idempotency_store(context)
        return _services


def _idempotency_store() -> IdempotencyStore | None:
    _build()
    return _idempotency


_handle = make_handler(_build, idempotency=_idempotency_store)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _handle(event, context)
