"""One test per hook (named test_hook_<hook>), plus the meta-tests that keep
hooks, docs/plugins.md and these tests in step."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from console.cli import build_parser
from core import hookspecs
from core.config import load_config
from core.context import AppContext
from core.errors import ConfigError
from core.hookspecs import hookimpl
from core.model import Device
from core.plugins import PluginManager, PluginStatus
from core.registrations import (
    AlertRuleTypeSpec,
    CliCommand,
    SensorModelSpec,
    StatusWidgetSpec,
)

HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("smartiot_"))
DOCS = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _context(tmp_path, pm):
    return AppContext(load_config(tmp_path / "config.toml", tmp_path / "data", env={}), pm)


def test_every_hook_has_a_docstring():
    for name in HOOKS:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc.splitlines()) == 1, f"{name} needs a one-line docstring"


def test_every_hook_is_documented_in_plugins_md():
    text = DOCS.read_text()
    documented = set(re.findall(r"^### (smartiot_\w+)", text, re.MULTILINE))
    assert documented == set(HOOKS), (
        f"undocumented: {set(HOOKS) - documented}; stale: {documented - set(HOOKS)}"
    )


def test_every_hook_is_documented_with_its_full_signature():
    """Each hook's section opens with `name(args)` exactly as core/hookspecs.py
    declares it, so a renamed or added argument cannot leave the docs behind."""
    text = DOCS.read_text()
    sections = dict(re.findall(r"^### (smartiot_\w+)\n(.*?)(?=^##|\Z)", text,
                               re.MULTILINE | re.DOTALL))
    for name in HOOKS:
        params = ", ".join(inspect.signature(getattr(hookspecs, name)).parameters)
        signature = f"`{name}({params})`"
        documented = re.findall(rf"`{name}\([^)]*\)`", sections.get(name, ""))
        assert documented and set(documented) == {signature}, (
            f"docs/plugins.md, section {name}: expected {signature}, found {documented}")


def test_every_hook_has_a_test():
    module = sys.modules[__name__]
    tested = {name.removeprefix("test_hook_") for name in dir(module)
              if name.startswith("test_hook_")}
    assert tested == set(HOOKS), f"untested hooks: {set(HOOKS) - tested}"


def test_hook_smartiot_register_backends(tmp_path):
    pm = PluginManager(entry_points=False, blocked=())
    assert "local" in pm.backends()
    context = _context(tmp_path, pm)
    try:
        context.backend.registry.upsert(Device("pump-7", device_type="pump"))
        stored = {d.device_id: d for d in context.backend.registry.list()}
        # The local profile's demo fleet registers its own devices beside ours.
        assert stored["pump-7"].device_type == "pump"
    finally:
        context.close()
    assert (tmp_path / "data" / "smartiot.db").exists()


def test_backend_missing_is_a_config_error(tmp_path):
    pm = PluginManager(entry_points=False, blocked=("local",))
    context = _context(tmp_path, pm)
    with pytest.raises(ConfigError, match="no loaded plugin provides it"):
        _ = context.backend


def test_hook_smartiot_register_identity_providers(tmp_path):
    """An aws profile with an api_url signs in through the aws plugin's
    Cognito provider; a hub profile keeps the hub's own sign-in."""
    from plugins.api.client.identity_session import IdentityApiSession, provider_for

    pm = PluginManager(entry_points=False, blocked=())
    spec = pm.identity_providers()["cognito"]
    assert spec.backend == "aws"
    (tmp_path / "aws.toml").write_text(
        'profile = "aws-x"\n[profiles.aws-x]\nregion = "eu-west-1"\n'
        'api_url = "https://api.example/prod"\nuser_pool_id = "eu-west-1_a"\n'
        'user_pool_client_id = "client"\n')
    config = load_config(tmp_path / "aws.toml", tmp_path / "data", env={})
    context = AppContext(config, pm, live=False)
    try:
        assert provider_for(context) == spec
        assert isinstance(context.remote, IdentityApiSession)
        assert context.remote.base_url == "https://api.example/prod"
        assert context.remote.actor is None and context.remote.demo_logins() == []
    finally:
        context.close()
    hub = AppContext(load_config(tmp_path / "config.toml", tmp_path / "data",
                                 env={"SMARTIOT_API_URL": "http://hub.example:8080/"}), pm)
    try:
        assert provider_for(hub) is None
        assert not isinstance(hub.remote, IdentityApiSession)
    finally:
        hub.close()


def test_hook_smartiot_register_api_clients(tmp_path):
    pm = PluginManager(entry_points=False, blocked=())
    assert "http" in pm.api_clients()
    config = load_config(tmp_path / "config.toml", tmp_path / "data",
                         env={"SMARTIOT_API_URL": "http://hub.example:8080/"})
    context = AppContext(config, pm)
    try:
        assert context.remote is not None
        assert context.remote.base_url == "http://hub.example:8080"
        assert context.api is context.remote.fleet_api()  # no store, no backend built
        assert not context.has_backend
    finally:
        context.close()
    assert not (tmp_path / "data" / "smartiot.db").exists()
    plain = _context(tmp_path / "plain", pm)
    assert plain.remote is None  # no api_url: the data is in this process


def test_hook_smartiot_register_pages():
    pm = PluginManager(entry_points=False, blocked=())
    pages = pm.pages()
    assert [p.page_id for p in pages] == ["devices", "alerts", "rejected", "firmware", "analytics",
                                          "audit", "users"]
    assert all(callable(p.factory) for p in pages)


def test_hook_smartiot_register_status_widgets():
    class StatusPlugin:
        @hookimpl
        def smartiot_register_status_widgets(self, register):
            register(StatusWidgetSpec("later", factory=lambda ctx: "later", order=50))
            register(StatusWidgetSpec("first", factory=lambda ctx: "first", order=1))

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("status", StatusPlugin())
    assert [s.widget_id for s in pm.status_widgets()] == ["first", "later"]


def test_hook_smartiot_register_alert_rule_types():
    class Above:
        def __init__(self, params):
            self.limit = float(params["limit"])

        def evaluate(self, value):
            return value > self.limit

    class RulePlugin:
        @hookimpl
        def smartiot_register_alert_rule_types(self, register):
            register(AlertRuleTypeSpec("above", "value above a limit", Above, ("limit",)))

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("rules", RulePlugin())
    spec = pm.alert_rule_types()["above"]
    evaluator = spec.factory({"limit": "30"})
    assert evaluator.evaluate(31.0) and not evaluator.evaluate(29.0)


def test_hook_smartiot_register_sensor_models():
    class Constant:
        def __init__(self, n, rng, params):
            self.values = np.full(n, params.get("level", 1.0))

    class ModelPlugin:
        @hookimpl
        def smartiot_register_sensor_models(self, register):
            register(SensorModelSpec("constant", "flat line", Constant, ("level",)))

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("models", ModelPlugin())
    model = pm.sensor_models()["constant"].factory(4, np.random.default_rng(1), {"level": 2.5})
    assert model.values.tolist() == [2.5] * 4


def test_hook_smartiot_register_cli_commands(capsys, tmp_path):
    def run(args, context):
        print(f"counted {args.n}")
        return 7

    class CommandPlugin:
        @hookimpl
        def smartiot_register_cli_commands(self, register):
            register(CliCommand("count", "count things",
                                lambda p: p.add_argument("n", type=int), run))

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("counter", CommandPlugin())
    commands = pm.cli_commands()
    args = build_parser(commands).parse_args(["count", "3"])
    assert commands[args.command].run(args, _context(tmp_path, pm)) == 7
    assert capsys.readouterr().out.strip() == "counted 3"


def test_hook_smartiot_startup(tmp_path):
    seen = []

    class Good:
        @hookimpl
        def smartiot_startup(self, context):
            seen.append(context.config.profile_name)

    class Bad:
        @hookimpl
        def smartiot_startup(self, context):
            raise OSError("port in use")

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("bad", Bad())
    pm.register("good", Good())
    pm.startup(_context(tmp_path, pm))
    assert seen == ["local"]
    assert pm.info("bad").status is PluginStatus.FAILED
    assert "smartiot_startup raised OSError: port in use" in pm.info("bad").error


def test_hook_smartiot_shutdown(tmp_path):
    closed = []

    class Worker:
        @hookimpl
        def smartiot_shutdown(self, context):
            closed.append("worker")

    pm = PluginManager(builtins=(), entry_points=False, blocked=())
    pm.register("worker", Worker())
    pm.shutdown(_context(tmp_path, pm))
    assert closed == ["worker"]


def test_backend_is_not_rebuilt_after_close(tmp_path):
    from core.errors import SmartIotError

    pm = PluginManager(entry_points=False, blocked=())
    context = _context(tmp_path, pm)
    context.live = False
    assert context.backend is not None
    context.close()
    with pytest.raises(SmartIotError, match="shutting down"):
        _ = context.backend


def test_the_headless_hub_runs_startup_and_shutdown_hooks(tmp_path, mosquitto_broker):
    """`smartiot hub` starts and stops plugins like the window does, on the hub's backend."""
    import argparse
    import os
    import signal

    from plugins.local.commands import run_hub

    seen: list[tuple[str, bool, bool]] = []

    class Recorder:
        @hookimpl
        def smartiot_startup(self, context):
            backend = context.backend  # the hub's own backend, not a second one
            seen.append(("startup", backend.hub is not None, backend.registry.list() == []))
            os.kill(os.getpid(), signal.SIGTERM)  # what a supervisor sends to stop it

        @hookimpl
        def smartiot_shutdown(self, context):
            backend = context.backend  # still open: the hub stops after the hooks
            seen.append(("shutdown", backend.hub is not None, backend.registry.list() == []))

    pm = PluginManager(entry_points=False, blocked=())
    pm.register("recorder", Recorder())
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={}, overrides={
        "broker": mosquitto_broker.url, "database": f"sqlite:///{tmp_path / 'team.db'}"})
    context = AppContext(config, pm)
    context.live = False  # as for every command
    before = signal.getsignal(signal.SIGTERM)
    try:
        status = run_hub(argparse.Namespace(demo=False, status_every=60.0, drain_timeout=5.0),
                         context)
    finally:
        context.close()
    assert status == 0
    assert seen == [("startup", True, True), ("shutdown", True, True)]
    assert signal.getsignal(signal.SIGTERM) is before  # the caller's handler is back


def test_smartiot_plugins_shows_what_each_plugin_needs(capsys, monkeypatch, tmp_path):
    import json

    from console import cli

    monkeypatch.setenv("SMARTIOT_ENTRY_POINTS", "0")
    monkeypatch.setenv("SMARTIOT_DISABLE_PLUGINS", "alerts")
    config = ["--config", str(tmp_path / "config.toml")]
    assert cli.main(["plugins", *config]) == 0
    lines = capsys.readouterr().out.splitlines()
    analytics = lines.index(next(li for li in lines if li.startswith("analytics ")))
    assert lines[analytics + 1].split() == ["optional:", "alerts", "(not", "active),", "devices"]

    assert cli.main(["plugins", "--json", *config]) == 0
    infos = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert infos["analytics"]["optional"] == ["alerts", "devices"]
    assert infos["analytics"]["requires"] == [] and infos["analytics"]["status"] == "loaded"
