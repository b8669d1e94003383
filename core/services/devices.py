"""What people do to devices: register, edit, decommission, delete, send
commands and change the desired state.

Each method takes the Actor, checks the role before touching anything and
writes the audit entry once the change is stored (a refusal is audited as
well). The Devices page and ``smartiot devices`` both come through here, so
a support login cannot reboot a device from one front end that the other
would refuse.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import replace
from typing import Any

from core.errors import NotFound, ValidationError
from core.model import Device, DeviceStatus, validate_device_id
from core.model.roles import Actor, Permission
from core.ports.commands import CommandChannel, CommandResult
from core.ports.hub import AuditTrail
from core.ports.registry import DeviceRegistry
from core.ports.shadows import ShadowDocument, ShadowService
from core.services.access import authorize, record_action


class DeviceService:
    def __init__(self, registry: DeviceRegistry, audit: AuditTrail | None = None, *,
                 commands: CommandChannel | None = None,
                 shadows: ShadowService | None = None) -> None:
        self._registry = registry
        self._audit = audit
        self._commands = commands
        self._shadows = shadows

    def register(self, device: Device, actor: Actor) -> Device:
        """Register a new device, or re-register a decommissioned one on purpose."""
        authorize(self._audit, actor, Permission.DEVICE_REGISTER, "device.register",
                  device.device_id)
        validate_device_id(device.device_id)
        existing = self._registry.find(device.device_id)
        if existing is not None and existing.status is not DeviceStatus.DECOMMISSIONED:
            raise ValidationError(
                f"device {device.device_id} is already registered ({existing.status.value})")
        if existing is not None:
            device = replace(device, created_at=existing.created_at)
        self._registry.upsert(device)
        stored = self._registry.get(device.device_id)
        record_action(self._audit, actor, "device.register", stored.device_id, {
            "device_type": stored.device_type, "device_organization": stored.organization,
            "re_registered": existing is not None})
        return stored

    def update(self, device: Device, actor: Actor) -> Device:
        """Save what a person edited (name, tags, location, metadata)."""
        authorize(self._audit, actor, Permission.DEVICE_UPDATE, "device.update",
                  device.device_id)
        before = self._registry.get(device.device_id)
        self._registry.upsert(device)
        stored = self._registry.get(device.device_id)
        record_action(self._audit, actor, "device.update", stored.device_id,
                      {"changed": _changed(before, stored)})
        return stored

    def decommission(self, device_id: str, actor: Actor) -> Device:
        authorize(self._audit, actor, Permission.DEVICE_DECOMMISSION, "device.decommission",
                  device_id)
        device = self._registry.get(device_id).with_status(DeviceStatus.DECOMMISSIONED)
        self._registry.upsert(device)
        record_action(self._audit, actor, "device.decommission", device_id)
        return device

    def delete(self, device_id: str, actor: Actor) -> None:
        """Remove the record for good (decommissioning keeps it)."""
        authorize(self._audit, actor, Permission.DEVICE_DELETE, "device.delete", device_id)
        self._registry.delete(device_id)
        record_action(self._audit, actor, "device.delete", device_id)

    def send_command(self, device_id: str, command: str, actor: Actor,
                     params: dict[str, Any] | None = None, *,
                     timeout_s: float = 10.0) -> Future[CommandResult]:
        """Audited when sent: the device's answer arrives later and is kept in
        the command log, the decision to send it belongs in the audit trail."""
        authorize(self._audit, actor, Permission.DEVICE_COMMAND, "device.command", device_id,
                  {"command": command})
        if self._commands is None:
            raise NotFound("this backend cannot send commands to devices")
        self._registry.get(device_id)
        record_action(self._audit, actor, "device.command", device_id,
                      {"command": command, "params": params or {}})
        return self._commands.send(device_id, command, params, timeout_s=timeout_s)

    def update_desired(self, device_id: str, desired: dict[str, Any], actor: Actor, *,
                       expected_version: int | None = None) -> ShadowDocument:
        authorize(self._audit, actor, Permission.DESIRED_STATE, "device.desired", device_id)
        if self._shadows is None:
            raise NotFound("this backend offers no device shadows")
        document = self._shadows.update_desired(device_id, desired,
                                                expected_version=expected_version)
        record_action(self._audit, actor, "device.desired", device_id,
                      {"desired": desired, "version": document.version})
        return document


def _changed(before: Device, after: Device) -> list[str]:
    fields = ("name", "device_type", "organization", "tags", "location", "metadata",
              "firmware_version", "status")
    return [f for f in fields if getattr(before, f) != getattr(after, f)]
