"""Light and dark looks for the whole application.

Three layers must agree or the window looks patched together: the Qt style
sheet (most widgets), a QPalette (native dialogs, item views' inactive
states, anything the sheet does not reach) and pyqtgraph's own colours
(plots paint their own background). ``apply_theme`` sets all three at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

from resources import read_text, resource_path

THEMES = ("light", "dark")
_THEME_PROPERTY = "smartiot_theme"


@dataclass(frozen=True, slots=True)
class ThemeColors:
    window: str
    surface: str
    text: str
    secondary: str
    disabled: str
    border: str
    accent: str
    accent_text: str
    selection: str
    danger: str
    warning: str
    success: str
    icon: str
    plot_background: str
    plot_foreground: str


LIGHT = ThemeColors(
    window="#f5f6f8", surface="#ffffff", text="#1f2933", secondary="#5f6b7a",
    disabled="#a0a8b3", border="#e2e5ea", accent="#2563eb", accent_text="#1d4ed8",
    selection="#dbe7fd", danger="#dc2626", warning="#d97706", success="#16a34a",
    icon="#52606d", plot_background="#ffffff", plot_foreground="#3e4c59",
)

DARK = ThemeColors(
    window="#1b1e23", surface="#23272e", text="#e6e9ee", secondary="#9aa4b1",
    disabled="#5d6672", border="#343a43", accent="#3b82f6", accent_text="#8fb3ff",
    selection="#1e3a66", danger="#f87171", warning="#fbbf24", success="#4ade80",
    icon="#aab3be", plot_background="#23272e", plot_foreground="#c3cad3",
)

_COLORS = {"light": LIGHT, "dark": DARK}


def colors(name: str) -> ThemeColors:
    try:
        return _COLORS[name]
    except KeyError:
        raise ValueError(f"unknown theme {name!r}; expected one of {', '.join(THEMES)}") from None


def style_sheet(name: str) -> str:
    """The sheets refer to indicator images as ``@ICONS@/x.svg``: QSS has no
    notion of a package, so the real directory is filled in at load time."""
    colors(name)  # validates the name before touching the file system
    icons = resource_path("icons").as_posix()
    return read_text("styles", f"{name}.qss").replace("@ICONS@", icons)


def build_palette(c: ThemeColors) -> QPalette:
    palette = QPalette()
    role = QPalette.ColorRole
    for r, value in (
        (role.Window, c.window), (role.WindowText, c.text), (role.Base, c.surface),
        (role.AlternateBase, c.window), (role.Text, c.text), (role.Button, c.surface),
        (role.ButtonText, c.text), (role.ToolTipBase, c.text), (role.ToolTipText, c.surface),
        (role.PlaceholderText, c.disabled), (role.Highlight, c.accent),
        (role.HighlightedText, "#ffffff"), (role.Link, c.accent_text),
        (role.Mid, c.border), (role.Midlight, c.border), (role.Dark, c.border),
        (role.BrightText, c.danger),
    ):
        palette.setColor(r, QColor(value))
    disabled = QPalette.ColorGroup.Disabled
    for r in (role.WindowText, role.Text, role.ButtonText):
        palette.setColor(disabled, r, QColor(c.disabled))
    return palette


def current_theme(app: QApplication | None = None) -> str:
    app = app or QApplication.instance()
    value = app.property(_THEME_PROPERTY) if app is not None else None
    return value if value in THEMES else "light"


def current_colors() -> ThemeColors:
    return colors(current_theme())


def apply_theme(app: QApplication, name: str) -> None:
    """Fusion is forced because platform styles ignore parts of the palette
    and style sheet, which would make the two themes inconsistent per OS."""
    c = colors(name)
    sheet = style_sheet(name)
    if app.style().name().lower() != "fusion":
        app.setStyle("Fusion")
    app.setPalette(build_palette(c))
    app.setStyleSheet(sheet)
    app.setProperty(_THEME_PROPERTY, name)
    # New plots read the global options; existing ones must be repainted by hand.
    pg.setConfigOptions(background=c.plot_background, foreground=c.plot_foreground,
                        antialias=True)
    for widget in app.allWidgets():
        if isinstance(widget, pg.GraphicsView):
            widget.setBackground(c.plot_background)
