"""Counts in the product's text read "1 device" / "2 devices": an f-string
that puts a number straight before a plural noun ("{n} devices") says
"1 devices" for one; such counts go through core.text.plural instead."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NOUNS = ("devices", "images", "alerts", "targets", "deployments", "rows", "points", "plugins",
         "ids", "bytes", "entries")
AFTER_VALUE = re.compile(rf"^ ({'|'.join(NOUNS)})\b(?!/)")


def _is_count(expr: ast.expr) -> bool:
    """Words put before a noun ("failed devices", "critical alerts") are not counts."""
    source = ast.unparse(expr)
    return not re.search(r"\.(lower|upper|replace|value|title|capitalize)\b|state|kind", source)


def _offenders(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.JoinedStr):
            continue
        parts = node.values
        for value, text in itertools.pairwise(parts):
            if isinstance(value, ast.FormattedValue) and isinstance(text, ast.Constant) \
                    and isinstance(text.value, str) and AFTER_VALUE.match(text.value) \
                    and _is_count(value.value):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: "
                             f"{{{ast.unparse(value.value)}}}{text.value[:20]}")
    return found


def test_no_count_is_glued_to_a_plural_noun() -> None:
    files = [p for folder in ("console", "plugins/firmware", "plugins/devices",
                              "plugins/analytics", "plugins/alerts/widgets")
             for p in (ROOT / folder).rglob("*.py")]
    assert files
    offenders = [o for p in files for o in _offenders(p)]
    assert offenders == [], "use core.text.plural:\n" + "\n".join(offenders)
