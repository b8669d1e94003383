"""One HTTP exchange with the REST API, for people on a poor connection.

Reads (GET) are retried with jittered exponential backoff when the network
drops or the server is briefly unavailable (502/503/504): repeating a read
changes nothing. With an offline cache (plugins/api/client/cache.py) a read
that cannot reach the server is answered from the last answer to it, marked
as cached. Changes (POST, PUT, DELETE) go through the outbox when there is one
(plugins/api/client/outbox.py): written to disk with an idempotency key
first, then sent, and resent with the same key until the server answers, so
a lost answer never applies a change twice. Without an outbox a change is
sent once and never retried blindly. A 401 first asks the token source for a
fresh access token and sends the request once more: the server refused it,
so it was not applied.
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlencode, urlsplit

from core.errors import ServiceUnreachable, SmartIotError
from plugins.api.client.errors import HubUnreachable, SignInRequired, error_from_answer

if TYPE_CHECKING:
    from plugins.api.client.cache import OfflineCache
    from plugins.api.client.outbox import Outbox

RETRY_STATUSES = frozenset({502, 503, 504})
CACHED_HEADER = "X-Smartiot-Cached-At"  # an answer from the offline cache, read then


class TokenSource(Protocol):
    def access_token(self) -> str:
        """A bearer token that is valid now (refreshed if it was about to expire)."""
        ...

    def renew(self) -> bool:
        """The server refused the token: get a new one; False when that is impossible."""
        ...


@dataclass
class StaticToken:
    """A token handed over as is (``smartiot api token``): it cannot be renewed."""

    token: str

    def access_token(self) -> str:
        return self.token

    def renew(self) -> bool:
        return False


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    data: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def etag_version(self) -> int | None:
        raw = self.headers.get("ETag") or self.headers.get("Etag") or ""
        raw = raw.strip().removeprefix("W/").strip('"')
        return int(raw) if raw.isdigit() else None


def normalise_url(url: str) -> str:
    """``http://hub:8080/`` -> ``http://hub:8080``; anything but http(s) is refused."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SmartIotError(f"api_url {url!r} must look like http://hub:8080 or "
                            "https://abc.execute-api.eu-west-1.amazonaws.com/dev")
    return url.strip().rstrip("/")


class HttpTransport:
    def __init__(self, base_url: str, tokens: TokenSource | None = None, *,
                 timeout_s: float = 15.0, retries: int = 3, backoff_s: float = 0.5,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.base_url = normalise_url(base_url)
        self.tokens = tokens
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        #: where changes wait for the server (set by the console's session)
        self.outbox: Outbox | None = None
        #: the last answers to reads, for browsing offline
        self.cache: OfflineCache | None = None

    def get(self, path: str, query: Mapping[str, Any] | None = None) -> Answer:
        return self.call("GET", path, query=query)

    def post(self, path: str, body: Any = None, *, headers: Mapping[str, str] | None = None,
             timeout_s: float | None = None) -> Answer:
        return self.call("POST", path, body={} if body is None else body, headers=headers,
                         timeout_s=timeout_s)

    def put(self, path: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Answer:
        return self.call("PUT", path, body=body, headers=headers)

    def delete(self, path: str, *, headers: Mapping[str, str] | None = None) -> Answer:
        return self.call("DELETE", path, headers=headers)

    def call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
             body: Any = None, headers: Mapping[str, str] | None = None,
             authenticated: bool = True, timeout_s: float | None = None) -> Answer:
        """``timeout_s``: this request's own (a command waits for the device)."""
        if method != "GET" and authenticated and self.outbox is not None \
                and self.outbox.takes(method, path):
            return self.outbox.submit(method, path, body, headers, timeout_s)
        if method == "GET" and authenticated and self.cache is not None:
            return self._read_or_cached(path, query)
        return self._call(method, path, query=query, body=body, headers=headers,
                          authenticated=authenticated, timeout_s=timeout_s)

    def _read_or_cached(self, path: str, query: Mapping[str, Any] | None) -> Answer:
        assert self.cache is not None
        # Known to be offline: one try, then the cache (no backoff per page read).
        retries = 0 if self.cache.offline_since is not None else None
        try:
            answer = self._call("GET", path, query=query, retries=retries)
        except HubUnreachable:
            cached = self.cache.get(path, query)
            if cached is None:
                self.cache.went_offline(None)
                raise
            self.cache.went_offline(cached.fetched_at)
            return Answer(200, cached.data, {**cached.headers, CACHED_HEADER:
                                             cached.fetched_at.isoformat()})
        self.cache.put(path, query, answer.data, answer.headers)
        if self.outbox is not None:
            self.outbox.link_is_up()
        return answer

    def send_change(self, method: str, path: str, body: Any, headers: Mapping[str, str],
                    timeout_s: float | None = None) -> tuple[int, Any, dict[str, str]]:
        """One attempt of a change, the outbox's: the raw status, body and
        headers (a 401 renews the token and sends once more); HubUnreachable
        when the server did not answer."""
        data = None if body is None else json.dumps(body, default=str).encode()
        renewed = False
        while True:
            token = self._token()
            status, payload, answer_headers = self._send(
                method, self.base_url + path, data, token, headers,
                timeout_s or self.timeout_s, queued=True)
            if status == 401 and self.tokens and not renewed:
                renewed = True
                if self.tokens.renew():
                    continue
            return status, payload, answer_headers

    def _call(self, method: str, path: str, *, query: Mapping[str, Any] | None = None,
              body: Any = None, headers: Mapping[str, str] | None = None,
              authenticated: bool = True, timeout_s: float | None = None,
              retries: int | None = None) -> Answer:
        url = self.base_url + path
        most = self.retries if retries is None else retries
        wanted = {k: _query_value(v) for k, v in (query or {}).items()
                  if v is not None and v != ""}
        if wanted:
            url += "?" + urlencode(wanted)
        data = None if body is None else json.dumps(body, default=str).encode()
        safe = method == "GET"
        renewed = False
        attempt = 0
        while True:
            try:
                token = self._token() if authenticated else ""
                status, payload, answer_headers = self._send(
                    method, url, data, token, headers, timeout_s or self.timeout_s)
            except HubUnreachable:
                if not safe or attempt >= most:
                    raise
                attempt += 1
                self._pause(attempt)
                continue
            if status in RETRY_STATUSES and safe and attempt < most:
                attempt += 1
                self._pause(attempt)
                continue
            if status == 401 and authenticated and self.tokens and not renewed:
                renewed = True
                if self.tokens.renew():
                    continue
            if 200 <= status < 300:
                inner = payload.get("data") if isinstance(payload, dict) else payload
                return Answer(status, inner, answer_headers)
            raise error_from_answer(status, payload, self.base_url)

    def _token(self) -> str:
        """The bearer token. A sign-in service that cannot be reached (Cognito
        while the network is down) leaves the API as unreachable as a cut
        link does: reads fall back to the cache, changes wait in the outbox."""
        if not self.tokens:
            return ""
        try:
            return self.tokens.access_token()
        except ServiceUnreachable as exc:
            raise HubUnreachable(f"the sign-in for {self.base_url} cannot be renewed: "
                                 f"{exc}") from None

    def _pause(self, attempt: int) -> None:
        delay = self.backoff_s * (2 ** (attempt - 1))
        self._sleep(delay * random.uniform(0.5, 1.0))

    def _send(self, method: str, url: str, data: bytes | None, token: str,
              headers: Mapping[str, str] | None, timeout_s: float, *, queued: bool = False
              ) -> tuple[int, Any, dict[str, str]]:
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return response.status, _json(response.read()), dict(response.headers.items())
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, _json(exc.read()), dict(exc.headers.items())
        except (TimeoutError, urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            once = "" if method == "GET" or queued else (
                f"; the {method} was sent once and not retried: it may or may not have "
                "been applied, check before sending it again")
            raise HubUnreachable(f"the hub at {self.base_url} cannot be reached: "
                                 f"{reason}{once}") from None


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(sorted(str(v) for v in value))
    return str(value)


def _json(raw: bytes) -> Any:
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return {"error": {"message": raw[:200].decode("utf-8", "replace")}}


__all__ = ["Answer", "HttpTransport", "SignInRequired", "StaticToken", "TokenSource"]
