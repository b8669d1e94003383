"""Per-person preferences (theme, default page, alert filters) kept by the backend,
so a person finds their settings on any console they sign in to."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Preferences:
    user: str
    values: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # 0: never saved


class PreferenceStore(ABC):
    @abstractmethod
    def get(self, user: str) -> Preferences:
        """The stored preferences, or empty ones at version 0."""

    @abstractmethod
    def save(self, user: str, values: dict[str, Any], *,
             expected_version: int | None = None) -> Preferences:
        """Replace them; ConcurrentModification when ``expected_version`` is
        given and the stored version moved on."""
