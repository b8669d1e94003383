"""SQL device registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, Select, case, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

from core.errors import ConcurrentModification, NotFound
from core.model import Device, DeviceStatus, Location
from core.ports.registry import DeviceQuery, DeviceRegistry
from core.store._sql import chunked, dialect_insert, on_conflict_update
from core.store.schema import DeviceRow, DeviceTagRow, table_of

_devices = table_of(DeviceRow)
_tags = table_of(DeviceTagRow)


class SqlDeviceRegistry(DeviceRegistry):
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def upsert(self, device: Device) -> None:
        self.upsert_many([device])

    def upsert_many(self, devices: Sequence[Device]) -> None:
        """Core ``ON CONFLICT`` upsert: ingestion registers devices in batches and
        several processes may register the same device at once."""
        latest = {d.device_id: d for d in devices}  # last one wins within a batch
        if not latest:
            return
        rows = [_to_row(d) for d in latest.values()]
        tag_rows = [{"device_id": d.device_id, "tag": t} for d in latest.values() for t in d.tags]
        with self._engine.begin() as conn:
            base = dialect_insert(conn.dialect.name, _devices)
            # every column takes the incoming value except the version, which
            # counts the saves, so an If-Match read before this one goes stale
            set_: dict[str, Any] = {c.name: base.excluded[c.name] for c in _devices.columns
                                    if c.name not in ("device_id", "version")}
            set_["version"] = _devices.c.version + 1
            conn.execute(on_conflict_update(base, set_=set_), rows)
            for ids in chunked(list(latest)):
                conn.execute(delete(_tags).where(_tags.c.device_id.in_(ids)))
            if tag_rows:
                conn.execute(insert(_tags), tag_rows)

    def save(self, device: Device, *, expected_version: int | None = None) -> Device:
        """One conditional UPDATE (``WHERE version = expected``), so of two
        people saving from the same version exactly one wins on SQLite and
        PostgreSQL alike."""
        row = _to_row(device)
        del row["device_id"], row["version"]
        where = [_devices.c.device_id == device.device_id]
        if expected_version is not None:
            where.append(_devices.c.version == expected_version)
        with self._engine.begin() as conn:
            result = conn.execute(update(_devices).where(*where)
                                  .values(**row, version=_devices.c.version + 1))
            if result.rowcount == 0:
                raise _missing_or_stale(conn, device.device_id, expected_version)
            conn.execute(delete(_tags).where(_tags.c.device_id == device.device_id))
            if device.tags:
                conn.execute(insert(_tags), [{"device_id": device.device_id, "tag": t}
                                             for t in device.tags])
        return self.get(device.device_id)

    def record_activity(self, devices: Sequence[Device]) -> None:
        """New devices are inserted whole (with tags); for known ones only the
        traffic-derived columns change, and never on a decommissioned row, so a
        person's edits and decisions win over the hub's cached copy."""
        latest = {d.device_id: d for d in devices}
        if not latest:
            return
        rows = [_to_row(d) for d in latest.values()]
        with self._engine.begin() as conn:
            base = dialect_insert(conn.dialect.name, _devices)
            stmt = on_conflict_update(
                base,
                set_={
                    "last_seen": func.coalesce(base.excluded.last_seen, _devices.c.last_seen),
                    "status": base.excluded.status,
                    "firmware_version": func.coalesce(base.excluded.firmware_version,
                                                      _devices.c.firmware_version),
                    "updated_at": base.excluded.updated_at,
                    # a device first heard of through a bare Last Will is "generic"
                    # until its first telemetry says what it is
                    "device_type": case((_devices.c.device_type == "generic",
                                         base.excluded.device_type),
                                        else_=_devices.c.device_type),
                },
                where=_devices.c.status != "decommissioned",
            )
            existing = set(conn.execute(
                select(_devices.c.device_id).where(_devices.c.device_id.in_(list(latest)))
            ).scalars())
            conn.execute(stmt, rows)
            new_tags = [{"device_id": d.device_id, "tag": t} for d in latest.values()
                        if d.device_id not in existing for t in d.tags]
            if new_tags:
                conn.execute(insert(_tags), new_tags)

    def get(self, device_id: str) -> Device:
        device = self.find(device_id)
        if device is None:
            raise NotFound(f"device {device_id!r} is not registered")
        return device

    def find(self, device_id: str) -> Device | None:
        with self._sessions() as session:
            row = session.get(DeviceRow, device_id)
            return None if row is None else _to_domain(row, _tags_of(session, [device_id]))

    def find_many(self, device_ids: Sequence[str]) -> dict[str, Device]:
        ids = list(dict.fromkeys(device_ids))
        with self._sessions() as session:
            rows = [row for part in chunked(ids) for row in session.scalars(
                select(DeviceRow).where(DeviceRow.device_id.in_(part)))]
            tags = _tags_of(session, [r.device_id for r in rows])
            return {r.device_id: _to_domain(r, tags) for r in rows}

    def statuses(self) -> dict[str, DeviceStatus]:
        with self._engine.connect() as conn:
            return {device_id: DeviceStatus.parse(status) for device_id, status in conn.execute(
                select(_devices.c.device_id, _devices.c.status))}

    def list(self, query: DeviceQuery | None = None) -> list[Device]:
        query = query or DeviceQuery()
        stmt = _filtered(select(DeviceRow), query).order_by(DeviceRow.device_id)
        if query.after:
            stmt = stmt.where(DeviceRow.device_id > query.after)  # keyset: the primary key
        if query.offset:
            stmt = stmt.offset(query.offset)
        if query.limit is not None:
            stmt = stmt.limit(query.limit)
        with self._sessions() as session:
            rows = list(session.scalars(stmt))
            tags = _tags_of(session, [r.device_id for r in rows])
            return [_to_domain(r, tags) for r in rows]

    def count(self, query: DeviceQuery | None = None) -> int:
        stmt = _filtered(select(func.count()).select_from(DeviceRow), query or DeviceQuery())
        with self._sessions() as session:
            return int(session.scalar(stmt) or 0)

    def delete(self, device_id: str, *, expected_version: int | None = None) -> None:
        where = [_devices.c.device_id == device_id]
        if expected_version is not None:
            where.append(_devices.c.version == expected_version)
        with self._engine.begin() as conn:
            result = conn.execute(delete(_devices).where(*where))
            if result.rowcount == 0:
                raise _missing_or_stale(conn, device_id, expected_version)


def _missing_or_stale(conn: Connection, device_id: str,
                      expected_version: int | None) -> Exception:
    now = conn.execute(select(_devices.c.version)
                       .where(_devices.c.device_id == device_id)).scalar()
    if now is None:
        return NotFound(f"device {device_id!r} is not registered")
    return ConcurrentModification(
        f"device {device_id} changed since version {expected_version} (it is now version "
        f"{now}); read it again and retry")


def _filtered(stmt: Select[Any], q: DeviceQuery) -> Select[Any]:
    if q.text:
        needle = q.text.lower()
        stmt = stmt.where(
            or_(
                func.lower(DeviceRow.device_id).contains(needle, autoescape=True),
                func.lower(DeviceRow.name).contains(needle, autoescape=True),
                func.lower(DeviceRow.location_label).contains(needle, autoescape=True),
            )
        )
    if q.statuses:
        stmt = stmt.where(DeviceRow.status.in_(sorted(s.value for s in q.statuses)))
    if q.device_types:
        stmt = stmt.where(DeviceRow.device_type.in_(sorted(q.device_types)))
    if q.organizations:
        stmt = stmt.where(DeviceRow.organization.in_(sorted(q.organizations)))
    if q.tag:
        stmt = stmt.where(
            exists().where(DeviceTagRow.device_id == DeviceRow.device_id, DeviceTagRow.tag == q.tag)
        )
    if q.firmware_version:
        stmt = stmt.where(DeviceRow.firmware_version == q.firmware_version)
    return stmt


def _tags_of(session: Session, device_ids: Sequence[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for ids in chunked(device_ids):
        for device_id, tag in session.execute(
            select(DeviceTagRow.device_id, DeviceTagRow.tag).where(DeviceTagRow.device_id.in_(ids))
        ):
            found.setdefault(device_id, set()).add(tag)
    return found


def _to_row(d: Device) -> dict[str, Any]:
    return {
        "device_id": d.device_id,
        "name": d.name,
        "device_type": d.device_type,
        "status": d.status.value,
        "organization": d.organization,
        "latitude": d.location.latitude if d.location else None,
        "longitude": d.location.longitude if d.location else None,
        "location_label": d.location.label if d.location else None,
        "firmware_version": d.firmware_version,
        "metadata": d.metadata,
        "created_at": d.created_at,
        "updated_at": d.updated_at,
        "last_seen": d.last_seen,
        "version": max(d.version, 1),
    }


def _to_domain(row: DeviceRow, tags: dict[str, set[str]]) -> Device:
    location = None
    if row.latitude is not None and row.longitude is not None:
        location = Location(row.latitude, row.longitude, row.location_label or "")
    return Device(
        device_id=row.device_id,
        name=row.name,
        device_type=row.device_type,
        status=row.status,  # type: ignore[arg-type]  # parsed by Device.__post_init__
        organization=row.organization,
        location=location,
        firmware_version=row.firmware_version,
        tags=frozenset(tags.get(row.device_id, ())),
        metadata=dict(row.meta),
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_seen=row.last_seen,
        version=row.version,
    )
