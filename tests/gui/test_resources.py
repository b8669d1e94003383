from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

import resources
from console.icons import STATUS_KINDS, app_icon, status_icon, themed_icon
from core.config import load_config

LINE_ICONS = ("devices", "alerts", "firmware", "analytics", "audit", "users", "settings", "plugins",
              "page")


def test_resources_package_imports_nothing_from_the_project():
    tree = ast.parse(Path(resources.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & {"core", "console", "plugins", "simulator", "PySide6"}


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256, 512])
def test_app_icon_pngs(size):
    image = QImage(str(resources.resource_path("icons", f"app-{size}.png")))
    assert (image.width(), image.height()) == (size, size)


def test_icons_render(qapp):
    assert not app_icon().isNull()
    assert QImage(str(resources.resource_path("icons", "app.png"))).width() == 512
    for kind in STATUS_KINDS:
        assert not status_icon(kind).pixmap(16, 16).isNull()
    for name in LINE_ICONS:
        image = themed_icon(name, "#ff0000").pixmap(24, 24).toImage()
        assert any(image.pixelColor(x, y).alpha() > 0 and image.pixelColor(x, y).red() > 200
                   for x in range(24) for y in range(24)), name
    assert not themed_icon("no-such-icon", "#000000").isNull()  # falls back to "page"


def test_default_config_parses_including_the_commented_aws_example(tmp_path):
    text = resources.read_text("default_config.toml")
    config = load_config(_write(tmp_path / "a.toml", text), tmp_path, env={})
    assert {"local", "lab"} <= set(config.profiles)
    uncommented = "\n".join(
        line[2:] if line.startswith("# [profiles.aws-dev]") or (
            line.startswith("# ") and "=" in line and "aws-dev" in text[:text.find(line)]
            and text.find("[profiles.aws-dev]") < text.find(line)) else line
        for line in text.splitlines()
    )
    aws = load_config(_write(tmp_path / "b.toml", uncommented), tmp_path, env={})
    assert aws.profiles["aws-dev"].backend == "aws"
    assert aws.profiles["aws-dev"].region == "eu-west-1"


def test_office_scenario():
    data = tomllib.loads(resources.read_text("scenarios", "office.toml"))
    assert sum(group["count"] for group in data["groups"]) == 20
    assert data["groups"][0]["model"] == "environmental"


def test_style_sheets_cover_the_same_selectors():
    def selectors(name):
        return [line.split("{")[0].strip()
                for line in resources.read_text("styles", f"{name}.qss").splitlines()
                if line.rstrip().endswith("{")]

    assert selectors("light") == selectors("dark")
    assert len(selectors("light")) > 30


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_style_sheet_images_exist():
    import re

    from console.theme import style_sheet

    for name in ("light", "dark"):
        sheet = style_sheet(name)
        assert "@ICONS@" not in sheet
        for url in re.findall(r"url\(([^)]+)\)", sheet):
            assert Path(url).is_file(), url
