"""Floats as DynamoDB numbers, including the ones DynamoDB cannot hold.

A DynamoDB number's magnitude must be 0 or between 1e-130 and 1e126; the
protocol accepts any finite value within ±1e15, so a device may send
1e-200, which SQLite and PostgreSQL store exactly (a double holds down to
5e-324). Refusing such a reading would quarantine on AWS what the hub keeps.
So a number attribute holds the value rounded to 0 below DynamoDB's
smallest magnitude, and where the exact value matters (a reading's value)
it is kept beside it as text (``<name>_exact``), which readers prefer: what
comes back is what the hub would answer. Sums and extremes (minute rollups)
keep the rounded number only: below 1e-130 they count as 0.
"""

from __future__ import annotations

from typing import Any

SMALLEST = 1e-130  # DynamoDB's smallest non-zero magnitude
EXACT_SUFFIX = "_exact"


def number_text(value: float | int) -> str:
    """The value as DynamoDB number text, tiny magnitudes as 0."""
    if isinstance(value, float):
        return "0" if value != 0.0 and abs(value) < SMALLEST else repr(value)
    return str(value)


def is_rounded(value: float) -> bool:
    return value != 0.0 and abs(value) < SMALLEST


def put_value(item: dict[str, Any], name: str, value: float) -> None:
    """``name`` as a number, and the exact value as text when it was rounded."""
    item[name] = {"N": number_text(value)}
    if is_rounded(value):
        item[name + EXACT_SUFFIX] = {"S": repr(value)}


def get_value(item: dict[str, Any], name: str) -> float:
    exact = item.get(name + EXACT_SUFFIX)
    return float(exact["S"]) if exact is not None else float(item[name]["N"])
