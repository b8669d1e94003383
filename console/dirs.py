"""Where the console keeps its files, resolved through platformdirs.

Kept out of core (which imports only the standard library) and overridable
with SMARTIOT_CONFIG / SMARTIOT_DATA_DIR so tests and portable installs never
touch the real user profile.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP_NAME = "smartiot"


def config_path() -> Path:
    override = os.environ.get("SMARTIOT_CONFIG")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / "config.toml"


def data_dir() -> Path:
    override = os.environ.get("SMARTIOT_DATA_DIR")
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
