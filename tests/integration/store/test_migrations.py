from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from core.model import (
    AlertState,
    Deployment,
    Device,
    DeviceStatus,
    Firmware,
    Location,
    Reading,
    SemVer,
    Severity,
)
from core.store import Store, migrate
from core.store.schema import metadata

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def _ts_literal(engine: Engine, moment: datetime) -> str:
    """How an 0001-era writer would have spelled a timestamp in plain SQL."""
    if engine.dialect.name == "sqlite":
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.isoformat()


def test_upgrade_from_0001_keeps_data_and_new_tables_work(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0001")
    assert migrate.current_revision(bare_engine) == "0001"
    assert "firmware" not in inspect(bare_engine).get_table_names()
    ts = _ts_literal(bare_engine, T0)
    with bare_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (device_id, name, device_type, status, organization,"
                " latitude, longitude, location_label, firmware_version, metadata,"
                " created_at, updated_at, last_seen) VALUES ('dev-1', 'Old pump', 'pump',"
                " 'online', 'acme', 10.5, 20.25, 'Shed', '1.0.0', :meta, :ts, :ts, NULL)"
            ),
            {"meta": '{"serial": 7}', "ts": ts},
        )
        conn.execute(text("INSERT INTO device_tags (device_id, tag) VALUES ('dev-1', 'north')"))
        conn.execute(
            text(
                "INSERT INTO alerts (alert_id, device_id, rule_id, severity, message, value,"
                " state, created_at, updated_at, acknowledged_at, acknowledged_by, ack_comment,"
                " resolved_at, resolved_by, version) VALUES ('a1', 'dev-1', 'temp-high',"
                " 'critical', 'hot', 99.5, 'active', :ts, :ts, NULL, NULL, NULL, NULL, NULL, 1)"
            ),
            {"ts": ts},
        )
        for i in range(5):
            conn.execute(
                text(
                    "INSERT INTO telemetry (device_id, metric, ts, value) VALUES (:d, :m, :t, :v)"
                ),
                {"d": "dev-1", "m": "temp", "t": 1_704_164_645_000 + i * 1000, "v": i * 1.5},
            )

    migrate.upgrade(bare_engine)
    assert migrate.current_revision(bare_engine) == migrate.head_revision() == "0002"
    store = Store(bare_engine)

    assert store.registry.get("dev-1") == Device(
        device_id="dev-1",
        name="Old pump",
        device_type="pump",
        status=DeviceStatus.ONLINE,
        organization="acme",
        location=Location(10.5, 20.25, "Shed"),
        firmware_version="1.0.0",
        tags=frozenset({"north"}),
        metadata={"serial": 7},
        created_at=T0,
        updated_at=T0,
    )
    alert = store.alerts.get("a1")
    assert (alert.state, alert.severity, alert.value, alert.created_at) == (
        AlertState.ACTIVE,
        Severity.CRITICAL,
        99.5,
        T0,
    )
    assert alert.snoozed_until is None
    snoozed = alert.snooze(T0 + timedelta(hours=1), at=T0)
    store.alerts.save(snoozed)
    assert store.alerts.get("a1").snoozed_until == T0 + timedelta(hours=1)

    series = store.telemetry.query("dev-1", "temp", T0, T0 + timedelta(minutes=1))
    assert series.value.tolist() == [0.0, 1.5, 3.0, 4.5, 6.0]
    store.telemetry.write_batch([Reading("dev-1", "temp", T0 + timedelta(seconds=10), 1.0)])
    assert store.telemetry.downsample_before(T0 + timedelta(minutes=1), 60_000) == 1

    image = b"firmware"
    fw = Firmware(SemVer.parse("1.1.0"), "pump", len(image), hashlib.sha256(image).hexdigest())
    store.firmware.add(fw, image)
    assert store.firmware.read_image("pump", fw.version) == image
    store.deployments.create(Deployment(fw.firmware_id, ("dev-1",), "ota-x"))
    assert len(store.deployments.executions("ota-x")) == 1
    assert store.outbox.enqueue("k", {"a": 1}, "key").id >= 1
    store.audit.append("alice", "migrate", "db")
    assert store.audit.verify() is None


def test_head_schema_matches_orm_metadata(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine)
    with bare_engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, metadata)
    assert diff == []


def test_downgrade_to_base_and_reopen(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine)
    migrate.downgrade(bare_engine, "base")
    assert migrate.current_revision(bare_engine) is None
    assert set(inspect(bare_engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(bare_engine)
    assert migrate.current_revision(bare_engine) == "0002"


def test_store_open_is_idempotent(open_store: Callable[[], Store]) -> None:
    first = open_store()
    first.registry.upsert(Device("dev-9"))
    second = open_store()  # runs migrations again on an up-to-date database
    assert migrate.current_revision(second.engine) == "0002"
    assert second.registry.get("dev-9").device_id == "dev-9"


def test_concurrent_first_opens_migrate_once(open_store: Callable[[], Store]) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(), range(4)))
    assert {migrate.current_revision(s.engine) for s in stores} == {"0002"}
    # alembic_version lives in the connection's own schema (search_path on PG).
    assert "alembic_version" in inspect(stores[0].engine).get_table_names()
