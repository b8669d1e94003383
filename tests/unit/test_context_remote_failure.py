"""A REST session that cannot be opened is said once: every page and indicator
asks the context for it, and each asking again would repeat the whole attempt
(on aws-local, starting a sandbox that cannot start: 15 s each)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.config import load_config
from core.context import AppContext
from core.errors import SmartIotError
from core.hookspecs import hookimpl
from core.plugins import PluginManager
from core.registrations import ApiClientSpec


class FailingClient:
    def __init__(self) -> None:
        self.attempts = 0

    def connect(self, context: AppContext) -> Any:
        self.attempts += 1
        raise SmartIotError("the AWS sandbox stopped as it started (port 5000 is in use)")

    @hookimpl
    def smartiot_register_api_clients(self, register: Callable[[ApiClientSpec], None]) -> None:
        register(ApiClientSpec("failing", "cannot connect", self.connect))


def test_a_session_that_cannot_open_is_tried_once_and_its_reason_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('profile = "team"\n[profiles.team]\napi_url = "http://127.0.0.1:9"\n')
    config = load_config(path, tmp_path / "data", env={})
    client = FailingClient()
    plugins = PluginManager(builtins=(), entry_points=False, blocked=())
    plugins.register("failing", client)
    context = AppContext(config, plugins)
    for _ in range(3):
        with pytest.raises(SmartIotError, match="port 5000 is in use"):
            _ = context.remote
    assert client.attempts == 1
