"""Wording shared by every front end (Qt pages, CLI, status lines).

A count reads "1 device" / "3 devices", never "1 devices": the console,
the CLI and the hub say the same thing, so they share one function.
"""

from __future__ import annotations

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
