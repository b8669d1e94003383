"""Request bodies of the REST API as pydantic models.

They are the first check on what arrives (types, lengths, required fields),
so a bad request is answered with 400 naming the field before any use case
runs; the domain's own checks (device ids, versions, rule parameters) follow
in core and are mapped to 400 too. The OpenAPI document is generated from
these models and the route table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    # Unknown fields are refused rather than ignored: a typo such as "tgas" must
    # not be reported as a successful edit that changed nothing.
    model_config = ConfigDict(extra="forbid")


class LocationIn(_Strict):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    label: str = Field(default="", max_length=200)


class DeviceCreate(_Strict):
    device_id: str = Field(min_length=1, max_length=128,
                           description="AWS IoT thing name: letters, digits, _ - :")
    device_type: str = Field(min_length=1, max_length=64)
    name: str = Field(default="", max_length=200)
    organization: str = Field(default="", max_length=128,
                              description="ignored when the caller belongs to an organization")
    tags: list[str] = Field(default_factory=list, max_length=50)
    location: LocationIn | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class DeviceUpdate(_Strict):
    """Fields left out keep their value."""

    name: str | None = Field(default=None, max_length=200)
    tags: list[str] | None = Field(default=None, max_length=50)
    location: LocationIn | None = None
    metadata: dict[str, Any] | None = None


class CommandIn(_Strict):
    command: Literal["ping", "reboot", "identify", "set-interval"]
    params: dict[str, Any] = Field(default_factory=dict)
    timeout_s: float = Field(default=10.0, gt=0, le=120)


class DesiredIn(_Strict):
    desired: dict[str, Any]


class CommentIn(_Strict):
    comment: str = Field(default="", max_length=2000)


class SnoozeIn(_Strict):
    until: datetime | None = Field(default=None, description="when the alert wakes up again")
    minutes: float | None = Field(default=None, gt=0, le=60 * 24 * 30)
    comment: str = Field(default="", max_length=2000)


class RuleIn(_Strict):
    name: str = Field(min_length=1, max_length=200)
    rule_type: str = Field(min_length=1, max_length=64)
    params: dict[str, Any]
    severity: Literal["info", "warning", "critical"] = "warning"
    enabled: bool = True
    auto_resolve: bool = True
    device_types: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    device_ids: list[str] = Field(default_factory=list)


class PreferencesIn(_Strict):
    preferences: dict[str, Any] = Field(description="replaces the stored preferences")


class FirmwareUpload(_Strict):
    device_type: str = Field(min_length=1, max_length=64)
    version: str = Field(min_length=1, max_length=64, description="semantic version")
    image_base64: str = Field(min_length=1, description="the image, base64")
    signature_base64: str | None = Field(
        default=None, description="a signature by a trusted key; signed here when absent")
    release_notes: str = Field(default="", max_length=10000)
    allow_downgrade: bool = False


class TargetIn(_Strict):
    kind: Literal["list", "group", "filter"] = "list"
    device_ids: list[str] = Field(default_factory=list)
    device_types: list[str] = Field(default_factory=list)
    tag: str = ""


class DeploymentCreate(_Strict):
    firmware_id: str = Field(min_length=1, max_length=200)
    target: TargetIn
    config: dict[str, Any] = Field(
        default_factory=dict,
        description="IoT Jobs configuration: jobExecutionsRolloutConfig, abortConfig, "
        "timeoutConfig, jobExecutionsRetryConfig")
    description: str = Field(default="", max_length=2000)
    allow_downgrade: bool = False
    manifest: dict[str, Any] | None = Field(
        default=None,
        description="the deployment's manifest signed on the engineer's machine "
        "({payload, signature, signatureAlgorithm, keyId}, as in the job document); "
        "required where the server holds no code-signing key (AWS)")


class CancelIn(_Strict):
    force: bool = False


class SensorQueryIn(_Strict):
    device_ids: list[str] = Field(min_length=1, max_length=50)
    metric: str = Field(min_length=1, max_length=64)
    start: datetime
    end: datetime
    bucket_s: float | None = Field(default=None, ge=1, le=86400)
