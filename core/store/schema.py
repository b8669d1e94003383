"""The database schema: typed ORM rows for records, Core tables for telemetry.

These classes describe the *current* schema; the Alembic scripts under
``migrations/versions`` build it with hand-written DDL, and a test compares the
two so they cannot drift. Rows are persistence shapes only: repositories map
them to the frozen domain dataclasses, so nothing above ``core.store`` sees
SQLAlchemy objects.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from core.ingest.batch import COLUMNS
from core.store.types import UTCDateTime

# Explicit constraint names so the migrations can name the same objects on
# every backend (SQLite batch mode needs names to alter constraints).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class DeviceRow(Base):
    __tablename__ = "devices"

    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    device_type: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    organization: Mapped[str] = mapped_column(String(128), index=True)
    latitude: Mapped[float | None] = mapped_column(Float)
    longitude: Mapped[float | None] = mapped_column(Float)
    location_label: Mapped[str | None] = mapped_column(String(200))
    firmware_version: Mapped[str | None] = mapped_column(String(64))
    # "metadata" is reserved on declarative classes, hence the attribute name.
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_seen: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1, server_default="1")


class DeviceTagRow(Base):
    """Tags get their own table so "devices with tag X" is an indexed lookup on
    both SQLite and PostgreSQL instead of dialect-specific JSON containment."""

    __tablename__ = "device_tags"

    device_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("devices.device_id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(64), primary_key=True, index=True)


class AlertRow(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_device_id_rule_id", "device_id", "rule_id"),)

    alert_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128))
    rule_id: Mapped[str] = mapped_column(String(128))
    severity: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    value: Mapped[float | None] = mapped_column(Float)
    state: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    ack_comment: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    snoozed_until: Mapped[datetime | None]
    # Optimistic lock: saves are UPDATE ... WHERE version = expected.
    version: Mapped[int] = mapped_column(Integer)
    resolve_comment: Mapped[str | None] = mapped_column(Text)


class AlertEventRow(Base):
    """One change of an alert, written in the transaction of the change: the
    history a reopened alert keeps (migration 0007)."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_alert_id", "alert_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(128))
    comment: Mapped[str] = mapped_column(Text, server_default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    version: Mapped[int] = mapped_column(Integer)


class FirmwareRow(Base):
    """``version`` holds the SemVer without build metadata, because SemVer
    precedence ignores build metadata: 1.2.0+a and 1.2.0+b are the same release
    and the unique constraint must say so. ``build`` keeps the rest for round-trips."""

    __tablename__ = "firmware"
    __table_args__ = (UniqueConstraint("device_type", "version"),)

    firmware_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    device_type: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(128))
    build: Mapped[str] = mapped_column(String(128))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary)
    signing_key_id: Mapped[str] = mapped_column(String(64), server_default="")
    release_notes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


class FirmwareImageRow(Base):
    """Image bytes apart from metadata so listing the library never loads blobs."""

    __tablename__ = "firmware_images"

    firmware_id: Mapped[str] = mapped_column(
        String(200), ForeignKey("firmware.firmware_id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)


class DeploymentRow(Base):
    __tablename__ = "deployments"

    deployment_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    firmware_id: Mapped[str] = mapped_column(String(200))
    targets: Mapped[list[str]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str] = mapped_column(String(128))
    rollout: Mapped[dict[str, Any]] = mapped_column(JSON)
    abort: Mapped[dict[str, Any]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    updated_at: Mapped[datetime]
    document: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    target_spec: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")
    reason: Mapped[str] = mapped_column(Text, server_default="")
    rollout_state: Mapped[dict[str, Any]] = mapped_column(JSON, server_default="{}")


class ExecutionRow(Base):
    __tablename__ = "executions"
    # Devices ask "what is my next job?": (device_id, status) answers it; the
    # monitor and the abort check count a deployment's executions per status.
    __table_args__ = (
        Index("ix_executions_device_id_status", "device_id", "status"),
        Index("ix_executions_deployment_id_status", "deployment_id", "status"),
    )

    deployment_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("deployments.deployment_id", ondelete="CASCADE"), primary_key=True
    )
    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    version_number: Mapped[int] = mapped_column(Integer)
    status_details: Mapped[dict[str, str]] = mapped_column(JSON)
    queued_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]
    execution_number: Mapped[int] = mapped_column(Integer, server_default="1")


class OutboxRow(Base):
    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_applied_at_next_attempt_at", "applied_at", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime]
    applied_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)


class AuditRow(Base):
    """Append-only hash chain. ``prev_hash`` is UNIQUE: two writers that read the
    same chain head cannot both append, so the chain can never fork."""

    __tablename__ = "audit"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ts: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(256))
    details: Mapped[dict[str, Any]] = mapped_column(JSON)
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AuditCheckpointRow(Base):
    """A signed note of the audit chain's head (core.store.audit_anchor).
    Checkpoints form their own chain through ``prev_mac`` (UNIQUE: no fork),
    so deleting one from the middle is caught as well."""

    __tablename__ = "audit_checkpoints"

    number: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[datetime]
    head_seq: Mapped[int] = mapped_column(Integer)
    head_hash: Mapped[str] = mapped_column(String(64))
    entry_count: Mapped[int] = mapped_column(Integer)
    prev_mac: Mapped[str] = mapped_column(String(64), unique=True)
    key_id: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AlertRuleRow(Base):
    """``scope`` is ``RuleScope.as_dict()`` (sorted lists); ``params`` belong to
    the rule type, so they stay an opaque JSON object here."""

    __tablename__ = "alert_rules"

    rule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    rule_type: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    severity: Mapped[str] = mapped_column(String(16))
    scope: Mapped[dict[str, list[str]]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean)
    auto_resolve: Mapped[bool] = mapped_column(Boolean)
    escalate_after_s: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Optimistic lock, as for alerts: saves are UPDATE ... WHERE version = expected.
    version: Mapped[int] = mapped_column(Integer)


class ShadowRow(Base):
    """One classic (unnamed) shadow per device; ``version`` is the shadow
    document's own version and doubles as the optimistic lock."""

    __tablename__ = "shadows"

    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    desired: Mapped[dict[str, Any]] = mapped_column(JSON)
    reported: Mapped[dict[str, Any]] = mapped_column(JSON)
    version: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime | None]


class QuarantineRow(Base):
    """Messages the hub refused, kept (payload capped) so a technician can see why."""

    __tablename__ = "quarantine"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
    topic: Mapped[str] = mapped_column(Text)
    device_id: Mapped[str | None] = mapped_column(String(128), index=True)
    reason: Mapped[str] = mapped_column(String(64), index=True)
    detail: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class LinkStatsRow(Base):
    __tablename__ = "link_stats"

    device_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    received: Mapped[int] = mapped_column(BigInteger)
    lost: Mapped[int] = mapped_column(BigInteger)
    duplicates: Mapped[int] = mapped_column(BigInteger)
    out_of_order: Mapped[int] = mapped_column(BigInteger)
    rejected: Mapped[int] = mapped_column(BigInteger)
    reboots: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
    # boot detection across hub restarts (see core/ingest/sequence.py)
    last_uptime: Mapped[int | None] = mapped_column(BigInteger)
    last_ts_ms: Mapped[int | None] = mapped_column(BigInteger)
    boot_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    connected_at_ms: Mapped[int | None] = mapped_column(BigInteger)
    # seq gaps while the hub was down or disconnected: the hub's loss, not the device's
    hub_lost: Mapped[int] = mapped_column(BigInteger, server_default="0")


class CommandRow(Base):
    __tablename__ = "commands"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    device_id: Mapped[str] = mapped_column(String(128), index=True)
    command: Mapped[str] = mapped_column(String(128))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    requested_by: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    timeout_s: Mapped[float] = mapped_column(Float)


metadata = Base.metadata


def table_of(row_class: type[Base]) -> Table:
    """The Core table behind an ORM class, typed for Core statements."""
    return cast(Table, row_class.__table__)


# Telemetry is Core, not ORM: 10,000 devices at 1 Hz means bulk inserts and
# column reads, where per-row objects would be pure overhead.
#
# A row per message, its values in columns of their own (``v0`` .. ``v7``):
# which metric each column holds is said by the message's metric set
# (``telemetry_metric_slot``). Six rows a message, one per reading, were six
# insertions into the tree and 60,000 insertion points for 10,000 devices; a
# row per message costs a third of the CPU (docs/scaling.md, "The telemetry
# key"). Columns rather than one packed blob keep every read in SQL: a
# metric's value is a CASE on the set, and the view ``telemetry`` (below) gives
# the rows per reading that the reads, rollups and retention are written for.
# The key leads with the minute (ts // 60,000): a batch's inserts land in the
# newest minutes' part of the tree, whose size does not grow with the table.
# The set is in the key so that two messages of one time with different
# metrics (a device that sends each metric on its own) are both kept; a
# message of more than eight metrics is several rows, each its own set.
telemetry_message = Table(
    "telemetry_message",
    metadata,
    Column("minute", BigInteger, nullable=False),  # ts // 60,000
    Column("device_id", String(128), nullable=False),
    Column("ts", BigInteger, nullable=False),  # epoch milliseconds, UTC
    Column("metric_set", BigInteger, nullable=False),
    *(Column(f"v{i}", Float, nullable=True) for i in range(COLUMNS)),
    PrimaryKeyConstraint("minute", "device_id", "ts", "metric_set"),
    sqlite_with_rowid=False,
)

# A metric set: which metric each value column holds. Its id is a hash of the
# names in order (core/store/metric_sets.py), so writers in several processes
# agree on it without asking each other; keyed by metric first, a read of one
# metric finds the sets that hold it with one seek.
telemetry_metric_slot = Table(
    "telemetry_metric_slot",
    metadata,
    Column("metric", String(64), nullable=False),
    Column("metric_set", BigInteger, nullable=False),
    Column("slot", Integer, nullable=False),
    PrimaryKeyConstraint("metric", "metric_set", "slot"),
    Index("ix_telemetry_metric_slot_set", "metric_set", "slot", unique=True),
    sqlite_with_rowid=False,
)

# The readings as rows of (minute, device_id, metric, ts, value): a view over
# the two tables above (migration 0018 creates it), declared apart from
# ``metadata`` so that nothing creates it as a table or compares it as one.
views = MetaData()
telemetry = Table(
    "telemetry",
    views,
    Column("minute", BigInteger, nullable=False),
    Column("device_id", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
)

# Newest sample per (device, metric), maintained by write_batch: the device
# list and "latest values" panels would otherwise scan each device's history.
telemetry_latest = Table(
    "telemetry_latest",
    metadata,
    Column("device_id", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("ts", BigInteger, nullable=False),
    Column("value", Float, nullable=False),
    PrimaryKeyConstraint("device_id", "metric"),
)

# A writer that keeps telemetry_latest in memory (the hub) marks here from which
# reading time on the table may lag what is stored; the next start folds that in
# (core/store/latest_buffer.py).
telemetry_latest_pending = Table(
    "telemetry_latest_pending",
    metadata,
    Column("writer", String(64), primary_key=True),
    Column("since_ms", BigInteger, nullable=False),
)

telemetry_rollup = Table(
    "telemetry_rollup",
    metadata,
    Column("device_id", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("bucket_ms", BigInteger, nullable=False),
    Column("bucket_start", BigInteger, nullable=False),
    Column("min", Float, nullable=False),
    Column("avg", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "metric", "bucket_ms", "bucket_start"),
    sqlite_with_rowid=False,
)

# Per-minute min/max/sum/count of the raw rows, a cache the readers fold
# (core/store/telemetry.py, "Minute rollups"): a week overlay reads 10,080 rows
# per series instead of 604,800. Unlike telemetry_rollup the raw rows stay;
# telemetry_minute_mark says up to when each series is folded.
telemetry_minute = Table(
    "telemetry_minute",
    metadata,
    Column("device_id", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("minute_start", BigInteger, nullable=False),  # epoch ms, a multiple of 60,000
    Column("min", Float, nullable=False),
    Column("max", Float, nullable=False),
    Column("total", Float, nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("device_id", "metric", "minute_start"),
    sqlite_with_rowid=False,
)

telemetry_minute_mark = Table(
    "telemetry_minute_mark",
    metadata,
    Column("device_id", String(128), nullable=False),
    Column("metric", String(64), nullable=False),
    Column("until_ms", BigInteger, nullable=False),  # minutes before it are folded
    PrimaryKeyConstraint("device_id", "metric"),
    sqlite_with_rowid=False,
)

user_preferences = Table(
    "user_preferences",
    metadata,
    Column("user", String(128), primary_key=True),
    Column("prefs", JSON, nullable=False),
    Column("version", BigInteger, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

# Per hub session (its MQTT client id): when it was last known alive, and the
# recent periods it was down or disconnected (JSON [[start_ms, end_ms], ...]),
# so a seq gap found after a restart is booked against the hub.
hub_state = Table(
    "hub_state",
    metadata,
    Column("client_id", String(200), primary_key=True),
    Column("alive_at_ms", BigInteger, nullable=True),
    Column("outages", JSON, nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)

trusted_signing_keys = Table(
    "trusted_signing_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("owner", String(128), nullable=False),
    Column("public_pem", Text, nullable=False),
    Column("added_by", String(128), nullable=False),
    Column("added_at", UTCDateTime(), nullable=False),
    Column("revoked_by", String(128), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("note", String(500), nullable=False, server_default=""),
)

users = Table(
    "users",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("organization", String(128), nullable=False, server_default=""),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    Column("created_by", String(128), nullable=False, server_default=""),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_by", String(128), nullable=False, server_default=""),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("version", BigInteger, nullable=False),
    # argon2id (core.crypto.passwords); never read into UserAccount (migration 0012)
    Column("password_hash", String(255), nullable=True),
    Column("password_changed_at", UTCDateTime(), nullable=True),
    Index("ix_users_organization", "organization"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 hex of the token
    Column("user_name", String(128), nullable=False),
    Column("family", String(64), nullable=False),
    Column("issued_at", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    Column("used_at", UTCDateTime(), nullable=True),
    Column("revoked_at", UTCDateTime(), nullable=True),
    Column("client", String(128), nullable=False, server_default=""),
    Index("ix_refresh_tokens_user_name", "user_name"),
    Index("ix_refresh_tokens_family", "family"),
)

# The REST API's Idempotency-Key claims and stored answers (core.ports.idempotency).
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("caller", String(128), nullable=False),
    Column("idem_key", String(255), nullable=False),
    Column("request", String(600), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("status", Integer, nullable=True),  # None while the first request runs
    Column("response", Text, nullable=True),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("locked_until", UTCDateTime(), nullable=False),
    Column("expires_at", UTCDateTime(), nullable=False),
    PrimaryKeyConstraint("caller", "idem_key"),
    Index("ix_idempotency_keys_expires_at", "expires_at"),
)
