"""What every REST answer looks like: the Smart_IOT envelope
(``{"success": true, "data": ...}`` or ``{"success": false, "error": {"code",
"message", "details"}}``), the CORS headers, the body limits and the errors
that are the API's own (413, 429).

Routers import these directly (not through app.py, which includes them), so a
router module stands on its own.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from core.errors import SmartIotError

MAX_BODY_BYTES = 1024 * 1024
MAX_FIRMWARE_BYTES = 16 * 1024 * 1024
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Content-Type,Authorization,If-Match,Idempotency-Key",
    "Access-Control-Allow-Methods": "GET,POST,PUT,DELETE,OPTIONS",
    "Access-Control-Expose-Headers": "ETag,X-Correlation-Id,Retry-After,Idempotent-Replayed",
}


class PayloadTooLarge(SmartIotError):
    """HTTP 413."""


class TooManyRequests(SmartIotError):
    """HTTP 429; ``retry_after_s`` becomes the ``Retry-After`` header (a
    console's outbox waits that long before sending again)."""

    def __init__(self, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def envelope(data: Any, status: int = 200, headers: dict[str, str] | None = None
             ) -> Response[Any]:
    return Response(status, "application/json",
                    json.dumps({"success": True, "data": data}, default=str),
                    headers={**CORS_HEADERS, **(headers or {})})


def error(status: int, code: str, message: str, details: Any = None) -> Response[Any]:
    return Response(status, "application/json",
                    json.dumps({"success": False, "error": {
                        "code": code, "message": message, "details": details}}, default=str),
                    headers=CORS_HEADERS)
