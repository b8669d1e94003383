from __future__ import annotations

import pytest

from core.text import plural, plural_word


@pytest.mark.parametrize(("n", "word", "expected"), [
    (0, "device", "0 devices"), (1, "device", "1 device"), (2, "image", "2 images"),
    (1, "image", "1 image"), (1234, "reading", "1,234 readings"), (3, "entry", "3 entries"),
    (2, "match", "2 matches"), (1, "alert", "1 alert"), (2, "day", "2 days"),
])
def test_plural(n: int, word: str, expected: str) -> None:
    assert plural(n, word) == expected


def test_plural_word_and_explicit_form() -> None:
    assert plural_word(1, "is") == "is" and plural_word(2, "is") == "are"
    assert plural(2, "person", "people") == "2 people"
