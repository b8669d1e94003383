"""The handler API Gateway invokes, and ``smartiot api serve|token`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from core.store import Store
from tests.integration.test_cli_ergonomics import hub_and_fleet  # noqa: F401  (fixture)

EVENT = {
    "resource": "/devices", "path": "/devices", "httpMethod": "POST",
    "headers": {"Content-Type": "application/json"},
    "multiValueHeaders": {"Content-Type": ["application/json"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "isBase64Encoded": False,
}


def _env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
            "SMARTIOT_DATA_DIR": str(tmp_path / "data"),
            "SMARTIOT_DATABASE": f"sqlite:///{tmp_path / 'api.db'}"}


def test_lambda_handler_takes_identity_from_the_authorizer_claims(tmp_path: Path) -> None:
    """A fresh interpreter, as a Lambda container: the configured database, the
    claims API Gateway's Cognito authorizer passes, the seed's envelope."""
    script = """
import json, sys
from plugins.api.lambda_handler import handler
event = json.loads(sys.argv[1])
out = []
for claims in ({"cognito:username": "tina", "cognito:groups": "[technician]",
                "custom:organization": "acme"},
               {"cognito:username": "sam", "cognito:groups": "support"}, None):
    e = dict(event, requestContext={"requestId": "r-1", "authorizer": {"claims": claims}}
             if claims else {"requestId": "r-2"})
    r = handler(e, None)
    out.append([r["statusCode"], json.loads(r["body"])])
print(json.dumps(out))
"""
    event = dict(EVENT, body=json.dumps({"device_id": "pump-1", "device_type": "pump"}))
    result = subprocess.run([sys.executable, "-c", script, json.dumps(event)],
                            capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    (ok, created), (refused, denied), (anonymous, unauthorized) = json.loads(
        result.stdout.strip().splitlines()[-1])
    assert ok == 201 and created["data"]["organization"] == "acme"
    assert refused == 403 and denied["error"]["code"] == "FORBIDDEN"
    assert anonymous == 401 and unauthorized["success"] is False
    with Store.open(f"sqlite:///{tmp_path / 'api.db'}") as store:
        entries = store.audit.search(None)
    assert [(e.actor, e.action, e.details.get("outcome", "ok")) for e in entries] == [
        ("tina", "device.register", "ok"), ("sam", "device.register", "denied")]


def test_api_serve_and_token_from_the_command_line(tmp_path: Path) -> None:
    env = _env(tmp_path)
    token = subprocess.run([sys.executable, "-m", "console.cli", "api", "token", "eve",
                            "--role", "engineer"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert token.returncode == 0, token.stderr
    server = subprocess.Popen([sys.executable, "-m", "console.cli", "api", "serve", "--port",
                               "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "serving the REST API on http://127.0.0.1:" in line, server.stderr
        base = line.split(" on ")[1].split(" ")[0]
        request = urllib.request.Request(f"{base}/users/me", headers={
            "Authorization": f"Bearer {token.stdout.strip()}"})
        with urllib.request.urlopen(request, timeout=60) as response:
            me = json.loads(response.read())
        assert me["data"]["user"] == "eve" and me["data"]["role"] == "engineer"
        try:
            urllib.request.urlopen(f"{base}/users/me", timeout=60)
            raise AssertionError("answered without a token")
        except urllib.error.HTTPError as exc:
            assert exc.code == 401
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_registering_the_command_does_not_import_powertools(tmp_path: Path) -> None:
    """Every `smartiot` start and the window collect the CLI commands; the API's
    libraries take about a second to import and must wait for `smartiot api`."""
    script = ("import sys\nfrom core.plugins import PluginManager\n"
              "assert 'api' in PluginManager(entry_points=False).cli_commands()\n"
              "print(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('aws_lambda_powertools', 'pydantic')))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=_env(tmp_path), timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_api_serve_live_sends_commands_through_the_hubs_broker(hub_and_fleet) -> None:  # noqa: F811
    """`smartiot api serve --live` next to a running `smartiot hub`: a ping through
    the API reaches the simulated device and its answer comes back."""
    tmp_path, database, broker = hub_and_fleet
    env = {**os.environ, "SMARTIOT_CONFIG": str(tmp_path / "config.toml"),
           "SMARTIOT_DATA_DIR": str(tmp_path / "data")}
    common = ("--broker", broker, "--database", database)
    token = subprocess.run([sys.executable, "-m", "console.cli", "api", "token", "tim",
                            "--role", "technician"], capture_output=True, text=True, env=env,
                           timeout=120)
    assert token.returncode == 0, token.stderr
    server = subprocess.Popen([sys.executable, "-m", "console.cli", "api", "serve", "--port", "0",
                               "--live", *common], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        assert "serving the REST API on" in line, server.stderr
        base = line.split(" on ")[1].split(" ")[0]
        request = urllib.request.Request(
            f"{base}/devices/cli-00000/commands", method="POST",
            data=json.dumps({"command": "ping", "timeout_s": 30}).encode(),
            headers={"Authorization": f"Bearer {token.stdout.strip()}",
                     "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=90) as response:
            answer = json.loads(response.read())
        assert answer["data"]["outcome"] == "ok", answer
        with Store.open(database) as store:
            assert store.commands.get(answer["data"]["request_id"]).device_id == "cli-00000"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_api_serve_live_refuses_the_embedded_broker(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "console.cli", "api", "serve", "--live"],
                            capture_output=True, text=True, env=_env(tmp_path), timeout=120)
    assert result.returncode == 2 and "embedded one" in result.stderr
