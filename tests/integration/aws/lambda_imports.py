"""Run in a subprocess by test_lambda_requirements.py: build one Lambda
function's object graph as its first invocation would (from its environment,
no AWS call made) and print, as JSON, the distributions whose modules got
imported. ``python lambda_imports.py api|telemetryConsumer|notifications``."""

from __future__ import annotations

import importlib
import json
import sys
from importlib.metadata import packages_distributions


def main(function: str) -> None:
    if function == "api":
        api = importlib.import_module("plugins.aws.lambdas.api")
        api.build_parts(api.settings_from_environment())
    elif function == "telemetryConsumer":
        importlib.import_module("plugins.aws.lambdas.telemetry_consumer") \
            .consumer_from_environment()
    elif function == "notifications":
        importlib.import_module("plugins.aws.lambdas.notifications") \
            .dispatcher_from_environment()
    else:
        raise SystemExit(f"unknown function {function!r}")
    distributions = packages_distributions()
    loaded = {name.split(".")[0] for name in list(sys.modules)}
    print(json.dumps(sorted({d for top in loaded for d in distributions.get(top, [])})))


if __name__ == "__main__":
    main(sys.argv[1])
