"""One HTTP Range request for a block of the image, as AWS IoT's OTA library does
over HTTP. It blocks, so the runtime runs it on its small worker pool and hands
the result back to its loop; the device writes the block to flash there."""

from __future__ import annotations

import re
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException, HTTPSConnection
from urllib.parse import urlsplit

FETCH_TIMEOUT_S = 10.0
_CONTENT_RANGE = re.compile(r"bytes\s+(?:(\d+)-(\d+)|\*)/(\d+|\*)")


@dataclass(frozen=True)
class FetchResult:
    status: int              # HTTP status; 0 when the server did not answer
    data: bytes = b""        # the bytes from the requested start on
    total: int | None = None  # the file's size, when the server said
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status in (200, 206)

    @property
    def expired(self) -> bool:
        """The presigned URL expired (S3 and the local file server answer 403)."""
        return self.status == 403

    @property
    def past_end(self) -> bool:
        return self.status == 416


def _total(header: str | None) -> tuple[int | None, int | None]:
    """(first byte, total size) from a Content-Range header."""
    match = _CONTENT_RANGE.match(header or "")
    if match is None:
        return None, None
    first = int(match.group(1)) if match.group(1) is not None else None
    total = int(match.group(3)) if match.group(3) != "*" else None
    return first, total


def http_fetch(url: str, start: int, end: int, timeout: float = FETCH_TIMEOUT_S) -> FetchResult:
    """GET bytes ``start``..``end`` (inclusive) of ``url``."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return FetchResult(0, error=f"cannot download from {url!r}")
    cls = HTTPSConnection if parts.scheme == "https" else HTTPConnection
    conn = cls(parts.hostname, parts.port, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path, headers={"Range": f"bytes={start}-{end}"})
        resp = conn.getresponse()
        body = resp.read()
        if resp.status == 206:
            first, total = _total(resp.getheader("Content-Range"))
            if first is not None and first != start:
                return FetchResult(0, error=f"server sent bytes from {first}, asked {start}")
            return FetchResult(206, body, total)
        if resp.status == 200:  # a server without Range support sends it all
            return FetchResult(200, body[start:end + 1], len(body))
        if resp.status == 416:
            return FetchResult(416, total=_total(resp.getheader("Content-Range"))[1])
        return FetchResult(resp.status, error=f"HTTP {resp.status} {resp.reason}")
    except (OSError, HTTPException) as exc:
        return FetchResult(0, error=f"{type(exc).__name__}: {exc}")
    finally:
        conn.close()
