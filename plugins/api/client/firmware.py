"""FirmwareApi and DeploymentsApi over the REST API
(core.ports.fleet_api.firmware, .deployments).

The hub signs images and manifests with its own key, and only if the team
trusts it: this machine's code-signing key plays no part, so
``signing_key()`` answers None and keys are managed on the hub. Uploads go
in one request (base64, up to the API's 16 MiB).

A server that holds no key (the Smart_IOT backend on AWS) is given
``signing_keys``: this person's own key signs the image (uploaded straight to
S3 through presigned URLs, plugins/api/client/uploads.py) and each
deployment's manifest on this machine, and the server accepts them only when
the team trusts the key.
"""

from __future__ import annotations

import base64
import builtins
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.crypto.keystore import CodeSigningKeys
from core.errors import ValidationError
from core.model import Deployment, Execution, Firmware
from core.model.rollout import JobConfig
from core.ports.fleet_api.deployments import (
    DeploymentProgress,
    TargetMatch,
    TargetPlan,
    TargetSpec,
)
from core.ports.fleet_api.firmware import SigningKeyInfo, VerifyReport
from core.ports.signing_keys import TrustedKey
from core.protocol.ota import DEFAULT_MANIFEST_VALIDITY_S, SignedManifest
from core.services.fleet_view import Page
from core.services.ota import manifest_bytes
from plugins.api.client import decode
from plugins.api.client.devices import PAGE, HttpDevices, seg
from plugins.api.client.errors import not_offered
from plugins.api.client.transport import HttpTransport
from plugins.api.client.uploads import DirectUploader


class HttpFirmware:
    def __init__(self, http: HttpTransport, devices: HttpDevices, *,
                 signing_keys: CodeSigningKeys | None = None,
                 uploads_dir: Path | None = None) -> None:
        self._http = http
        self._devices = devices
        self.signing_keys = signing_keys
        self.uploader = (None if signing_keys is None or uploads_dir is None
                         else DirectUploader(http, signing_keys, uploads_dir))

    def import_file(self, path: Path, *, version: str, device_type: str,
                    release_notes: str = "", allow_downgrade: bool = False,
                    signature: bytes | None = None,
                    progress: Callable[[int, int], None] | None = None) -> Firmware:
        """Straight to storage, signed here, when this console signs with its own
        key (AWS); otherwise in one request, signed by the hub."""
        if self.uploader is not None and signature is None:
            return self.uploader.upload(Path(path), version=version, device_type=device_type,
                                        release_notes=release_notes,
                                        allow_downgrade=allow_downgrade, progress=progress)
        image = Path(path).read_bytes()
        if progress is not None:
            progress(0, len(image))
        fw = self.import_bytes(image, version=version, device_type=device_type,
                               release_notes=release_notes, allow_downgrade=allow_downgrade,
                               signature=signature, source=str(path))
        if progress is not None:
            progress(len(image), len(image))
        return fw

    def import_bytes(self, image: bytes, *, version: str, device_type: str,
                     release_notes: str = "", allow_downgrade: bool = False,
                     signature: bytes | None = None, source: str = "image") -> Firmware:
        body: dict[str, Any] = {
            "device_type": device_type, "version": version,
            "image_base64": base64.b64encode(image).decode(), "release_notes": release_notes,
            "allow_downgrade": allow_downgrade}
        if signature is None and self.signing_keys is not None and self.signing_keys.exists:
            signature, _key_id = self.signing_keys.sign(image)  # the server holds no key
        if signature is not None:
            body["signature_base64"] = base64.b64encode(signature).decode()
        return decode.firmware(self._http.post("/firmware/upload", body).data)

    def list(self, device_type: str | None = None) -> builtins.list[Firmware]:
        return [decode.firmware(f) for f in self._all(device_type)]

    def _all(self, device_type: str | None) -> builtins.list[dict[str, Any]]:
        out: builtins.list[dict[str, Any]] = []
        token = ""
        while True:
            d = self._http.get("/firmware", {"device_type": device_type, "limit": PAGE,
                                             "next": token}).data
            out.extend(d["items"])
            token = d.get("next") or ""
            if not token:
                return out

    def page(self, device_type: str | None = None, *, limit: int | None = None,
             next_token: str = "") -> Page[Firmware]:
        d = self._http.get("/firmware", {"device_type": device_type, "limit": limit,
                                         "next": next_token}).data
        return Page([decode.firmware(f) for f in d["items"]], d.get("next") or "")

    def get(self, firmware_id: str) -> Firmware:
        return decode.firmware(self._http.get(f"/firmware/{seg(firmware_id)}").data)

    def verify(self, firmware_id: str) -> VerifyReport:
        return decode.verify_report(
            self._http.post(f"/firmware/{seg(firmware_id)}/verify").data)

    def signer(self, key_id: str) -> str:
        for f in self._all(None):
            if f.get("key_id") == key_id:
                return str(f.get("signed_by") or "")
        return ""

    def delete(self, firmware_id: str) -> Firmware:
        fw = self.get(firmware_id)
        self._http.delete(f"/firmware/{seg(firmware_id)}")
        return fw

    def version_distribution(self) -> dict[str, Counter[str]]:
        out: dict[str, Counter[str]] = {}
        for device in self._devices.all():
            out.setdefault(device.device_type, Counter())[device.firmware_version or "unknown"] += 1
        return out

    def signing_key(self) -> SigningKeyInfo | None:
        """This person's own key where the console signs (AWS); the hub's is the hub's."""
        keys = self.signing_keys
        if keys is None or not keys.public_path.exists():
            return None
        pem = keys.public_path.read_bytes()
        return SigningKeyInfo(keys.current_key_id(), pem, str(keys.public_path),
                              str(keys.private_path))

    def create_signing_key(self) -> SigningKeyInfo:
        """On AWS the key is this person's, on this machine (its passphrase in their
        secret store); an admin then trusts its public half (POST /firmware/keys)."""
        keys = self.signing_keys
        if keys is None:
            raise not_offered("creating a code-signing key (the hub signs with its own)")
        if keys.exists:
            raise ValidationError(f"{keys.private_path} already exists (key "
                                  f"{keys.current_key_id()}); `smartiot firmware key` prints it")
        keys.signing_key()
        info = self.signing_key()
        assert info is not None  # just written
        return info

    def trusted_keys(self, *, include_revoked: bool = False) -> builtins.list[TrustedKey]:
        d = self._http.get("/firmware/keys",
                           {"include_revoked": "true" if include_revoked else "false"}).data
        return [decode.trusted_key(k) for k in d["items"]]

    def trust_key(self, public_pem: bytes, owner: str, note: str = "") -> TrustedKey:
        try:
            pem = public_pem.decode("ascii")
        except UnicodeDecodeError:
            raise ValidationError("public key: not a PEM file (it is binary)") from None
        return decode.trusted_key(self._http.post("/firmware/keys", {
            "public_pem": pem, "owner": owner, "note": note}).data)

    def revoke_key(self, key_id: str) -> TrustedKey:
        return decode.trusted_key(self._http.post(f"/firmware/keys/{seg(key_id)}/revoke").data)


def target_body(spec: TargetSpec) -> dict[str, Any]:
    if spec.text or spec.statuses or spec.firmware_version:
        raise ValidationError("target: a filter by text, status or firmware version cannot be "
                              "sent to the hub's API yet; choose devices or a type/tag group")
    return {"kind": spec.kind, "device_ids": list(spec.device_ids),
            "device_types": list(spec.device_types), "tag": spec.tag}


class HttpDeployments:
    def __init__(self, http: HttpTransport, devices: HttpDevices, *,
                 signing_keys: CodeSigningKeys | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._http = http
        self._devices = devices
        self._keys = signing_keys
        self._clock = clock

    def match(self, spec: TargetSpec) -> TargetMatch:
        visible = self._devices.all(None if spec.kind == "list" else spec.query())
        if spec.kind == "list":
            wanted = set(spec.device_ids)
            found = [d for d in visible if d.device_id in wanted]
            known = {d.device_id for d in found}
            unknown = tuple(i for i in spec.device_ids if i not in known)
        else:
            found, unknown = visible, ()
        match = TargetMatch(count=len(found), unknown=unknown)
        for d in found:
            match.types[d.device_type] += 1
            version = d.firmware_version or "unknown"
            match.versions.setdefault(d.device_type, Counter())[version] += 1
        return match

    def plan(self, firmware_id: str, spec: TargetSpec, *, only_matching_type: bool = True
             ) -> TargetPlan:
        return decode.plan(self._http.post("/firmware/deployments/plan", {
            "firmware_id": firmware_id, "target": target_body(spec),
            "only_matching_type": only_matching_type}).data)

    def create(self, firmware_id: str, spec: TargetSpec, config: JobConfig, *,
               description: str = "", allow_downgrade: bool = False,
               only_matching_type: bool = True, selftest_window_s: float = 0.0,
               manifest_validity_s: int = 0) -> Deployment:
        """The hub applies its own self-test window and manifest validity; a
        console with its own key (AWS) signs the manifest here."""
        body: dict[str, Any] = {
            "firmware_id": firmware_id, "target": target_body(spec), "config": config.to_aws(),
            "description": description, "allow_downgrade": allow_downgrade}
        if self._keys is not None:
            body["manifest"] = self.signed_manifest(
                firmware_id, allow_downgrade=allow_downgrade,
                manifest_validity_s=manifest_validity_s or DEFAULT_MANIFEST_VALIDITY_S)
        return decode.deployment(self._http.post("/firmware/deployments", body).data)

    def signed_manifest(self, firmware_id: str, *, allow_downgrade: bool,
                        manifest_validity_s: int) -> dict[str, Any]:
        """The deployment's manifest, signed with this person's key: the image as
        the library describes it, this downgrade rule, valid from now."""
        keys = self._keys
        assert keys is not None
        if not keys.exists:
            raise ValidationError(
                "there is no code-signing key on this machine to sign the deployment's "
                "manifest; create one with `smartiot firmware key create` and ask an admin "
                "to add its public key to the team's trusted keys")
        firmware = decode.firmware(self._http.get(f"/firmware/{seg(firmware_id)}").data)
        payload = manifest_bytes(firmware, key_id=keys.current_key_id(),
                                 issued_at=int(self._clock()), allow_downgrade=allow_downgrade,
                                 manifest_validity_s=manifest_validity_s)
        signature, key_id = keys.sign(payload)
        return SignedManifest(payload, signature, key_id).to_json()

    def status(self, deployment_id: str) -> DeploymentProgress:
        return decode.progress(self._http.get(f"/firmware/deployments/{seg(deployment_id)}").data)

    def executions(self, deployment_id: str) -> builtins.list[Execution]:
        d = self._http.get(f"/firmware/deployments/{seg(deployment_id)}/executions").data
        return [decode.execution(e) for e in d["items"]]

    def list(self) -> builtins.list[DeploymentProgress]:
        out: builtins.list[DeploymentProgress] = []
        token = ""
        while True:
            page = self.page(limit=PAGE, next_token=token)
            out.extend(page.items)
            token = page.next
            if not token:
                return out

    def page(self, *, limit: int | None = None, next_token: str = ""
             ) -> Page[DeploymentProgress]:
        d = self._http.get("/firmware/deployments", {"limit": limit, "next": next_token}).data
        return Page([decode.progress(p) for p in d["items"]], d.get("next") or "")

    def _control(self, deployment_id: str, verb: str, body: Any = None) -> DeploymentProgress:
        return decode.progress(self._http.post(
            f"/firmware/deployments/{seg(deployment_id)}/{verb}", body).data)

    def pause(self, deployment_id: str) -> Deployment:
        return self._control(deployment_id, "pause").deployment

    def resume(self, deployment_id: str) -> Deployment:
        return self._control(deployment_id, "resume").deployment

    def cancel(self, deployment_id: str, *, force: bool = False) -> Deployment:
        return self._control(deployment_id, "cancel", {"force": force}).deployment

    def retry_failed(self, deployment_id: str) -> builtins.list[str]:
        """The route answers the deployment's progress, not the ids queued again:
        the ids are those that had failed or timed out, known only on the hub."""
        self._control(deployment_id, "retry")
        return []
