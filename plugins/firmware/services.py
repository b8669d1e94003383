"""Builds the firmware plugin's services from the application context, so
the CLI, the pages and tests wire them the same way."""

from __future__ import annotations

from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.errors import SmartIotError
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
    return OtaService(deployments, backend.firmware, backend.registry, context.actor,
                      audit=backend.audit, signer=signing_keys(context))
