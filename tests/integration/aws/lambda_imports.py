"""Run in a subprocess by test_lambda_requirements.py and test_iac.py: build
one Lambda function's object graph as its first invocation would (from its
environment, no AWS call made) and print, as JSON on one line, the
distributions whose modules got imported and the resource names (``iot-…-
<stage>``) held anywhere in that graph: the tables and bucket it is wired to.
``python lambda_imports.py api|telemetryConsumer|alertTicker|notifications``."""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import sys
import types
from importlib.metadata import packages_distributions
from typing import Any


def resource_names(root: Any, stage: str) -> set[str]:
    """Every ``iot-…-<stage>`` string reachable from ``root`` through
    attributes and containers (AWS clients and library objects not entered)."""
    pattern = re.compile(rf"iot-[a-z0-9-]+-{re.escape(stage)}")
    found: set[str] = set()
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            found.update(pattern.findall(obj))
        elif isinstance(obj, dict):
            todo.extend(obj.keys())
            todo.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            todo.extend(obj)
        elif isinstance(obj, types.FunctionType):
            todo.extend(c.cell_contents for c in obj.__closure__ or () if _filled(c))
        elif not isinstance(obj, type | types.ModuleType) and \
                type(obj).__module__.split(".")[0] in ("core", "plugins", "functools"):
            todo.extend(vars(obj).values() if hasattr(obj, "__dict__") else ())
            todo.extend(getattr(obj, name) for name in _slots(type(obj)) if hasattr(obj, name))
            if isinstance(obj, functools.partial):
                todo.append(obj.func)
    return found


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents  # noqa: B018
    except ValueError:
        return False
    return True


def _slots(cls: type) -> list[str]:
    return [name for klass in cls.__mro__ for name in getattr(klass, "__slots__", ())]


def run(function: str, stage: str) -> dict[str, list[str]]:
    """This script in a fresh interpreter, with the environment a deployed
    function has (the endpoint a closed port: building must not call AWS)."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root),
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_REGION": "eu-west-1", "SMARTIOT_STAGE": stage,
           "SMARTIOT_ENDPOINT_URL": "http://127.0.0.1:9", "SMARTIOT_TELEMETRY": "dynamodb",
           "SMARTIOT_USER_POOL_ID": "eu-west-1_layer",
           "SMARTIOT_NOTIFY_QUEUE_URL": "http://127.0.0.1:9/123456789012/q",
           "SMARTIOT_NOTIFY_SENDER": "alerts@example.com"}
    done = subprocess.run([sys.executable, __file__, function], env=env, cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer: dict[str, list[str]] = json.loads(done.stdout.splitlines()[-1])
    return answer


def main(function: str) -> None:
    if function == "api":
        api = importlib.import_module("plugins.aws.lambdas.api")
        built: Any = api.build_parts(api.settings_from_environment())
    elif function == "telemetryConsumer":
        built = importlib.import_module("plugins.aws.lambdas.telemetry_consumer") \
            .consumer_from_environment()
    elif function == "alertTicker":
        built = importlib.import_module("plugins.aws.lambdas.alert_ticker") \
            .ticker_from_environment()
    elif function == "notifications":
        built = importlib.import_module("plugins.aws.lambdas.notifications") \
            .dispatcher_from_environment()
    else:
        raise SystemExit(f"unknown function {function!r}")
    distributions = packages_distributions()
    loaded = {name.split(".")[0] for name in list(sys.modules)}
    print(json.dumps({
        "distributions": sorted({d for top in loaded for d in distributions.get(top, [])}),
        "resources": sorted(resource_names(built, os.environ["SMARTIOT_STAGE"])),
    }))


if __name__ == "__main__":
    main(sys.argv[1])
