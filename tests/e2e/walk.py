"""Shared set-up of the walk tests: the console as `make run` opens it, one per module.

The walk tests (``test_walk_<role>.py``) follow one person through a task on the
real local profile (embedded mosquitto, hub, demo fleet, SQLite, no keyring),
clicking the real widgets. ``SMARTIOT_WALK_SHOTS=<dir>`` saves what the person saw
at each step as PNG files, so a reviewer can look at the walk, not only its asserts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QApplication, QWidget

from core.config import load_config
from core.context import AppContext
from core.plugins import PluginManager


@dataclass
class Console:
    """One open console window on the local profile, and what it runs on."""

    window: Any
    context: AppContext
    backend: Any
    env: dict[str, str]
    tmp: Path

    def shot(self, name: str, widget: QWidget | None = None) -> None:
        """Save what the person sees now (only when SMARTIOT_WALK_SHOTS names a folder)."""
        folder = os.environ.get("SMARTIOT_WALK_SHOTS")
        if not folder:
            return
        QApplication.processEvents()
        Path(folder).mkdir(parents=True, exist_ok=True)
        (widget or self.window).grab().save(str(Path(folder) / f"{name}.png"))


@pytest.fixture(scope="module", name="console")
def console_fixture(qapp: QApplication, tmp_path_factory: pytest.TempPathFactory
                    ) -> Iterator[Console]:
    """`make run` on a fresh machine without a keyring: the default local profile."""
    tmp = tmp_path_factory.mktemp("walk")
    config_path, data_dir = tmp / "config" / "config.toml", tmp / "data"
    with pytest.MonkeyPatch.context() as mp:
        for name in ("SMARTIOT_CODESIGN_PASSPHRASE", "SMARTIOT_SECRETS_PASSPHRASE",
                     "SMARTIOT_SECRETS_BACKEND", "SMARTIOT_PROFILE", "SMARTIOT_USER"):
            mp.delenv(name, raising=False)
        mp.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
        mp.setenv("SMARTIOT_CONFIG", str(config_path))
        mp.setenv("SMARTIOT_DATA_DIR", str(data_dir))
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}

        from console.app import build_main_window

        config = load_config(config_path, data_dir)
        context = AppContext(config, PluginManager(entry_points=False, blocked=()))
        window = build_main_window(context)
        context.plugins.startup(context)
        window.resize(1400, 900)
        window.show()
        try:
            yield Console(window, context, context.backend, env, tmp)
        finally:
            window.close()
            context.plugins.shutdown(context)
            context.close()
            window.deleteLater()
            QApplication.processEvents()
