"""A small fleet with recent simulated telemetry, alerts and a rule, for the
Analytics GUI tests and screenshots (written through the real SQL store)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import update

from core.model import (
    Alert,
    AlertRule,
    Device,
    DeviceStatus,
    Location,
    Reading,
    RuleScope,
    Severity,
)
from core.model.timeutil import from_epoch_ms
from core.store import Store
from core.store.schema import telemetry_message
from core.store.telemetry import slots_of
from tests.integration.analytics.fleet_data import write_simulated

ENV = tuple(f"env-{i:05d}" for i in range(1, 7))
PUMPS = tuple(f"pump-{i:05d}" for i in range(1, 5))
STATUSES = (DeviceStatus.ONLINE, DeviceStatus.ONLINE, DeviceStatus.WARNING,
            DeviceStatus.ONLINE, DeviceStatus.ERROR, DeviceStatus.OFFLINE)
HOURS = 3
INTERVAL_S = 5.0
SPIKE_DEVICE, SPIKE_OFFSET_S, SPIKE_C = ENV[0], 2 * 3600, 12.0


ORGANIZATION = "demo"


def seed_fleet(store: Store, now: datetime | None = None) -> datetime:
    """Returns the start of the telemetry (``HOURS`` before ``now``, on a whole second).

    env-00001 has one temperature spike at start + 2 h; every device is silent
    for 10 minutes from start + 1 h (a site power cut); firmware and locations
    vary so the dashboard has something to show. The devices belong to the
    ``local`` profile's organization ("demo"), the one the console's person
    works in: the analytics use cases show only that organization's devices."""
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    start = now - timedelta(hours=HOURS)
    devices = [
        Device(d, device_type="environmental", status=STATUSES[i % len(STATUSES)],
               organization=ORGANIZATION,
               firmware_version=("1.4.2", "1.5.0", "1.5.0")[i % 3],
               location=Location(52.50 + 0.01 * i, 13.40 + 0.015 * (i % 3)))
        for i, d in enumerate(ENV)
    ] + [
        Device(p, device_type="pump", status=DeviceStatus.ONLINE, firmware_version="2.0.1",
               organization=ORGANIZATION,
               location=Location(52.47 + 0.01 * i, 13.35))
        for i, p in enumerate(PUMPS)
    ]
    store.registry.upsert_many(devices)
    silent = [(3600, 3600 + 600)]
    write_simulated(store.telemetry, ENV, start=start, seconds=HOURS * 3600,
                    interval_s=INTERVAL_S, silent=silent, metrics=("temperature", "humidity"))
    write_simulated(store.telemetry, PUMPS, model="pump", start=start, seconds=HOURS * 3600,
                    interval_s=INTERVAL_S, silent=silent, metrics=("load", "temperature"))
    spike_at = start + timedelta(seconds=SPIKE_OFFSET_S)
    normal = store.telemetry.query(SPIKE_DEVICE, "temperature", spike_at,
                                   spike_at + timedelta(seconds=1)).value
    # Overwrite the reading at the spike time (write_batch ignores duplicates).
    # A message row holds the reading in its set's column for the metric.
    with store.engine.begin() as conn:
        for metric_set, slot in slots_of(conn, "temperature"):
            conn.execute(update(telemetry_message).where(
                telemetry_message.c.device_id == SPIKE_DEVICE,
                telemetry_message.c.metric_set == metric_set,
                telemetry_message.c.ts == int(spike_at.timestamp() * 1000)).values(
                {f"v{slot}": float(normal[0]) + SPIKE_C}))
    rng = np.random.default_rng(3)
    ts = np.arange(int(start.timestamp()), int(now.timestamp()), 30) * 1000
    rssi = []
    for i, device in enumerate(devices):
        alive = ts if i % 5 else ts[ts < ts[len(ts) * 2 // 3]]  # some went quiet
        rssi += [Reading(device.device_id, "rssi", from_epoch_ms(int(t)),
                         float(-60 - 10 * rng.random())) for t in alive]
    store.telemetry.write_batch(rssi)
    store.rules.add(AlertRule("Too warm", "threshold",
                              {"metric": "temperature", "op": "above", "limit": 26.0},
                              Severity.WARNING, RuleScope(), rule_id="too-warm"))
    for k in range(18):
        device = (ENV + PUMPS)[k % 10]
        created = now - timedelta(minutes=37 * k + 5)
        store.alerts.add(Alert(device, "too-warm", (Severity.WARNING, Severity.CRITICAL,
                                                    Severity.INFO)[k % 3],
                               "temperature above 26 °C", 27.5, created_at=created,
                               updated_at=created))
    return start
