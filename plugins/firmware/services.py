"""Builds the firmware plugin's services from the application context, so
the CLI, the pages and tests wire them the same way."""

from __future__ import annotations

from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.errors import SmartIotError, ValidationError
from core.identity import is_one_process
from core.ports.deployments import DeploymentService
from core.services.ota import OtaService
from core.services.signing_keys import SigningKeyService
from plugins.firmware.library import FirmwareLibrary


def signing_keys(context: AppContext) -> CodeSigningKeys:
    return CodeSigningKeys(context.config.data_dir / "codesign")


def key_service(context: AppContext) -> SigningKeyService:
    """The team's trusted keys. The one-process console also writes them as files
    where its own demo devices read the keys they trust, so a key an admin adds
    is trusted by those devices from their next job on."""
    backend = context.backend
    on_change = (signing_keys(context).write_team_trust
                 if is_one_process(context.config.profile) else None)
    return SigningKeyService(backend.trusted_keys, backend.audit, on_change=on_change)


def firmware_library(context: AppContext) -> FirmwareLibrary:
    backend = context.backend
    if backend.firmware is None:
        raise SmartIotError(f"the {backend.name!r} backend has no firmware library")
    return FirmwareLibrary(
        backend.firmware,
        signing_keys(context),
        context.actor,
        registry=backend.registry,
        deployments=backend.deployments,
        audit=backend.audit,
        team_keys=key_service(context),
        local_trust=is_one_process(context.config.profile),
    )


def deployment_service(context: AppContext) -> DeploymentService:
    """The backend's deployments, for reading them (no permission needed)."""
    backend = context.backend
    if backend.deployments is None:
        raise SmartIotError(f"the {backend.name!r} backend cannot run OTA deployments")
    return backend.deployments


def ota_service(context: AppContext) -> OtaService:
    deployments = deployment_service(context)
    backend = context.backend
    if backend.firmware is None:
        raise SmartIotError(f"the {backend.name!r} backend cannot run OTA deployments")
    keys = signing_keys(context)
    signer: CodeSigningKeys | TeamSigner = keys
    if not is_one_process(context.config.profile):
        signer = TeamSigner(keys, key_service(context), context.actor.user)
    return OtaService(deployments, backend.firmware, backend.registry, context.actor,
                      audit=backend.audit, signer=signer)


class TeamSigner:
    """A deployment's manifest signed in a team: only with this person's existing
    key, and only if the team trusts it. Otherwise every device would refuse the
    rollout, and a key would be created as a side effect of creating it."""

    def __init__(self, keys: CodeSigningKeys, team: SigningKeyService, user: str) -> None:
        self._keys = keys
        self._team = team
        self._user = user

    def current_key_id(self) -> str:
        if not self._keys.exists:
            raise ValidationError(
                "you have no code-signing key on this machine to sign the deployment's "
                "manifest; create one with `smartiot firmware key create` and ask an admin "
                "to add it (`smartiot firmware keys add FILE --owner NAME`)")
        key_id = self._keys.current_key_id()
        if key_id not in self._team.trusted():
            raise ValidationError(
                f"your code-signing key {key_id} is not in the team's trusted keys, so devices "
                f"would refuse this deployment; ask an admin to run `smartiot firmware keys "
                f"add {self._keys.public_path} --owner {self._user}`")
        return key_id

    def sign(self, data: bytes) -> tuple[bytes, str]:
        self.current_key_id()
        return self._keys.sign(data)
