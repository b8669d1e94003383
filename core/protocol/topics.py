"""Topic builders and parsers.

Parsers return ``None`` for topics that are not ours instead of raising,
because the hub subscribes with wildcards and must skip foreign traffic
cheaply; validation errors are for topics that look like ours but are wrong.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from core.errors import ValidationError
from core.model.ids import is_valid_device_id, validate_device_id
from core.protocol.limits import MAX_TOPIC_SLASHES

SHADOW_PREFIX = "$aws/things/"


def _check_org(org: str) -> str:
    if not is_valid_device_id(org):
        raise ValidationError(
            f"organization {org!r} cannot be used in a topic; use 1-128 characters from "
            "A-Z a-z 0-9 : _ -"
        )
    return org


def _check_depth(topic: str) -> str:
    if topic.count("/") > MAX_TOPIC_SLASHES:
        raise ValidationError(
            f"topic {topic!r} has {topic.count('/')} slashes; AWS IoT allows {MAX_TOPIC_SLASHES}"
        )
    return topic


def telemetry_topic(org: str, device_id: str) -> str:
    return f"dt/{_check_org(org)}/{validate_device_id(device_id)}/telemetry"


def status_topic(org: str, device_id: str) -> str:
    return f"dt/{_check_org(org)}/{validate_device_id(device_id)}/status"


def command_request_topic(org: str, device_id: str) -> str:
    return f"cmd/{_check_org(org)}/{validate_device_id(device_id)}/req"


def command_response_topic(org: str, device_id: str) -> str:
    return f"cmd/{_check_org(org)}/{validate_device_id(device_id)}/res"


# Filters the hub subscribes with (one SUBSCRIBE, well under the 8-filter limit).
TELEMETRY_FILTER = "dt/+/+/telemetry"
STATUS_FILTER = "dt/+/+/status"
COMMAND_RESPONSE_FILTER = "cmd/+/+/res"
# The hub's heartbeat: retained, with a retained Last Will saying offline; only
# the hub writes it, consoles read it (docs/protocol.md "The hub's heartbeat").
HUB_STATUS_TOPIC = "smartiot/hub/status"
# Alerts raised and resolved, per organization, for consoles on the AWS backend
# (the stream consumer publishes them; docs/aws.md "Stream processing").
ALERTS_FILTER = "smartiot/+/alerts"


def alerts_topic(org: str) -> str:
    return f"smartiot/{_check_org(org)}/alerts"


class DataKind(enum.StrEnum):
    TELEMETRY = "telemetry"
    STATUS = "status"
    COMMAND_REQUEST = "req"
    COMMAND_RESPONSE = "res"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    kind: DataKind
    org: str
    device_id: str


def parse_device_topic(topic: str) -> DeviceTopic | None:
    """Parse ``dt/{org}/{id}/telemetry|status`` and ``cmd/{org}/{id}/req|res``.

    Returns None for foreign topics; raises ValidationError when the shape is
    ours but the device id is not legal (the hub quarantines such messages)."""
    parts = topic.split("/")
    if len(parts) != 4:
        return None
    root, org, device_id, leaf = parts
    if root == "dt" and leaf in ("telemetry", "status"):
        kind = DataKind(leaf)
    elif root == "cmd" and leaf in ("req", "res"):
        kind = DataKind.COMMAND_REQUEST if leaf == "req" else DataKind.COMMAND_RESPONSE
    else:
        return None
    validate_device_id(device_id)
    _check_org(org)
    return DeviceTopic(kind, org, device_id)


# ------------------------------------------------------------------ shadows
class ShadowOp(enum.StrEnum):
    GET = "get"
    UPDATE = "update"
    DELETE = "delete"


def shadow_topic(thing: str, op: ShadowOp, suffix: str = "") -> str:
    """``$aws/things/{thing}/shadow/{op}[/{suffix}]``; suffix is accepted, rejected,
    delta or documents."""
    if suffix and suffix not in ("accepted", "rejected", "delta", "documents"):
        raise ValidationError(f"shadow topic suffix {suffix!r} is not one of "
                              "accepted, rejected, delta, documents")
    base = f"{SHADOW_PREFIX}{validate_device_id(thing)}/shadow/{op.value}"
    return _check_depth(f"{base}/{suffix}" if suffix else base)


@dataclass(frozen=True, slots=True)
class ShadowTopic:
    thing: str
    op: ShadowOp
    suffix: str


def parse_shadow_topic(topic: str) -> ShadowTopic | None:
    if not topic.startswith(SHADOW_PREFIX):
        return None
    parts = topic[len(SHADOW_PREFIX):].split("/")
    if len(parts) not in (3, 4) or parts[1] != "shadow":
        return None
    try:
        op = ShadowOp(parts[2])
    except ValueError:
        return None
    suffix = parts[3] if len(parts) == 4 else ""
    if suffix not in ("", "accepted", "rejected", "delta", "documents"):
        return None
    if not is_valid_device_id(parts[0]):
        return None
    return ShadowTopic(parts[0], op, suffix)


# ------------------------------------------------------------------ jobs
def jobs_topic(thing: str, *tail: str) -> str:
    """``$aws/things/{thing}/jobs/...``: e.g. ("notify-next",), ("start-next", "accepted"),
    ("$next", "get"), (job_id, "update", "rejected")."""
    return _check_depth("/".join((f"{SHADOW_PREFIX}{validate_device_id(thing)}/jobs", *tail)))


@dataclass(frozen=True, slots=True)
class JobsTopic:
    thing: str
    tail: tuple[str, ...]


def parse_jobs_topic(topic: str) -> JobsTopic | None:
    if not topic.startswith(SHADOW_PREFIX):
        return None
    parts = topic[len(SHADOW_PREFIX):].split("/")
    if len(parts) < 3 or parts[1] != "jobs" or not is_valid_device_id(parts[0]):
        return None
    return JobsTopic(parts[0], tuple(parts[2:]))
