"""Expiring, HMAC-signed download URLs: the local stand-in for S3 presigned URLs.

A URL names one firmware image and the second it stops working, and carries
``HMAC-SHA256(secret, firmware_id + "\\n" + expires)``. The secret is random
per hub process, so URLs die with the hub that issued them; a device that is
refused asks for the job document again and gets a fresh one (as it would
when an S3 presigned URL expires).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Callable
from urllib.parse import quote, urlencode

DEFAULT_EXPIRY_S = 3600  # AWS presignedUrlConfig's default expiresInSec
FIRMWARE_PATH = "/firmware/"


class UrlSigner:
    def __init__(self, secret: bytes | None = None, *,
                 clock: Callable[[], float] = time.time) -> None:
        self._secret = secret if secret is not None else os.urandom(32)
        self.clock = clock

    def signature(self, firmware_id: str, expires: int) -> str:
        message = f"{firmware_id}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def path_and_query(self, firmware_id: str, expires_in_s: float) -> str:
        expires = int(self.clock() + expires_in_s)
        query = urlencode({"expires": expires, "sig": self.signature(firmware_id, expires)})
        return f"{FIRMWARE_PATH}{quote(firmware_id, safe='')}?{query}"

    def refusal(self, firmware_id: str, expires: str | None, sig: str | None) -> str | None:
        """Why this URL is refused (a sentence for the 403 body), or None if it is good."""
        if not expires or not sig:
            return "the URL is not signed (expires and sig are required)"
        try:
            expires_at = int(expires)
        except ValueError:
            return f"expires={expires!r} is not an epoch second"
        if not hmac.compare_digest(self.signature(firmware_id, expires_at), sig):
            return ("the signature does not match (the URL was altered, or was issued by "
                    "another hub run); ask for the job document again for a fresh URL")
        now = int(self.clock())
        if now > expires_at:
            return (f"the URL expired {now - expires_at} s ago (at epoch {expires_at}); ask "
                    "for the job document again (DescribeJobExecution) for a fresh URL")
        return None
