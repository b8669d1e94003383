"""Wording shared by every front end (Qt pages, CLI, status lines).

A count reads "1 device" / "3 devices", never "1 devices": the console,
the CLI and the hub say the same thing, so they share one function.
"""

from __future__ import annotations

from datetime import UTC, datetime

_IRREGULAR = {"entry": "entries", "reply": "replies", "is": "are", "was": "were",
              "has": "have", "this": "these"}


def plural_word(n: int | float, word: str, many: str | None = None) -> str:
    """``word`` or its plural for ``n`` (just the word, e.g. for "device(s) is/are")."""
    if n == 1:
        return word
    if many is not None:
        return many
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def plural(n: int | float, word: str, many: str | None = None) -> str:
    """``"1 device"``, ``"0 devices"``, ``"1,234 devices"``."""
    count = f"{n:,}" if isinstance(n, int) else f"{n:g}"
    return f"{count} {plural_word(n, word, many)}"


def cli_time(at: datetime | None, *, empty: str = "") -> str:
    """A moment as every command prints it for a person: ISO 8601 to the second in
    this machine's time zone, with its offset ("2026-12-05T02:02:03+01:00"), so
    it sorts, pastes into ``--since`` and says which zone it is in. The CLI
    printed "2026-12-05 01:02" in one command and UTC ISO in the next.
    Machine-readable output (--json, CSV) keeps the stored value's own ISO form."""
    if at is None:
        return empty
    if at.tzinfo is None:  # naive values are UTC throughout the store
        at = at.replace(tzinfo=UTC)
    return at.astimezone().isoformat(timespec="seconds")
