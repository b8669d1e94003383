"""Requests per minute per person, for the API served by one process."""

from __future__ import annotations

import math
import threading
import time

from plugins.api.responses import TooManyRequests


class RateLimit:
    """Requests per minute per user, as a token bucket (API Gateway's usage plans
    do this on AWS; locally one process answers everyone)."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, user: str) -> None:
        now = time.monotonic()
        with self._lock:
            tokens, at = self._buckets.get(user, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - at) * self.per_minute / 60)
            if tokens < 1:
                self._buckets[user] = (tokens, now)
                wait = max(1, math.ceil((1 - tokens) * 60 / self.per_minute))
                raise TooManyRequests(f"{user} sent more than {self.per_minute} requests a "
                                      f"minute; retry in {wait} s", retry_after_s=wait)
            self._buckets[user] = (tokens - 1, now)
