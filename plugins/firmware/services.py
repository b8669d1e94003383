"""Builds the firmware plugin's services from the application context, so
the CLI, the pages and tests wire them the same way."""

from __future__ import annotations

from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.errors import SmartIotError
from core.ports.deployments import DeploymentService
from core.services.ota import OtaService
from plugins.firmware.library import FirmwareLibrary


def signing_keys(context: AppContext) -> CodeSigningKeys:
    return CodeSigningKeys(context.config.data_dir / "codesign")


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
