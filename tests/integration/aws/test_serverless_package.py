"""serverless.yml packaged by the Serverless Framework v3 itself, offline, and
the CloudFormation template it writes linted by cfn-lint.

Reading the YAML in Python (test_iac.py) cannot tell whether Serverless
accepts it, what it turns the events into, or whether CloudFormation would
refuse the result; this runs the real tool (deploy/aws, installed from its
lock file by `make test`) with dummy credentials and every request to the
network sent to a local proxy that counts them, so "it packages without AWS"
is checked, not assumed. The framework missing is a failure, not a skip: the
template check is part of the suite.

cfn-lint runs with W3005 ignored: Serverless itself writes ``DependsOn`` on a
function's custom role next to ``Fn::GetAtt`` of the same role (a redundant
dependency, harmless); every other warning and every error fails the test."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVERLESS = ROOT / "deploy" / "aws" / "node_modules" / ".bin" / "serverless"
CFN_LINT = Path(sys.executable).with_name("cfn-lint")
LAYER = "arn:aws:lambda:eu-west-1:123456789012:layer:smartiot-python:1"
IGNORED_CHECKS = "W3005"  # Serverless's own DependsOn next to GetAtt (see the docstring)


class CountingProxy:
    """A TCP listener standing in for an HTTP(S) proxy: it records the first
    line of every request (``CONNECT host:443 ...``) and closes the
    connection, so any request the tool makes fails and is seen."""

    def __init__(self) -> None:
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen()
        self._socket.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._socket.getsockname()[1]}"
        self.requests: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except OSError:
                continue
            with connection:
                connection.settimeout(2)
                try:
                    first = connection.recv(1024).split(b"\r\n", 1)[0]
                except OSError:
                    first = b"(nothing sent)"
                self.requests.append(first.decode("latin-1"))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The directory `serverless package` wrote, and the requests it tried to
    send to the network."""
    assert shutil.which("node"), "Node.js is needed to package the AWS backend (Node 18+)"
    assert SERVERLESS.exists(), (
        f"{SERVERLESS} is missing: `make serverless-deps` installs Serverless v3 "
        "from deploy/aws/package-lock.json (make test does it first)")
    out = tmp_path_factory.mktemp("sls") / "package"
    home = tmp_path_factory.mktemp("sls-home")
    proxy = CountingProxy()
    env = {
        "PATH": os.environ.get("PATH", ""), "HOME": str(home),
        "AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY": "dummy",
        "SLS_TELEMETRY_DISABLED": "1", "SLS_NOTIFICATIONS_MODE": "off",
        "SLS_DEPRECATION_DISABLE": "*", "SLS_DISABLE_AUTO_UPDATE": "1",
        # Serverless runs `npm root -g`; npm would ask the registry for a newer npm
        "NPM_CONFIG_UPDATE_NOTIFIER": "false",
        "HTTPS_PROXY": proxy.url, "HTTP_PROXY": proxy.url,
        "https_proxy": proxy.url, "http_proxy": proxy.url,
    }
    try:
        run = subprocess.run(
            [str(SERVERLESS), "package", "--stage", "ci", "--region", "eu-west-1",
             f"--param=pythonLayerArn={LAYER}", "--package", str(out)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    finally:
        proxy.close()
    assert run.returncode == 0, f"serverless package failed:\n{run.stdout}\n{run.stderr}"
    yield out, proxy.requests


def _template(out: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        (out / "cloudformation-template-update-stack.json").read_text())
    return document


def test_serverless_v3_packages_the_backend_without_reaching_the_network(
        packaged: tuple[Path, list[str]]) -> None:
    out, requests = packaged
    assert requests == [], "serverless package tried to reach the network"
    template = _template(out)
    assert {"ServiceEndpoint", "UserPoolId", "UserPoolClientId", "IdentityPoolId"} \
        <= set(template["Outputs"])
    resources = template["Resources"]
    functions = {r["Properties"]["FunctionName"]: r["Properties"] for r in resources.values()
                 if r["Type"] == "AWS::Lambda::Function"}
    assert {name: f["Handler"] for name, f in functions.items()} == {
        "smartiot-ci-api": "plugins/aws/lambdas/api.handler",
        "smartiot-ci-telemetryConsumer": "plugins/aws/lambdas/telemetry_consumer.handler",
        "smartiot-ci-notifications": "plugins/aws/lambdas/notifications.handler",
        "smartiot-ci-alertTicker": "plugins/aws/lambdas/alert_ticker.handler",
    }
    (schedule,) = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Events::Rule"]
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    assert schedule["State"] == "ENABLED"
    for function in functions.values():
        assert function["Runtime"] == "python3.11"
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert function["Layers"] == [LAYER]
        assert function["Environment"]["Variables"]["SMARTIOT_STAGE"] == "ci"
    assert {r["Properties"]["RetentionInDays"] for r in resources.values()
            if r["Type"] == "AWS::Logs::LogGroup"} == {30}
    mappings = {r["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: r["Properties"]
                for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"}
    kinesis = mappings["TelemetryStream"]
    assert kinesis["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert kinesis["BisectBatchOnFunctionError"] is True
    assert kinesis["DestinationConfig"]["OnFailure"]["Destination"] == {
        "Fn::GetAtt": ["TelemetryFailuresQueue", "Arn"]}
    assert mappings["NotificationsQueue"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    (authorizer,) = [r["Properties"] for r in resources.values()
                     if r["Type"] == "AWS::ApiGateway::Authorizer"]
    assert authorizer["Type"] == "COGNITO_USER_POOLS"
    assert authorizer["ProviderARNs"] == [{"Fn::GetAtt": ["UserPool", "Arn"]}]


def test_the_package_holds_the_backend_and_no_tests_docs_or_virtualenv(
        packaged: tuple[Path, list[str]]) -> None:
    out, _ = packaged
    with zipfile.ZipFile(out / "smartiot.zip") as archive:
        names = archive.namelist()
    tops = {name.split("/")[0] for name in names}
    assert tops <= {"core", "plugins", "resources"}, tops
    assert "plugins/aws/lambdas/api.py" in names
    assert not [n for n in names if "__pycache__" in n or "/widgets/" in n or n.endswith(".pyc")]


def test_cfn_lint_finds_nothing_in_the_cloudformation_template(
        packaged: tuple[Path, list[str]]) -> None:
    out, _ = packaged
    assert CFN_LINT.exists(), f"{CFN_LINT} is missing (the dev extras install cfn-lint)"
    run = subprocess.run(
        [str(CFN_LINT), "--ignore-checks", IGNORED_CHECKS, "--",
         str(out / "cloudformation-template-update-stack.json")],
        capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, f"cfn-lint:\n{run.stdout}\n{run.stderr}"
