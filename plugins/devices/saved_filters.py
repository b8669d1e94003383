"""Named filter sets of the Devices page in a small JSON file next to the
config file: a person's own views, not fleet data, so they stay on the machine."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.errors import ValidationError


class SavedFilters:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, dict[str, Any]]:
        """What the file holds; a missing or damaged file is no saved filters."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(raw, dict):
            return {}
        return {str(k): v for k, v in raw.items() if isinstance(v, dict)}

    def names(self) -> list[str]:
        return sorted(self.load(), key=str.lower)

    def get(self, name: str) -> dict[str, Any] | None:
        return self.load().get(name)

    def save(self, name: str, state: Mapping[str, Any]) -> None:
        name = name.strip()
        if not name:
            raise ValidationError("a saved filter needs a name")
        data = self.load()
        data[name] = dict(state)
        self._write(data)

    def delete(self, name: str) -> None:
        data = self.load()
        if data.pop(name, None) is not None:
            self._write(data)

    def _write(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)
