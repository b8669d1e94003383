"""Icons for the shell and for plugin pages.

The line icons are drawn with ``currentColor`` and tinted here, because one
fixed grey is either too faint on the dark theme or too loud on the light
one. Plugins name an icon by its resource name ("devices"), by a file path,
or by a freedesktop theme name; anything unknown falls back to a neutral page
glyph rather than an empty gap in the navigation.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QIcon, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

from resources import resource_path

APP_ICON_SIZES = (16, 32, 64, 128, 256, 512)
_RENDER_SIZES = (16, 20, 24, 32, 40, 48, 64)
STATUS_KINDS = ("online", "offline", "warning", "error")


def app_icon() -> QIcon:
    icon = QIcon()
    for size in APP_ICON_SIZES:
        icon.addFile(str(resource_path("icons", f"app-{size}.png")))
    return icon


def status_icon(kind: str) -> QIcon:
    """Coloured status dots keep their own colours: they carry meaning."""
    if kind not in STATUS_KINDS:
        raise ValueError(f"unknown status icon {kind!r}; expected one of {STATUS_KINDS}")
    return QIcon(str(resource_path("icons", f"status-{kind}.svg")))


def _svg_source(name: str) -> Path | None:
    if not name:
        return None
    as_path = Path(name)
    if as_path.suffix.lower() == ".svg" and as_path.is_file():
        return as_path
    bundled = resource_path("icons", f"{name}.svg")
    return bundled if bundled.is_file() else None


def _render(svg: bytes, color: str, size: int) -> QPixmap:
    renderer = QSvgRenderer(QByteArray(svg.replace(b"currentColor", color.encode())))
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter, QRectF(0, 0, size, size))
    painter.end()
    return pixmap


def themed_icon(name: str, color: str, selected_color: str | None = None) -> QIcon:
    """A tinted icon; ``selected_color`` lets the current navigation entry
    light up in the accent colour like its text does."""
    source = _svg_source(name)
    if source is None:
        if name and Path(name).is_file():
            return QIcon(name)
        if name and QIcon.hasThemeIcon(name):
            return QIcon.fromTheme(name)
        source = resource_path("icons", "page.svg")
    svg = source.read_bytes()
    icon = QIcon()
    for size in _RENDER_SIZES:
        icon.addPixmap(_render(svg, color, size), QIcon.Mode.Normal)
        if selected_color:
            icon.addPixmap(_render(svg, selected_color, size), QIcon.Mode.Selected)
    return icon
