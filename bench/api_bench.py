"""Lists through the REST API at fleet scale: 10,000 devices and 5,000 open
alerts through (a) the hub's API on SQLite and (b) the aws-local sandbox's API
(the Lambda handler behind the local Cognito authorizer) over moto's
DynamoDB, read with the console's HTTP client (plugins/api/client), and
(c) the console's devices page fed by that client from the hub's API.

Every figure has a baseline from the same run:

* (a) the store's own listing of the same devices (``registry.list``, one call);
* (b) a raw DynamoDB paginator Scan of the devices table (boto3, pages of 500);
* per-page server time of the deepest page against the first (keyset paging
  keeps them alike), and against the same deep page asked with an offset-only
  token (what every page cost before);
* (c) the GUI's 10 ms timer lateness with the page idle (same process), and the
  old one-answer load (``GET /devices/overview`` without ``limit``) for the
  time to the first rows.

    .venv/bin/python bench/api_bench.py                       # 10,000 devices, ~4 min
    .venv/bin/python bench/api_bench.py --devices 2000 --alerts 500 --phases hub,console
    .venv/bin/python bench/api_bench.py --json /tmp/api.json

Entry points for the suite: ``run(devices, alerts, phases)`` returns the
result dict; ``markdown_rows(result)`` renders it as table rows.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ORG = "demo"
PAGE = 500
PASSWORD = "Correct-Horse-9-Battery"
TICK_MS = 10


# ------------------------------------------------------------------ helpers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def _get_raw(base: str, token: str, path: str, query: str) -> tuple[float, bytes]:
    request = urllib.request.Request(f"{base}{path}?{query}",
                                     headers={"Authorization": f"Bearer {token}"})
    t = time.perf_counter()
    with urllib.request.urlopen(request, timeout=120) as reply:
        body = reply.read()
    return time.perf_counter() - t, body


def _raw_pages(base: str, token: str, path: str, extra: str = "") -> dict[str, Any]:
    """Every page of a listing with plain urllib: time to the first page, to
    the last, bytes, pages."""
    t0 = time.perf_counter()
    first_s = 0.0
    total_bytes, pages, items, nxt = 0, 0, 0, ""
    while True:
        query = f"limit={PAGE}" + (f"&next={nxt}" if nxt else "") + extra
        _s, body = _get_raw(base, token, path, query)
        pages += 1
        total_bytes += len(body)
        data = json.loads(body)["data"]
        items += len(data.get("items") or data.get("devices") or [])
        if pages == 1:
            first_s = time.perf_counter() - t0
        nxt = data.get("next") or ""
        if not nxt:
            break
    return {"first_page_s": first_s, "all_pages_s": time.perf_counter() - t0,
            "bytes": total_bytes, "pages": pages, "items": items}


def _server_pages(list_page: Callable[[str], Any], deep_offset_token: str) -> dict[str, Any]:
    """Per-page server time (the use case in this process, no HTTP), wall and
    this thread's CPU (which the box's load inflates far less): each page of
    the walk; then the first and the deepest page again, best of 3, and the
    deepest with an offset-only token (what every page cost before)."""
    list_page("")  # warm: clients, connections, the first query's plan
    times: list[float] = []
    cpus: list[float] = []
    nxt = ""
    last_token = ""
    while True:
        t0, c0 = time.perf_counter(), time.thread_time()
        page = list_page(nxt)
        times.append(time.perf_counter() - t0)
        cpus.append(time.thread_time() - c0)
        last_token = nxt
        if not page.next:
            break
        nxt = page.next

    def best(token: str) -> tuple[float, float]:
        runs = []
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.thread_time()
            list_page(token)
            runs.append((time.perf_counter() - t0, time.thread_time() - c0))
        return min(r[0] for r in runs), min(r[1] for r in runs)

    first_s, first_cpu = best("")
    deep_s, deep_cpu = best(last_token) if last_token else (first_s, first_cpu)
    offset_s, offset_cpu = best(deep_offset_token)
    return {"first_page_server_s": first_s, "first_page_cpu_s": first_cpu,
            "last_page_server_s": deep_s, "last_page_cpu_s": deep_cpu,
            "median_page_server_s": _pct(times, 0.5), "median_page_cpu_s": _pct(cpus, 0.5),
            "walk_server_s": sum(times), "walk_cpu_s": sum(cpus), "pages": len(times),
            "last_page_offset_token_server_s": offset_s,
            "last_page_offset_token_cpu_s": offset_cpu}


def _devices(n: int, org: str = ORG) -> list[Any]:
    from core.model import Device, DeviceStatus, Location

    return [Device(f"dev-{i:05d}", name=f"Pump {i}", device_type="pump", organization=org,
                   status=DeviceStatus.ONLINE if i % 4 else DeviceStatus.OFFLINE,
                   location=Location(52.0 + i / 1e5, 4.0, f"site {i % 50}"),
                   firmware_version="1.2.0", tags=frozenset({"bench"}))
            for i in range(n)]


def _alerts(n: int, devices: int) -> list[Any]:
    from core.model import Alert, Severity

    sev = list(Severity)
    return [Alert(f"dev-{(i * 7) % devices:05d}", f"rule-{i % 5}", sev[i % len(sev)],
                  f"bench alert {i}", value=float(i)) for i in range(n)]


def _readings(devices: int) -> list[Any]:
    from core.model import Reading

    now = datetime.now(UTC)
    return [r for i in range(devices) for r in (
        Reading(f"dev-{i:05d}", "battery_pct", now, 50.0 + i % 50),
        Reading(f"dev-{i:05d}", "rssi", now, -60.0 - i % 30))]


def _offset_token(offset: int) -> str:
    from core.services.fleet_view import encode_token

    return encode_token(offset)


# ------------------------------------------------------------------ (a) hub
def _serve_hub(db: str, keys: str, port: int) -> None:
    """Child process: the hub's API over the store (as `smartiot hub` serves it,
    without the rate limit so the bench measures the listing)."""
    from core.crypto.keystore import CodeSigningKeys
    from core.store import Store
    from core.store.preferences import SqlPreferenceStore
    from plugins.api.app import make_handler
    from plugins.api.auth import TokenSigner
    from plugins.api.wiring import build_api_services
    from plugins.api.wsgi import ApiWsgiApp, serve

    store = Store.open(db)
    services = build_api_services(_backend_over(store),
                                  signing_keys=CodeSigningKeys(Path(keys) / "codesign"),
                                  preferences=SqlPreferenceStore(store.engine))
    server = serve(ApiWsgiApp(make_handler(lambda: services), TokenSigner.from_dir(
        Path(keys) / "api")), "127.0.0.1", port)
    server.serve_forever()


def _backend_over(store: Any) -> Any:
    from core.ports.backend import Backend

    return Backend("local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, firmware=store.firmware,
                   deployments=store.deployments, rules=store.rules, audit=store.audit,
                   command_log=store.commands, trusted_keys=store.trusted_keys,
                   users=store.users, quarantine=store.quarantine, accounts=store.accounts)


class HubApi:
    """A seeded SQLite store and the hub's API on it in a child process."""

    def __init__(self, workdir: Path, devices: int, alerts: int) -> None:
        from core.store import Store

        self.db = f"sqlite:///{workdir / 'store.db'}"
        self.keys = workdir / "keys"
        self.store = Store.open(self.db)
        self.store.registry.upsert_many(_devices(devices))
        for alert in _alerts(alerts, devices):
            self.store.alerts.add(alert)
        self.store.telemetry.write_batch(_readings(devices))
        from core.model.roles import Role
        from plugins.api.auth import TokenSigner

        self.keys.mkdir(parents=True, exist_ok=True)
        # the signing key exists before the server starts, which then reads it
        self.token = TokenSigner.from_dir(self.keys / "api").issue("bench", Role.SUPPORT, ORG)
        self.port = _free_port()
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-hub", self.db, str(self.keys), str(self.port)],
            cwd=ROOT)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                _get_raw(self.base, self.token, "/devices", "limit=1")
                break
            except OSError:
                time.sleep(0.2)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.store.close()


def hub_phase(workdir: Path, devices: int, alerts: int) -> tuple[dict[str, Any], HubApi]:
    from core.model import AlertState
    from core.model.roles import Actor, Role
    from core.ports.registry import DeviceQuery
    from plugins.api.client import HttpFleetApi, StaticToken
    from plugins.api.wiring import build_api_services

    hub = HubApi(workdir, devices, alerts)
    out: dict[str, Any] = {"devices": devices, "alerts": alerts}
    base_s, base_rows = _timed(lambda: hub.store.registry.list(
        DeviceQuery(organizations=frozenset({ORG}))))
    out["baseline_store_list_s"] = base_s
    http = HttpFleetApi(hub.base, StaticToken(hub.token), retries=0)
    first_s, _ = _timed(lambda: http.devices.list(limit=PAGE))
    all_s, rows = _timed(http.devices.all)
    assert len(rows) == len(base_rows) == devices
    out["client_devices"] = {"first_page_s": first_s, "all_pages_s": all_s}
    out["raw_devices"] = _raw_pages(hub.base, hub.token, "/devices")
    out["raw_overview"] = _raw_pages(hub.base, hub.token, "/devices/overview")
    s, body = _get_raw(hub.base, hub.token, "/devices/overview", "")
    out["overview_one_answer"] = {"s": s, "bytes": len(body)}
    open_states = "active,acknowledged"
    out["raw_alerts"] = _raw_pages(hub.base, hub.token, "/alerts", f"&state={open_states}")
    a_first, _ = _timed(lambda: http.alerts.list_alerts(
        states=frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED}), limit=PAGE))
    out["client_alerts_first_page_s"] = a_first

    services = build_api_services(_backend_over(hub.store))
    actor = Actor("bench", Role.SUPPORT, ORG)
    out["server_devices"] = _server_pages(
        lambda t: services.devices.list(actor, limit=PAGE, next_token=t),
        _offset_token(max(0, devices - PAGE)))
    out["server_overview"] = _server_pages(
        lambda t: services.devices.overview_page(actor, limit=PAGE, next_token=t),
        _offset_token(max(0, devices - PAGE)))
    states = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
    out["server_alerts"] = _server_pages(
        lambda t: services.alerts.list_alerts(actor, states=states, limit=PAGE, next_token=t),
        _offset_token(max(0, alerts - PAGE)))
    return out, hub


# ------------------------------------------------------------------ (b) aws-local
def aws_phase(devices: int, alerts: int) -> dict[str, Any]:
    import boto3
    from moto.server import ThreadedMotoServer

    from core.model import AlertState
    from core.model.roles import Actor, Role
    from plugins.api.client import HttpFleetApi, StaticToken
    from plugins.api.wiring import build_api_services
    from plugins.aws.api_server import api_url, serve_api
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.cognito.pool import add_user_with_password, create_user_pool
    from plugins.aws.cognito.signin import CognitoPool, CognitoSignIn, Tokens
    from plugins.aws.dynamodb.tables import create_tables
    from plugins.aws.settings import AwsSettings

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        os.environ[name] = value
    port = _free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        settings = AwsSettings(region="eu-west-1", stage="bench", endpoint_url=endpoint)
        backend = build_aws_backend_for(settings)
        create_tables(backend.clients.dynamodb, settings)
        cognito = boto3.client("cognito-idp", region_name="eu-west-1", endpoint_url=endpoint)
        pool = create_user_pool(settings, cognito)
        from dataclasses import replace

        settings = replace(settings, user_pool_id=pool.user_pool_id,
                           user_pool_client_id=pool.client_id)
        add_user_with_password(cognito, pool.user_pool_id, "sue", Role.SUPPORT, ORG, PASSWORD)
        t_seed = time.perf_counter()
        backend.registry.devices.upsert_many(_devices(devices)) \
            if hasattr(backend.registry, "devices") else backend.registry.upsert_many(
                _devices(devices))
        _seed_dynamodb(backend.clients.dynamodb, settings, devices, alerts)
        seed_s = time.perf_counter() - t_seed
        print(f"aws-local seeded in {seed_s:.0f} s", file=sys.stderr)
        tokens = CognitoSignIn(CognitoPool.from_settings(settings)).sign_in("sue", PASSWORD)
        assert isinstance(tokens, Tokens)
        server = serve_api(settings, port=0)
        try:
            base, token = api_url(server), tokens.id_token
            out: dict[str, Any] = {"devices": devices, "alerts": alerts, "seed_s": seed_s}
            dynamodb = boto3.client("dynamodb", region_name="eu-west-1", endpoint_url=endpoint)
            t0 = time.perf_counter()
            scanned = 0
            first_scan = 0.0
            for page in dynamodb.get_paginator("scan").paginate(
                    TableName=settings.table("devices"), PaginationConfig={"PageSize": PAGE}):
                scanned += len(page["Items"])
                first_scan = first_scan or time.perf_counter() - t0
            out["baseline_scan"] = {"first_page_s": first_scan,
                                    "all_pages_s": time.perf_counter() - t0, "items": scanned}
            http = HttpFleetApi(base, StaticToken(token), retries=0)
            first_s, _ = _timed(lambda: http.devices.list(limit=PAGE))
            all_s, rows = _timed(http.devices.all)
            assert len(rows) == devices, len(rows)
            out["client_devices"] = {"first_page_s": first_s, "all_pages_s": all_s}
            out["raw_devices"] = _raw_pages(base, token, "/devices")
            out["raw_overview"] = _raw_pages(base, token, "/devices/overview")
            out["raw_alerts"] = _raw_pages(base, token, "/alerts",
                                           "&state=active,acknowledged")
            services = build_api_services(build_aws_backend_for(settings))
            actor = Actor("sue", Role.SUPPORT, ORG)
            out["server_devices"] = _server_pages(
                lambda t: services.devices.list(actor, limit=PAGE, next_token=t),
                _offset_token(max(0, devices - PAGE)))
            out["server_overview"] = _server_pages(
                lambda t: services.devices.overview_page(actor, limit=PAGE, next_token=t),
                _offset_token(max(0, devices - PAGE)))
            states = frozenset({AlertState.ACTIVE, AlertState.ACKNOWLEDGED})
            out["server_alerts"] = _server_pages(
                lambda t: services.alerts.list_alerts(actor, states=states, limit=PAGE,
                                                      next_token=t),
                _offset_token(max(0, alerts - PAGE)))
            return out
        finally:
            server.shutdown()
            server.server_close()
    finally:
        moto.stop()


def _seed_dynamodb(client: Any, settings: Any, devices: int, alerts: int) -> None:
    """Alerts and latest values written as the stores write their items, but
    25 to a BatchWriteItem: through the stores' conditional writes (one
    transaction per alert, one UpdateItem per device and metric) moto takes
    most of an hour to seed 10,000 devices."""
    from plugins.aws.dynamodb.alerts import _to_item as alert_item
    from plugins.aws.dynamodb.numbers import put_value
    from plugins.aws.dynamodb.paging import batch_put
    from plugins.aws.telemetry import names

    batch_put(client, settings.table("alerts"),
              [alert_item(a, ORG) for a in _alerts(alerts, devices)])
    latest = []
    for r in _readings(devices):
        item = {"device_id": {"S": names.device(r.device_id)},
                "metric": {"S": names.metric(r.metric)},
                "ts_ms": {"N": str(int(r.ts.timestamp() * 1000))}}
        put_value(item, "v", r.value)
        latest.append(item)
    batch_put(client, settings.table("telemetry-latest"), latest)


# ------------------------------------------------------------------ (c) console
def console_phase(hub: HubApi, devices: int, idle_s: float = 3.0) -> dict[str, Any]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from plugins.api.client import HttpFleetApi, StaticToken
    from plugins.devices.widgets.devices_page import DevicesPage

    app = QApplication.instance() or QApplication([])
    lates: list[float] = []
    last = [0.0]

    def tick() -> None:
        now = time.perf_counter()
        if last[0]:
            lates.append(max(0.0, (now - last[0]) * 1000 - TICK_MS))
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.setInterval(TICK_MS)
    timer.timeout.connect(tick)

    def spin(until: Callable[[], bool], limit_s: float) -> None:
        loop = QEventLoop()
        check = QTimer()
        check.setInterval(5)
        check.timeout.connect(lambda: loop.quit() if until() else None)
        check.start()
        QTimer.singleShot(int(limit_s * 1000), loop.quit)
        loop.exec()
        check.stop()

    http = HttpFleetApi(hub.base, StaticToken(hub.token), retries=0)
    http.actor  # noqa: B018  (signed in before the clock starts, as a console is)
    timer.start()
    spin(lambda: False, idle_s)  # baseline: the same process, the page not yet built
    idle = {"p99_ms": _pct(lates, 0.99), "max_ms": max(lates, default=0.0),
            "ticks": len(lates)}
    lates.clear()
    last[0] = 0.0
    out: dict[str, Any] = {"devices": devices, "idle_stall": idle}
    cpu0, gui0 = time.process_time(), time.thread_time()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        page = DevicesPage(api=http, saved_filters_path=Path(tmp) / "f.json")
        page.resize(1200, 800)
        page.show()
        first: list[float] = []
        page.model.modelReset.connect(lambda: first.append(time.perf_counter() - t0)
                                      if page.model.rowCount() else None)
        spin(lambda: page.model.rowCount() > 0, 120)
        first_rows_s = first[0] if first else time.perf_counter() - t0
        spin(lambda: page.model.rowCount() >= devices and not page.filling, 300)
        all_s = time.perf_counter() - t0
        out.update({"first_rows_s": first_rows_s, "all_rows_s": all_s,
                    "rows": page.model.rowCount(),
                    "fill_stall": {"p99_ms": _pct(lates, 0.99),
                                   "max_ms": max(lates, default=0.0), "ticks": len(lates)},
                    "process_cpu_s": time.process_time() - cpu0,
                    "gui_thread_cpu_s": time.thread_time() - gui0})
        page._background.cancel("sync")
        page.close()
        page.deleteLater()
        app.processEvents()
        out["one_answer_load"] = _one_answer_load(app, hub, lates, last, spin)
    timer.stop()
    return out


def _one_answer_load(app: Any, hub: HubApi, lates: list[float], last: list[float],
                     spin: Callable[[Callable[[], bool], float], None]) -> dict[str, Any]:
    """The load as it was: the whole table in one answer (``GET
    /devices/overview`` without ``limit``), read and decoded on a worker
    thread, then one reset of the same page's model on the GUI thread."""
    import threading

    from PySide6.QtWidgets import QTableView

    from core.model import Severity
    from core.ports.fleet_api.devices import FleetOverview
    from plugins.api.client import decode
    from plugins.devices.widgets.fleet_model import DeviceFilterProxy, FleetTableModel

    model, proxy, view = FleetTableModel(), DeviceFilterProxy(), QTableView()
    proxy.setSourceModel(model)
    view.setModel(proxy)
    view.resize(1200, 800)
    view.show()
    app.processEvents()
    got: list[Any] = []

    def fetch() -> None:
        s, body = _get_raw(hub.base, hub.token, "/devices/overview", "")
        d = json.loads(body)["data"]
        got.append((s, len(body), FleetOverview(
            [decode.device(x) for x in d["devices"]], d["latest_values"],
            {k: int(v) for k, v in d["alert_counts"].items()},
            {k: Severity(v) for k, v in d["worst"].items()})))

    lates.clear()
    last[0] = 0.0
    gui0 = time.thread_time()
    t0 = time.perf_counter()
    worker = threading.Thread(target=fetch)
    worker.start()
    spin(lambda: bool(got), 300)
    s, size, view_data = got[0]
    model.load(view_data.devices, view_data.latest_values, view_data.alert_counts,
               view_data.worst)
    spin(lambda: False, 0.5)  # the paint after the reset
    shown = time.perf_counter() - t0 - 0.5
    out = {"s": s, "bytes": size, "first_rows_s": shown, "rows": model.rowCount(),
           "stall": {"p99_ms": _pct(lates, 0.99), "max_ms": max(lates, default=0.0),
                     "ticks": len(lates)},
           "gui_thread_cpu_s": time.thread_time() - gui0}
    view.close()
    return out


# ------------------------------------------------------------------ run, render
def run(devices: int = 10_000, alerts: int = 5_000,
        phases: tuple[str, ...] = ("hub", "aws", "console")) -> dict[str, Any]:
    result: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                              "load_before": os.getloadavg(), "page": PAGE}
    with tempfile.TemporaryDirectory() as tmp:
        hub = None
        if "hub" in phases or "console" in phases:
            hub_result, hub = hub_phase(Path(tmp), devices, alerts)
            if "hub" in phases:
                result["hub"] = hub_result
        try:
            if "console" in phases and hub is not None:
                result["console"] = console_phase(hub, devices)
        finally:
            if hub is not None:
                hub.close()
    if "aws" in phases:
        result["aws"] = aws_phase(devices, alerts)
    result["load_after"] = os.getloadavg()
    return result


def _ms(s: float) -> str:
    return f"{s * 1000:,.0f} ms" if s < 10 else f"{s:,.1f} s"


def markdown_rows(result: dict[str, Any]) -> list[str]:
    rows = ["| What | Measured | Baseline (same run) | Ratio |", "|---|---|---|---|"]
    for name, label, base_key in (("hub", "hub API, SQLite", "baseline_store_list_s"),
                                  ("aws", "aws-local API, moto DynamoDB", "baseline_scan")):
        r = result.get(name)
        if not r:
            continue
        base = r[base_key] if isinstance(r[base_key], float) else r[base_key]["all_pages_s"]
        base_label = ("store's own listing, one call" if name == "hub"
                      else "raw DynamoDB paginator Scan, pages of 500")
        c, raw = r["client_devices"], r["raw_devices"]
        rows.append(f"| {label}: {r['devices']:,} devices, client, first page | "
                    f"{_ms(c['first_page_s'])} | {_ms(base)} ({base_label}, all) | "
                    f"{c['first_page_s'] / base:.2f} |")
        rows.append(f"| {label}: all {raw['pages']} pages (client) | {_ms(c['all_pages_s'])} | "
                    f"{_ms(base)} | {c['all_pages_s'] / base:.1f} |")
        rows.append(f"| {label}: bytes, devices list / overview pages | {raw['bytes']:,} / "
                    f"{r['raw_overview']['bytes']:,} B | | |")
        for key, what in (("server_devices", "devices page"),
                          ("server_overview", "overview page"),
                          ("server_alerts", "open-alerts page")):
            sp = r[key]
            rows.append(
                f"| {label}: server, last {what} of {sp['pages']}, wall / CPU | "
                f"{_ms(sp['last_page_server_s'])} / {_ms(sp['last_page_cpu_s'])} | "
                f"{_ms(sp['first_page_server_s'])} / {_ms(sp['first_page_cpu_s'])} (first "
                f"page) | {sp['last_page_cpu_s'] / max(sp['first_page_cpu_s'], 1e-6):.2f} "
                f"(CPU) |")
            if key == "server_alerts":
                continue  # alert pages are still cut by offset: no keyset token to compare
            rows.append(
                f"| {label}: same last {what}, offset-only token, wall / CPU | "
                f"{_ms(sp['last_page_offset_token_server_s'])} / "
                f"{_ms(sp['last_page_offset_token_cpu_s'])} | "
                f"{_ms(sp['last_page_server_s'])} / {_ms(sp['last_page_cpu_s'])} (keyset "
                f"token) | "
                f"{sp['last_page_offset_token_cpu_s'] / max(sp['last_page_cpu_s'], 1e-6):.2f}"
                f" (CPU) |")
        ra = r["raw_alerts"]
        rows.append(f"| {label}: {ra['items']:,} open alerts, all {ra['pages']} pages | "
                    f"{_ms(ra['all_pages_s'])} (first {_ms(ra['first_page_s'])}) | | |")
    c = result.get("console")
    if c:
        one = c["one_answer_load"]
        rows.append(f"| console devices page, {c['devices']:,} devices over HTTP: first rows "
                    f"shown | {_ms(c['first_rows_s'])} | {_ms(one['first_rows_s'])} (as "
                    f"before: the whole table in one answer, {one['bytes']:,} B, then one "
                    f"reset) | {c['first_rows_s'] / one['first_rows_s']:.2f} |")
        rows.append(f"| console: all rows in (pages of {result['page']}) | "
                    f"{_ms(c['all_rows_s'])} | {_ms(one['first_rows_s'])} | "
                    f"{c['all_rows_s'] / one['first_rows_s']:.2f} |")
        st, idle, old = c["fill_stall"], c["idle_stall"], one["stall"]
        rows.append(f"| console: 10 ms timer lateness while filling, p99 / max | "
                    f"{st['p99_ms']:.0f} / {st['max_ms']:.0f} ms | {old['p99_ms']:.0f} / "
                    f"{old['max_ms']:.0f} ms (one answer); {idle['p99_ms']:.0f} / "
                    f"{idle['max_ms']:.0f} ms (idle) | |")
        rows.append(f"| console: GUI-thread CPU for the load | {c['gui_thread_cpu_s']:.2f} s "
                    f"(process {c['process_cpu_s']:.2f} s) | {one['gui_thread_cpu_s']:.2f} s "
                    f"(one answer) | "
                    f"{c['gui_thread_cpu_s'] / max(one['gui_thread_cpu_s'], 1e-6):.2f} |")
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--alerts", type=int, default=5_000)
    parser.add_argument("--phases", default="hub,aws,console")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--serve-hub", nargs=3, metavar=("DB", "KEYS", "PORT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_hub:
        db, keys, port = args.serve_hub
        _serve_hub(db, keys, int(port))
        return {}
    result = run(args.devices, args.alerts, tuple(args.phases.split(",")))
    print("\n".join(markdown_rows(result)))
    print(f"load average before {result['load_before']}, after {result['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=str))
    return result


if __name__ == "__main__":
    main()
