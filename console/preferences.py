"""Saving user choices back to the TOML file without baking in overrides.

The running ``Config`` includes ``SMARTIOT_*`` variables and CLI flags;
writing it back as-is would turn a one-off ``--broker`` into a permanent
setting. So every save starts from the file alone (``env={}``, no flags),
changes only what the user changed, and writes that.
"""

from __future__ import annotations

import dataclasses

from core.config import Config, load_config, save_config
from core.context import AppContext


def config_on_disk(context: AppContext) -> Config:
    """Raises ConfigError when the file is broken, so callers can say so."""
    current = context.config
    return load_config(current.path, current.data_dir, env={})


def save_theme(context: AppContext, theme: str) -> None:
    on_disk = config_on_disk(context)
    save_config(dataclasses.replace(on_disk, theme=theme))
    context.config = dataclasses.replace(context.config, theme=theme)
