"""One scenario, three front ends, one outcome: register a device, acknowledge
an alert and create a deployment through the Qt pages (real widgets, clicks
and dialogs), through the ``smartiot`` CLI (subprocesses) and through the REST
API (the WSGI adapter over HTTP), each on a fresh store seeded alike. The
stored results and the audit entries (actions, subjects, outcomes, roles)
must be the same: every front end calls the same use cases.

Ids that are random by design (a deployment's) and timestamps are left out of
the comparison; everything a person or an auditor reads is compared. The
stores are SQLite files, and PostgreSQL schemas when SMARTIOT_TEST_PG_URL is set.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from core.config import load_config
from core.context import AppContext
from core.crypto.keystore import CodeSigningKeys
from core.hookspecs import hookimpl
from core.model import Alert, Device, Firmware, SemVer, Severity
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.ports.backend import Backend
from core.ports.signing_keys import TrustedKey
from core.registrations import BackendSpec
from core.store import Store, create_store_engine
from tests.integration.api.conftest import start_api

pytestmark = [pytest.mark.gui]

ORG = "demo"  # the profile's organization: the CLI acts in it, the others are told so
ALERT_ID = "a1b2" * 8
IMAGE = b"pump firmware 2.0.0" * 64
FIRMWARE_ID = "pump@2.0.0"
NEW_DEVICE = {"device_id": "pump-7", "device_type": "pump", "name": "Pump 7",
              "tags": ["hall-a"]}
COMMENT = "on my way"
DESCRIPTION = "spring rollout"
TARGETS = ("pump-1", "pump-7")
# The wizard's suggested rollout (what a person who clicks through gets); the
# CLI and the API are given the same settings explicitly.
ROLLOUT = {"jobExecutionsRolloutConfig": {"maximumPerMinute": 20},
           "abortConfig": {"criteriaList": [{"failureType": "ALL", "action": "CANCEL",
                                             "thresholdPercentage": 10.0,
                                             "minNumberOfExecutedThings": 10}]},
           "timeoutConfig": {"inProgressTimeoutInMinutes": 30}}
WAIT_MS = 30_000


def _user() -> str:
    return pwd.getpwuid(os.getuid()).pw_name


def _seed(store: Store, keys_dir: Path) -> None:
    """Two pumps, an open alert with a fixed id, and a pump image signed by a key
    the store trusts (each front end signs with its own data dir's key)."""
    store.registry.upsert_many([Device(f"pump-{n}", device_type="pump", organization=ORG,
                                       firmware_version="1.0.0") for n in (1, 2)])
    store.alerts.add(Alert("pump-1", "rule-high", Severity.WARNING, "pressure high", 9.5,
                           alert_id=ALERT_ID))
    signing = CodeSigningKeys(keys_dir)
    signature, key_id = signing.sign(IMAGE)
    store.trusted_keys.add(TrustedKey(key_id, _user(), signing.public_path.read_bytes(),
                                      added_by="admin", added_at=datetime.now(UTC)))
    store.firmware.add(Firmware(SemVer.parse("2.0.0"), "pump", len(IMAGE),
                                hashlib.sha256(IMAGE).hexdigest(), signature, key_id), IMAGE)


def _outcome(store: Store) -> dict[str, Any]:
    """What each front end left in its store, without ids and times."""
    device = store.registry.get("pump-7")
    alert = store.alerts.get(ALERT_ID)
    (deployment,) = store.deployments.list()
    trail = [(e.actor, e.action, "<deployment>" if e.subject == deployment.deployment_id
              else e.subject, e.details.get("outcome", "done"), e.details.get("role"),
              e.details.get("organization"))
             for e in store.audit.search(None) if not e.action.startswith("audit.")]
    return {
        "device": (device.device_id, device.name, device.device_type, device.organization,
                   sorted(device.tags), device.status.value),
        "alert": (alert.state.value, alert.acknowledged_by, alert.ack_comment, alert.version),
        "deployment": (deployment.firmware_id, sorted(deployment.targets),
                       deployment.status.value, deployment.created_by, deployment.description,
                       deployment.target_spec, deployment.config.to_aws()),
        "trail": trail,
    }


PG_ENV = "SMARTIOT_TEST_PG_URL"


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(not os.environ.get(PG_ENV), reason=f"{PG_ENV} not set")]),
])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """A fresh database per front end: a SQLite file, or a PostgreSQL schema named
    in the URL itself (so the CLI's --database reaches the same one)."""
    schemas: list[str] = []

    def url(name: str) -> str:
        if request.param == "sqlite":
            (tmp_path / name).mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{tmp_path / name / 'fleet.db'}"
        schema = f"t_{uuid.uuid4().hex[:16]}"
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        schemas.append(schema)
        base = os.environ[PG_ENV]
        return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"

    admin = create_store_engine(os.environ[PG_ENV]) if request.param != "sqlite" else None
    try:
        yield url
    finally:
        if admin is not None:
            with admin.begin() as conn:
                for schema in schemas:
                    conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


@pytest.fixture
def signing_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without an OS keyring: every front end's signing key lives in an
    encrypted file unlocked by this passphrase (the CLI inherits it)."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    monkeypatch.setenv("SMARTIOT_CODESIGN_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))


# ---------------------------------------------------------------------- Qt pages
class _BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "the scenario's store", lambda _ctx: self.backend))


def _backend(store: Store) -> Backend:
    return Backend("local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, firmware=store.firmware,
                   deployments=store.deployments, rules=store.rules, audit=store.audit,
                   command_log=store.commands, trusted_keys=store.trusted_keys,
                   users=store.users)


@pytest.fixture
def gui_context(tmp_path: Path, signing_env: None, database: Callable[[str], str]
                ) -> Iterator[tuple[AppContext, Store]]:
    import plugins.alerts.plugin as alerts_plugin

    base = tmp_path / "gui"
    config = load_config(base / "config.toml", base / "data", env={})
    store = Store.open(database("gui"))
    _seed(store, config.data_dir / "codesign")
    manager = PluginManager(builtins=(), entry_points=False, blocked=())
    manager.register("scenario-backend", _BackendPlugin(_backend(store)))
    manager.register("alerts", alerts_plugin)  # the rule types, as in the console
    context = AppContext(config, manager, live=False, actor=Actor(_user(), Role.ENGINEER, ORG))
    yield context, store
    context.close()
    store.close()


def _through_the_pages(qtbot: Any, context: AppContext, store: Store) -> None:
    from PySide6.QtWidgets import QWizard

    from plugins.alerts.widgets.alerts_page import AlertsPage
    from plugins.devices.widgets.devices_page import build_devices_page
    from plugins.firmware.widgets.wizard import DeploymentWizard

    # 1. Devices page: the Register dialog, filled in and confirmed.
    devices = build_devices_page(context)
    qtbot.addWidget(devices)
    devices.show()
    qtbot.waitUntil(lambda: devices.api is not None, timeout=WAIT_MS)
    dialog = devices.open_register_dialog()
    assert dialog is not None
    dialog.id_edit.setText(NEW_DEVICE["device_id"])
    dialog.name_edit.setText(NEW_DEVICE["name"])
    dialog.type_combo.setEditText(NEW_DEVICE["device_type"])
    dialog.org_combo.setEditText(ORG)
    dialog.tags_edit.setText(", ".join(NEW_DEVICE["tags"]))
    dialog.accept()
    qtbot.waitUntil(lambda: store.registry.find("pump-7") is not None, timeout=WAIT_MS)

    # 2. Alerts page: select the alert, acknowledge it with a comment.
    alerts = AlertsPage(context)
    qtbot.addWidget(alerts)
    alerts.show()
    qtbot.waitUntil(lambda: alerts.model.row_of(ALERT_ID) is not None, timeout=WAIT_MS)
    alerts.select_alerts([ALERT_ID])
    with qtbot.waitSignal(alerts.actions_done, timeout=WAIT_MS) as done:
        alerts.acknowledge_selected(COMMENT)
    assert all(r.ok for r in done.args[0]), done.args[0]

    # 3. The deployment wizard: these device ids, the image, the defaults, Create.
    wizard = DeploymentWizard(context, ["pump"])
    qtbot.addWidget(wizard)
    wizard.open()
    qtbot.waitExposed(wizard)
    wizard.targets.by_ids.setChecked(True)
    wizard.targets.ids.setPlainText(", ".join(TARGETS))
    qtbot.waitUntil(lambda: wizard.targets.count_label.text().startswith(
        "2 of 2 listed devices found"), timeout=WAIT_MS)
    wizard.next()
    page = wizard.firmware_page
    qtbot.waitUntil(lambda: page.plan is not None, timeout=WAIT_MS)
    assert page.firmware is not None and page.firmware.firmware_id == FIRMWARE_ID
    wizard.next()
    assert wizard.rollout.config is not None and wizard.rollout.config.to_aws() == ROLLOUT
    wizard.rollout.description.setText(DESCRIPTION)
    wizard.next()
    qtbot.waitUntil(lambda: wizard.review.plan is not None, timeout=WAIT_MS)
    with qtbot.waitSignal(wizard.created, timeout=WAIT_MS):
        wizard.button(QWizard.WizardButton.FinishButton).click()


# ---------------------------------------------------------------------- CLI
def _cli(base: Path, database: str, *args: str) -> None:
    env = {**os.environ, "SMARTIOT_CONFIG": str(base / "config.toml"),
           "SMARTIOT_DATA_DIR": str(base / "data"), "SMARTIOT_ROLE": Role.ENGINEER.value}
    result = subprocess.run([sys.executable, "-m", "console.cli", *args, "--database", database],
                            capture_output=True, text=True, env=env, timeout=180)
    assert result.returncode == 0, f"smartiot {' '.join(args)}: {result.stderr}"


def _through_the_cli(base: Path, database: str) -> Store:
    base.mkdir(parents=True, exist_ok=True)
    store = Store.open(database)
    _seed(store, base / "data" / "codesign")
    _cli(base, database, "devices", "register", NEW_DEVICE["device_id"], "--type",
         NEW_DEVICE["device_type"], "--name", NEW_DEVICE["name"], "--tag",
         NEW_DEVICE["tags"][0], "--org", ORG)
    _cli(base, database, "alerts", "ack", ALERT_ID, "--comment", COMMENT)
    _cli(base, database, "deploy", "create", "--firmware", FIRMWARE_ID, "--devices",
         ",".join(TARGETS), "--description", DESCRIPTION, "--rate", "20",
         "--abort", "ALL:10:10", "--timeout", "30")
    return store


# ---------------------------------------------------------------------- REST
def _through_the_api(base: Path, database: str) -> Store:
    base.mkdir(parents=True, exist_ok=True)
    store = Store.open(database)
    _seed(store, base / "codesign")
    gen = start_api(store, base)
    api = next(gen)
    who = {"role": Role.ENGINEER, "user": _user(), "org": ORG}
    try:
        reply = api.client.call("POST", "/devices", NEW_DEVICE, **who)  # type: ignore[arg-type]
        assert reply.status == 201, reply.body
        reply = api.client.call("POST", f"/alerts/{ALERT_ID}/acknowledge",
                                {"comment": COMMENT}, **who)  # type: ignore[arg-type]
        assert reply.status == 200, reply.body
        reply = api.client.call("POST", "/firmware/deployments", {
            "firmware_id": FIRMWARE_ID, "description": DESCRIPTION, "config": ROLLOUT,
            "target": {"kind": "list", "device_ids": list(TARGETS)}},
            **who)  # type: ignore[arg-type]
        assert reply.status == 201, reply.body
    finally:
        gen.close()
    return store


def test_pages_cli_and_api_leave_the_same_records_and_audit_trail(
        qtbot: Any, gui_context: tuple[AppContext, Store], database: Callable[[str], str],
        tmp_path: Path) -> None:
    context, gui_store = gui_context
    _through_the_pages(qtbot, context, gui_store)
    cli_store = _through_the_cli(tmp_path / "cli", database("cli"))
    api_store = _through_the_api(tmp_path / "api", database("api"))
    try:
        pages, cli, api = _outcome(gui_store), _outcome(cli_store), _outcome(api_store)
        assert [t[1] for t in pages["trail"]] == [
            "device.register", "alert.acknowledge", "deployment.create"]
        assert all(t[3] == "done" and t[4] == "engineer" and t[5] == ORG
                   for t in pages["trail"])
        for name, other in (("CLI", cli), ("REST API", api)):
            for part in ("device", "alert", "deployment", "trail"):
                assert other[part] == pages[part], f"{name} differs from the pages in {part}"
    finally:
        cli_store.close()
        api_store.close()
