"""docs/security.md's role table is the code's: a changed grant without the page
(or the page without the code) fails here."""

from __future__ import annotations

from pathlib import Path

from core.model.roles import GRANTS, Permission, Role, role_table_markdown

DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"


def test_the_role_table_in_the_docs_matches_the_grants() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## What each role may do", 1)[1].split("\n## ", 1)[0]
    assert role_table_markdown() in section, (
        "docs/security.md 'What each role may do' differs from core.model.roles.GRANTS; "
        "paste role_table_markdown() into it")


def test_the_table_says_yes_exactly_where_a_role_has_the_permission() -> None:
    rows = role_table_markdown().splitlines()[2:]
    assert len(rows) == len(Permission)
    for row, permission in zip(rows, Permission, strict=True):
        marks = [c.strip() for c in row.strip("|").split("|")][2:]
        assert marks == ["yes" if permission in GRANTS[r] else "—" for r in Role]
