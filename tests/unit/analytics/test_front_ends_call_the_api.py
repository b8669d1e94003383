"""The Analytics and Audit pages and their CLI commands reach data only through
``context.api`` (the use cases with the person's role, organization and audit):
no store, no data port, no ``backend.<port>`` beside the live feed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
FRONT_ENDS = sorted([*ROOT.glob("plugins/analytics/widgets/*.py"),
                     ROOT / "plugins/analytics/commands.py",
                     *ROOT.glob("plugins/audit/**/*.py")])
BELOW_THE_API = ("core.store", "core.ports.registry", "core.ports.telemetry",
                 "core.ports.alerts", "core.ports.hub", "core.ports.preferences",
                 "core.ports.user_directory")
# Value types the use cases answer with, not ports.
VALUE_TYPES = {"Series"}
# What a page may still read off the backend: its live feed (not a use case yet).
ALLOWED_BACKEND_ATTRIBUTES = {"live", "name"}


@pytest.mark.parametrize("path", FRONT_ENDS, ids=lambda p: str(p.relative_to(ROOT)))
def test_reaches_data_only_through_context_api(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module \
                and node.module.startswith(BELOW_THE_API) \
                and {a.name for a in node.names} - VALUE_TYPES:
            problems.append(f"line {node.lineno}: imports {node.module}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "backend" \
                and node.attr not in ALLOWED_BACKEND_ATTRIBUTES:
            problems.append(f"line {node.lineno}: uses backend.{node.attr}")
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                and node.value.id == "backend" and node.attr not in ALLOWED_BACKEND_ATTRIBUTES:
            problems.append(f"line {node.lineno}: uses backend.{node.attr}")
    assert problems == []


def test_the_check_sees_the_front_ends() -> None:
    names = {p.name for p in FRONT_ENDS}
    assert {"history_view.py", "dashboard_page.py", "commands.py", "audit_page.py",
            "users_cli.py"} <= names
