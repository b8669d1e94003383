from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from core.model import (
    Alert,
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
from core.model.link import CommandRecord, LinkStats, QuarantinedMessage
from core.model.rule import AlertRule
from core.ports.shadows import ShadowDocument
from core.store import Store, migrate
from core.store.schema import metadata

T0 = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
HEAD = "0019"


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
    assert migrate.current_revision(bare_engine) == migrate.head_revision() == HEAD
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
    assert len(store.deployments.release("ota-x", ["dev-1"])) == 1
    assert store.deployments.counts("ota-x") == {"QUEUED": 1, "PENDING": 0}
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
    assert migrate.current_revision(bare_engine) == HEAD


def test_store_open_is_idempotent(open_store: Callable[[], Store]) -> None:
    first = open_store()
    first.registry.upsert(Device("dev-9"))
    second = open_store()  # runs migrations again on an up-to-date database
    assert migrate.current_revision(second.engine) == HEAD
    assert second.registry.get("dev-9").device_id == "dev-9"


def test_up_to_date_check_agrees_with_alembic(bare_engine: Engine) -> None:
    """Start-up skips alembic when the schema is at head; the head read from
    the scripts' text must be alembic's own, and an older or a new database
    is never taken for current."""
    assert migrate.script_head() == migrate.head_revision() == HEAD
    assert not migrate.is_current(bare_engine)  # no alembic_version table at all
    migrate.upgrade(bare_engine, "0014")
    assert not migrate.is_current(bare_engine)
    migrate.upgrade(bare_engine)
    assert migrate.is_current(bare_engine)
    assert migrate.current_revision(bare_engine) == HEAD


def test_concurrent_first_opens_migrate_once(open_store: Callable[[], Store]) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: open_store(), range(4)))
    assert {migrate.current_revision(s.engine) for s in stores} == {HEAD}
    # alembic_version lives in the connection's own schema (search_path on PG).
    assert "alembic_version" in inspect(stores[0].engine).get_table_names()


def test_upgrade_from_0002_keeps_data_and_hub_tables_work(bare_engine: Engine) -> None:
    migrate.upgrade(bare_engine, "0002")
    assert migrate.current_revision(bare_engine) == "0002"
    assert "shadows" not in inspect(bare_engine).get_table_names()
    # The tables 0002 knows are unchanged by 0003, so today's repositories can
    # stand in for a 0002-era console writing them.
    old = Store(bare_engine)
    device = Device("dev-1", name="Old pump", created_at=T0, updated_at=T0)
    # 0010 added the device version: a 0002-era device row without it.
    with bare_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO devices (device_id, name, device_type, status, organization, "
                "metadata, created_at, updated_at) VALUES ('dev-1', 'Old pump', 'generic', "
                "'offline', 'default', '{}', :t, :t)"
            ),
            {"t": T0},
        )
    alert = _old_alert()
    # 0007 added an alert column and the alert history: a 0002-era alert row.
    with bare_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO alerts (alert_id, device_id, rule_id, severity, message, value, "
                "state, created_at, updated_at, version) VALUES (:aid, 'dev-1', "
                "'battery-low', 'critical', 'battery at 8 %', 8.0, 'active', :t, :t, 1)"
            ),
            {"aid": alert.alert_id, "t": T0},
        )
    # 0017 keyed telemetry by minute: a 0002-era reading and its latest value.
    with bare_engine.begin() as conn:
        for table in ("telemetry", "telemetry_latest"):
            conn.execute(text(f"INSERT INTO {table} (device_id, metric, ts, value)"
                              " VALUES ('dev-1', 'battery_pct', :ts, 88.0)"),
                         {"ts": int(T0.timestamp() * 1000)})
    image = b"fw-0002"
    fw = Firmware(SemVer.parse("2.0.0"), "pump", len(image), hashlib.sha256(image).hexdigest())
    # 0004 added firmware and deployment columns, so those rows are written as
    # a 0002-era console wrote them: only the 0002 columns.
    with bare_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO firmware (firmware_id, device_type, version, build, size, sha256, "
                "signature, release_notes, created_at) VALUES "
                "(:fid, 'pump', '2.0.0', '', :size, :sha, NULL, '', :t)"
            ),
            {"fid": fw.firmware_id, "size": fw.size, "sha": fw.sha256, "t": T0},
        )
        conn.execute(
            text("INSERT INTO firmware_images (firmware_id, data) VALUES (:fid, :data)"),
            {"fid": fw.firmware_id, "data": image},
        )
        conn.execute(
            text(
                "INSERT INTO deployments (deployment_id, firmware_id, targets, status, "
                "created_by, rollout, abort, description, created_at, updated_at) VALUES "
                "('ota-0002', :fw, '[\"dev-1\"]', 'IN_PROGRESS', 'alice', "
                "'{\"maximumPerMinute\": 5}', '{}', '', :t, :t)"
            ),
            {"fw": fw.firmware_id, "t": T0},
        )
        conn.execute(
            text(
                "INSERT INTO executions (deployment_id, device_id, status, version_number, "
                "status_details, queued_at, started_at, updated_at) VALUES "
                "('ota-0002', 'dev-1', 'QUEUED', 1, '{}', :t, NULL, :t)"
            ),
            {"t": T0},
        )
    old.outbox.enqueue("alert.ack", {"alert_id": alert.alert_id}, "key-0002")
    first = old.audit.append("alice", "firmware.add", fw.firmware_id)

    migrate.upgrade(bare_engine)
    assert migrate.current_revision(bare_engine) == HEAD
    store = Store(bare_engine)
    assert store.registry.get("dev-1") == device
    # a device from before 0010 starts at version 1; the next save makes it 2
    assert store.registry.get("dev-1").version == 1
    assert store.registry.save(device, expected_version=1).version == 2
    assert store.alerts.get(alert.alert_id) == alert
    assert [(e.kind, e.actor) for e in store.alerts.history(alert.alert_id)] == [
        ("raised", "system")]  # back-filled by 0007
    assert store.alerts.open_counts_by_device() == {"dev-1": 1}
    assert store.telemetry.latest_values(["battery_pct"]) == {"dev-1": {"battery_pct": 88.0}}
    assert store.telemetry.query("dev-1", "battery_pct", T0, T0 + timedelta(seconds=1)
                                 ).value.tolist() == [88.0]
    assert store.firmware.read_image("pump", fw.version) == image
    assert store.firmware.get_by_id(fw.firmware_id).key_id == ""
    assert [
        (e.device_id, e.execution_number) for e in store.deployments.executions("ota-0002")
    ] == [("dev-1", 1)]
    old_deployment = store.deployments.get("ota-0002")
    assert old_deployment.config.rollout.maximum_per_minute == 5
    assert (old_deployment.document, old_deployment.reason) == ({}, "")
    assert store.outbox.get("key-0002").payload == {"alert_id": alert.alert_id}
    assert store.audit.entries() == [first]
    assert store.audit.verify() is None

    rule = AlertRule("Battery low", "threshold", {"metric": "battery_pct", "op": "<", "value": 20})
    store.rules.add(rule)
    assert store.rules.get(rule.rule_id) == rule
    store.shadows.save(ShadowDocument("dev-1", {"led": "on"}, version=1), expected_version=None)
    store.quarantine.add_many([QuarantinedMessage("t", "bad_json", "x", b"{")])
    store.link_stats.upsert_many([LinkStats("dev-1", 1, received=1)])
    store.commands.add(CommandRecord("req-1", "dev-1", "reboot"))
    assert [c.request_id for c in store.commands.unfinished()] == ["req-1"]

    # And back: 0003's downgrade drops only its own tables.
    migrate.downgrade(bare_engine, "0002")
    tables = set(inspect(bare_engine).get_table_names())
    assert not tables & {"alert_rules", "shadows", "quarantine", "link_stats", "commands"}
    # (today's registry reads the version 0010 added, so the row is read by hand)
    with bare_engine.connect() as conn:
        kept = conn.execute(text("SELECT name FROM devices WHERE device_id = 'dev-1'")).scalar()
    assert kept == device.name


def _old_alert() -> Alert:
    return Alert(
        device_id="dev-1",
        rule_id="battery-low",
        severity=Severity.CRITICAL,
        message="battery at 8 %",
        value=8.0,
        created_at=T0,
        updated_at=T0,
    )
