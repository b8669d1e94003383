"""Fixtures for pytest-qt tests of the real console widgets.

Each test gets its own config file and plugin manager in a tmp dir, with no
built-in plugins and no entry points, so what the window shows is exactly
what the test registered.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel, QWidget

from core.config import Config, load_config
from core.context import AppContext
from core.hookspecs import hookimpl
from core.model.roles import Actor
from core.plugins import PluginManager
from core.registrations import PageSpec, StatusWidgetSpec


class PagesPlugin:
    def __init__(self, *specs: PageSpec) -> None:
        self.specs = specs

    @hookimpl
    def smartiot_register_pages(self, register: Callable[[PageSpec], None]) -> None:
        for spec in self.specs:
            register(spec)


class StatusPlugin:
    def __init__(self, *specs: StatusWidgetSpec) -> None:
        self.specs = specs

    @hookimpl
    def smartiot_register_status_widgets(
        self, register: Callable[[StatusWidgetSpec], None]
    ) -> None:
        for spec in self.specs:
            register(spec)


def label_page(text: str) -> Callable[[AppContext], QWidget]:
    def factory(_context: AppContext) -> QWidget:
        label = QLabel(text)
        label.setObjectName(f"page-{text}")
        return label

    return factory


def page(page_id: str, order: int = 100, **kwargs: Any) -> PageSpec:
    kwargs.setdefault("factory", label_page(page_id))
    return PageSpec(page_id, kwargs.pop("title", page_id.title()), order=order, **kwargs)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config" / "config.toml"


@pytest.fixture
def config(config_path: Path, tmp_path: Path) -> Config:
    return load_config(config_path, tmp_path / "data", env={})


@pytest.fixture
def make_context(config: Config) -> Callable[..., AppContext]:
    def make(*plugins: tuple[str, object], config_: Config | None = None,
             actor: Actor | None = None) -> AppContext:
        manager = PluginManager(builtins=(), entry_points=False, blocked=())
        for name, plugin in plugins:
            manager.register(name, plugin)
        return AppContext(config_ or config, manager, actor=actor)

    return make


@pytest.fixture
def make_window(qtbot: Any) -> Callable[[AppContext], Any]:
    from console.app import build_main_window

    def make(context: AppContext, *, show: bool = False) -> Any:
        window = build_main_window(context)
        qtbot.addWidget(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    return make


def pages_plugin(specs: Iterable[PageSpec]) -> tuple[str, PagesPlugin]:
    return ("test-pages", PagesPlugin(*specs))
