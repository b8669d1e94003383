"""Our deployment record in ``iot-deployments-{stage}``: what IoT Jobs does
not keep about a deployment.

IoT Jobs keeps the job (targets, document, rollout, abort, timeout and retry
configuration, status, executions). It does not keep which firmware release
the job rolls out, the target choice people made (filter, group or list), who
created it, the organizations it reaches, why it was canceled, or our own
bookkeeping (the rollout state, and the retry jobs that carry a second attempt
for devices that failed: IoT Jobs cannot requeue an execution of the same job,
so "retry the failed devices" is a new job, ``{deployment_id}-retry-{n}``).

One item per deployment, keyed by ``deployment_id``; ``kind`` (always
``deployment``) and ``created_key`` (creation time, then the id) make the
``CreatedIndex`` that lists them newest first without a Scan. ``status`` is
the last status read from IoT Jobs; once it is final (completed, canceled)
nobody asks IoT Jobs again, and once every execution has finished too, its
counts are stored (``final_counts``) so the deployments list reads no job."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.model import Deployment, DeploymentStatus
from core.model.rollout import JobConfig
from plugins.aws.dynamodb.codec import (
    Item,
    get_json,
    get_stamps,
    get_str,
    iso,
    put_json,
    put_str,
    put_time,
)
from plugins.aws.dynamodb.tables import DEPLOYMENTS_PARTITION

FINAL = frozenset({DeploymentStatus.COMPLETED, DeploymentStatus.CANCELED})


@dataclass(frozen=True, slots=True)
class Attempt:
    """One IoT job of a deployment: the first carries every target, each
    retry job the devices retried in it."""

    job_id: str
    devices: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    deployment: Deployment
    attempts: tuple[Attempt, ...]
    organizations: tuple[str, ...] = ()
    force_canceled: bool = False
    # the counts once nothing can change them any more (set by the port)
    final_counts: dict[str, int] | None = None

    @property
    def deployment_id(self) -> str:
        return self.deployment.deployment_id

    @property
    def is_final(self) -> bool:
        return self.deployment.status in FINAL

    def with_status(self, status: DeploymentStatus) -> DeploymentRecord:
        return replace(self, deployment=replace(self.deployment, status=status))


def created_key(deployment: Deployment) -> str:
    return f"{iso(deployment.created_at)}#{deployment.deployment_id}"


def to_item(record: DeploymentRecord) -> Item:
    d = record.deployment
    item: Item = {"deployment_id": {"S": d.deployment_id},
                  "kind": {"S": DEPLOYMENTS_PARTITION},
                  "created_key": {"S": created_key(d)},
                  "firmware_id": {"S": d.firmware_id},
                  "status": {"S": d.status.value},
                  "attempt_count": {"N": str(len(record.attempts))}}
    put_json(item, "targets", list(d.targets))
    put_str(item, "created_by", d.created_by)
    put_json(item, "config", d.config.to_aws())
    put_json(item, "document", d.document)
    put_json(item, "target_spec", d.target_spec)
    put_str(item, "reason", d.reason)
    put_json(item, "rollout_state", d.rollout_state)
    put_str(item, "description", d.description)
    put_time(item, "created_at", d.created_at)
    put_time(item, "updated_at", d.updated_at)
    put_json(item, "attempts", [{"job_id": a.job_id, "devices": list(a.devices)}
                                for a in record.attempts])
    put_json(item, "organizations", list(record.organizations))
    if record.force_canceled:
        item["force_canceled"] = {"BOOL": True}
    return item


def from_item(item: Item) -> DeploymentRecord:
    created, updated = get_stamps(item, "deployment records")
    deployment = Deployment(
        deployment_id=str(get_str(item, "deployment_id")),
        firmware_id=str(get_str(item, "firmware_id")),
        targets=tuple(get_json(item, "targets", [])),
        status=DeploymentStatus(get_str(item, "status") or DeploymentStatus.SCHEDULED.value),
        created_by=get_str(item, "created_by") or "",
        config=JobConfig.from_aws(get_json(item, "config", {})),
        document=get_json(item, "document", {}),
        target_spec=get_json(item, "target_spec", {}),
        reason=get_str(item, "reason") or "",
        rollout_state=get_json(item, "rollout_state", {}),
        description=get_str(item, "description") or "",
        created_at=created, updated_at=updated)
    attempts = tuple(Attempt(str(a["job_id"]), tuple(a["devices"]))
                     for a in get_json(item, "attempts", []))
    return DeploymentRecord(deployment, attempts,
                            tuple(get_json(item, "organizations", [])),
                            bool(item.get("force_canceled", {}).get("BOOL", False)),
                            get_json(item, "final_counts", None))
