"""The console's side of ``/firmware/uploads``: the image's bytes go straight
to storage (presigned PUTs to S3 on AWS), never through the API, and a cut
connection or a restarted console costs at most the part that was in flight.

Steps, all on the caller's (worker) thread:

1. hash the file once (SHA-256 and size) and sign that digest with this
   person's code-signing key (the private key never leaves the machine; the
   API only checks the signature against the team's trusted keys). A key the
   team does not trust is refused here, before a byte is sent;
2. start the upload (``POST /firmware/uploads``), or, when a ticket for the
   same file and release is kept from an earlier attempt, ask which parts
   storage already holds (``GET /firmware/uploads/{ticket}``) and send only
   the others. The ticket is kept in ``<data dir>/uploads/`` until the image
   is in the library;
3. PUT each part from the file in 256 KiB writes, reporting progress after
   each, retrying a part a few times with a growing pause on a network error;
4. complete (``POST …/complete`` with the signature): the API checks the
   stored bytes and the signature before the image enters the library.

``progress(done, total)`` may raise (the dialog's Cancel does): the upload
stops at once, the parts already stored stay, and the next import of the
same file resumes from them.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import NotFound, SmartIotError, ValidationError
from core.model import Firmware
from plugins.api.client import decode
from plugins.api.client.transport import HttpTransport

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
WRITE = 256 << 10
PART_ATTEMPTS = 4
PUT_TIMEOUT_S = 60.0


class UploadInterrupted(SmartIotError):
    """The connection to storage failed for good; what is stored is kept."""


class DirectUploader:
    def __init__(self, http: HttpTransport, keys: CodeSigningKeys, state_dir: Path, *,
                 backoff_s: float = 0.5) -> None:
        self._http = http
        self._keys = keys
        self._state_dir = state_dir
        self._backoff_s = backoff_s

    # ------------------------------------------------------------ the whole upload
    def upload(self, path: Path, *, version: str, device_type: str, release_notes: str = "",
               allow_downgrade: bool = False, progress: Progress | None = None,
               multipart: bool | None = None, part_size: int | None = None) -> Firmware:
        size, sha256 = file_digest(path)
        signature = self._sign(sha256, str(path))
        state = self._state_path(device_type, version, sha256)
        answer = self._resume(state)
        if answer is None:
            body: dict[str, Any] = {"device_type": device_type, "version": version,
                                    "size": size, "sha256": sha256,
                                    "allow_downgrade": allow_downgrade, "multipart": multipart}
            if part_size is not None:
                body["part_size"] = part_size
            answer = self._http.post("/firmware/uploads", body).data
            self._keep(state, answer["upload"])
        held = sum(_span(answer, n) for n in answer["held"])
        report = progress or (lambda done, total: None)
        report(held, size)
        done = held
        with path.open("rb") as fh:
            for part in answer["parts"]:
                done = self._put_part(fh, part, done, size, report)
        fw = decode.firmware(self._http.post(
            f"/firmware/uploads/{answer['upload']}/complete",
            {"signature_base64": base64.b64encode(signature).decode("ascii"),
             "release_notes": release_notes, "allow_downgrade": allow_downgrade}).data)
        state.unlink(missing_ok=True)
        return fw

    # ------------------------------------------------------------ signing
    def _sign(self, sha256: str, source: str) -> bytes:
        """Sign on this machine, and say now (not after 64 MiB) if the team
        does not trust the key."""
        if not self._keys.exists:
            raise ValidationError(
                f"{source}: there is no code-signing key on this machine to sign the image; "
                "create one with `smartiot firmware key create` and ask an admin to add its "
                "public key to the team's trusted keys")
        key_id = self._keys.current_key_id()
        trusted = {k["key_id"] for k in self._http.get("/firmware/keys").data["items"]}
        if key_id not in trusted:
            raise ValidationError(
                f"{source}: your code-signing key {key_id} is not in the team's trusted keys, "
                f"so the image would be refused; ask an admin to add {self._keys.public_path}")
        return codesign.sign_digest(self._keys.signing_key(), bytes.fromhex(sha256))

    # ------------------------------------------------------------ resuming
    def _state_path(self, device_type: str, version: str, sha256: str) -> Path:
        name = hashlib.sha256(f"{device_type}@{version}:{sha256}".encode()).hexdigest()[:24]
        return self._state_dir / f"{name}.json"

    def _keep(self, state: Path, ticket: str) -> None:
        state.parent.mkdir(parents=True, exist_ok=True)
        temporary = state.with_suffix(".tmp")
        temporary.write_text(json.dumps({"upload": ticket}))
        temporary.replace(state)

    def _resume(self, state: Path) -> dict[str, Any] | None:
        """The kept upload's parts (held, and URLs for the rest), or None when
        there is none or it is gone (completed, aborted, expired)."""
        try:
            ticket = json.loads(state.read_text())["upload"]
        except (OSError, ValueError, KeyError):
            return None
        try:
            answer: dict[str, Any] = self._http.get(f"/firmware/uploads/{ticket}").data
        except (NotFound, ValidationError) as exc:
            log.info("starting the upload again: the kept one is gone (%s)", exc)
            state.unlink(missing_ok=True)
            return None
        log.info("resuming the upload of %s: %d of %d parts are stored", answer["firmware_id"],
                 len(answer["held"]), answer["part_count"])
        return answer

    # ------------------------------------------------------------ one part
    def _put_part(self, fh: BinaryIO, part: dict[str, Any], done: int, total: int,
                  report: Progress) -> int:
        start, end = int(part["start"]), int(part["end"])
        for attempt in range(1, PART_ATTEMPTS + 1):
            try:
                return _put(part["url"], part.get("headers") or {}, fh, start, end, done,
                            total, report)
            except (OSError, http.client.HTTPException) as exc:
                if attempt == PART_ATTEMPTS:
                    raise UploadInterrupted(
                        f"part {part['part_number']} could not be sent to storage ({exc}); "
                        f"{done} of {total} bytes are stored: import the same file again "
                        "to resume") from None
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
        raise AssertionError("unreachable")


def _put(url: str, headers: dict[str, str], fh: BinaryIO, start: int, end: int, done: int,
         total: int, report: Progress) -> int:
    """PUT bytes ``[start, end)`` of the file, reporting after each write."""
    parts = urlsplit(url)
    conn_type = (http.client.HTTPSConnection if parts.scheme == "https"
                 else http.client.HTTPConnection)
    conn = conn_type(parts.netloc, timeout=PUT_TIMEOUT_S)
    try:
        conn.putrequest("PUT", parts.path + (f"?{parts.query}" if parts.query else ""),
                        skip_accept_encoding=True)
        # an explicit type: a form type would have the body parsed as a form
        conn.putheader("Content-Type", "application/octet-stream")
        for name, value in headers.items():
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(end - start))
        conn.endheaders()
        fh.seek(start)
        sent = 0
        while sent < end - start:
            block = fh.read(min(WRITE, end - start - sent))
            if not block:
                raise ValidationError("the file got shorter while it was being uploaded")
            conn.send(block)
            sent += len(block)
            report(done + sent, total)
        answer = conn.getresponse()
        text = answer.read()
        if answer.status >= 300:
            raise ValidationError(f"storage refused a part ({answer.status}): "
                                  f"{text[:300].decode('utf-8', 'replace')}")
        return done + sent
    finally:
        conn.close()


def file_digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of the file, read once in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        raise ValidationError(f"cannot read firmware file {path}: {exc.strerror}") from None
    if size == 0:
        raise ValidationError(f"{path} is empty")
    return size, digest.hexdigest()


def _span(answer: dict[str, Any], part_number: int) -> int:
    part_size, size = int(answer["part_size"]), int(answer["size"])
    start = (part_number - 1) * part_size
    return max(0, min(start + part_size, size) - start)
