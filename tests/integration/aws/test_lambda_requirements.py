"""The Lambda layer's requirements against what the functions really import.

Each function is built in a fresh interpreter as its first request builds it
(from its environment; nothing is sent to AWS), and the distributions its
modules came from must be in deploy/aws/layer/python/requirements-lambda.txt
(with what pip installs for them) or in Lambda's Python runtime. A package the
code starts to import without being added there would deploy fine and fail
with ImportError on AWS; a requirement no function imports only makes the
layer bigger."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.aws.lambda_imports import run

ROOT = Path(__file__).resolve().parents[3]
REQUIREMENTS = ROOT / "deploy" / "aws" / "layer" / "python" / "requirements-lambda.txt"
FUNCTIONS = ("api", "telemetryConsumer", "alertTicker", "notifications")

# What Lambda's python3.11 runtime ships (boto3 and its dependencies).
LAMBDA_RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil",
                  "urllib3", "six"}
# Loaded here, absent on Lambda, and not needed there:
NOT_NEEDED_ON_LAMBDA = {
    "smartiot-console",  # the code itself: in the function package
    "setuptools", "backports-tarfile",  # the venv's editable-install hook
    "awscrt", "certifi",  # botocore uses them when installed, and works without
    "pygments",  # Mako highlights tracebacks with it when installed
}
# Pinned for their versions, not because a function imports them directly.
PINNED = {"botocore"}


def _requirements() -> set[str]:
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    return {canonicalize_name(Requirement(line).name) for line in lines if line}


def _with_dependencies(names: set[str]) -> set[str]:
    found: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        try:
            declared = requires(name) or []
        except PackageNotFoundError:
            continue
        for text in declared:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def _imported_by(function: str) -> set[str]:
    return {canonicalize_name(name) for name in run(function, "layer")["distributions"]}


@pytest.fixture(scope="module")
def imported() -> dict[str, set[str]]:
    return {function: _imported_by(function) for function in FUNCTIONS}


def test_every_package_a_function_imports_is_in_the_layer_or_the_runtime(
        imported: dict[str, set[str]]) -> None:
    available = _with_dependencies(_requirements()) | LAMBDA_RUNTIME | NOT_NEEDED_ON_LAMBDA
    for function, distributions in imported.items():
        assert distributions - available == set(), \
            f"{function} imports packages missing from {REQUIREMENTS.name}"


def test_every_requirement_of_the_layer_is_imported_by_a_function(
        imported: dict[str, set[str]]) -> None:
    used = set().union(*imported.values())
    assert _requirements() - used - PINNED == set(), "requirements no function imports"
