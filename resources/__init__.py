"""Data files shipped with the console: icons, style sheets, sample config and scenarios.

This package imports nothing from the project so that any layer (the headless
hub, the simulator, the Qt shell, Briefcase builds) can read from it without
dragging in Qt or core. Files are located through importlib.resources rather
than ``__file__`` arithmetic, which keeps working once the app is packaged.
"""

from __future__ import annotations

from importlib import resources as _resources
from pathlib import Path

__all__ = ["read_bytes", "read_text", "resource_path"]


def resource_path(*parts: str) -> Path:
    """A real filesystem path, because Qt (QIcon, QSettings) wants file names.

    Briefcase and wheels install the package as plain files, so the
    Traversable importlib returns is always a concrete path here."""
    return Path(str(_resources.files(__name__).joinpath(*parts)))


def read_text(*parts: str) -> str:
    return _resources.files(__name__).joinpath(*parts).read_text(encoding="utf-8")


def read_bytes(*parts: str) -> bytes:
    return _resources.files(__name__).joinpath(*parts).read_bytes()
