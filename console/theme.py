"""Light and dark looks for the whole application.

Three layers must agree or the window looks patched together: the Qt style
sheet (most widgets), a QPalette (native dialogs, item views' inactive
states, anything the sheet does not reach) and pyqtgraph's own colours
(plots paint their own background, axes, titles and legends). ``apply_theme``
sets all three at once.

Charts follow a switch in one place: ``apply_theme`` re-colours every chart
in the open windows (background, axes, titles, legends, lines drawn in a
theme colour) by translating each colour of the old theme to the same role
in the new one, so colours a chart chose on purpose (a curve, a severity)
are kept. A chart that draws with theme colours of its own subscribes with
``follow_theme``.

The application style (Fusion) is set once. Setting it again on every switch
replaced the QStyle every widget, open menu and graphics item was using while
they were painting: with Analytics' stacked live charts open and a menu
opened right after a switch, that crashed the console inside Qt.

pyqtgraph (with numpy) is not imported here: it costs more than the rest of
the window up to its first paint, and the first page has no chart. Its
options are set at a switch when it is loaded, and otherwise right after the
first chart module imports it (``_ChartOptionsOnImport``), so every plot
still reads the theme's colours when it is made.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication, QWidget

from resources import read_text, resource_path

if TYPE_CHECKING:
    import pyqtgraph as pg

THEMES = ("light", "dark")
_THEME_PROPERTY = "smartiot_theme"
_STYLE_PROPERTY = "smartiot_style_set"
LEGEND_ALPHA = 210  # translucent legend backdrop: curves stay visible, labels legible


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
    instance = app or QApplication.instance()
    value = instance.property(_THEME_PROPERTY) if instance is not None else None
    return value if value in THEMES else "light"


def current_colors() -> ThemeColors:
    return colors(current_theme())


class ThemeNotifier(QObject):
    """Emits ``changed(name)`` after every switch (see ``follow_theme``)."""

    changed = Signal(str)


def theme_notifier() -> ThemeNotifier:
    """One per application, a child of it, so it lives exactly as long."""
    app = QApplication.instance()
    if app is None:
        raise RuntimeError("the theme notifier needs a QApplication")
    found = app.findChild(ThemeNotifier, "smartiot-theme-notifier")
    if found is None:
        found = ThemeNotifier(app)
        found.setObjectName("smartiot-theme-notifier")
    return found


def follow_theme(owner: QObject, callback: Callable[[ThemeColors], None]) -> None:
    """Call ``callback(colours)`` after every theme switch while ``owner`` exists.

    The subscription ends with the owner, so a chart that was closed is never
    called back (its C++ side is gone by then)."""
    notifier = theme_notifier()

    def deliver(name: str) -> None:
        if shiboken6.isValid(owner):
            callback(colors(name))

    notifier.changed.connect(deliver)

    def forget(*_: object) -> None:
        with contextlib.suppress(RuntimeError, TypeError):
            notifier.changed.disconnect(deliver)

    owner.destroyed.connect(forget)


# Roles whose colour is translated on a switch. Accent and status colours are
# left alone: a curve or a legend swatch drawn in one must keep matching the
# other items of its series.
_NEUTRAL_ROLES = ("plot_foreground", "plot_background", "text", "secondary", "disabled",
                  "border", "surface", "window", "icon")
_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def _colour_map(old: ThemeColors, new: ThemeColors) -> dict[str, str]:
    """#rrggbb of each neutral colour of the old theme -> the colour of the same
    role in the new one (first role wins where two roles share a colour)."""
    out: dict[str, str] = {}
    for name in _NEUTRAL_ROLES:
        out.setdefault(QColor(getattr(old, name)).name(), QColor(getattr(new, name)).name())
    return out


def _translated_html(text: str, mapping: dict[str, str]) -> str:
    """Inline colours of rich-text labels (legends drawn as one title line)."""
    return _HEX.sub(lambda m: mapping.get(m.group(0).lower(), m.group(0)), text)


def _translated(colour: QColor, mapping: dict[str, str]) -> QColor | None:
    target = mapping.get(colour.name())
    if target is None:
        return None
    out = QColor(target)
    out.setAlpha(colour.alpha())
    return out


def style_chart(view: pg.GraphicsView, c: ThemeColors,
                previous: ThemeColors | None = None) -> None:
    """Give one chart the theme ``c``: background, axes (lines, ticks, tick
    labels, axis labels), titles, legends (text and backdrop), text items and
    lines drawn in a colour of ``previous`` (the theme it was drawn in)."""
    import pyqtgraph as pg

    view.setBackground(c.plot_background)
    scene = view.scene()
    if scene is None:
        return
    mapping: dict[str, str] = {}
    for old in ([previous] if previous is not None else [t for t in _COLORS.values()
                                                          if t != c]):
        for key, value in _colour_map(old, c).items():
            mapping.setdefault(key, value)
    fg = c.plot_foreground
    for item in scene.items():
        if isinstance(item, pg.AxisItem):
            item.setPen(fg)
            item.setTextPen(fg)
        elif isinstance(item, pg.LegendItem):
            brush = item.opts.get("brush")
            backdrop = QColor(c.plot_background)
            backdrop.setAlpha(brush.color().alpha() if brush is not None and
                              brush.style() != 0 else LEGEND_ALPHA)
            item.setBrush(pg.mkBrush(backdrop))
            pen = item.opts.get("pen")
            if pen is not None:
                new_pen = _translated(pen.color(), mapping)
                if new_pen is not None:
                    item.setPen(pg.mkPen(new_pen))
            item.setLabelTextColor(fg)
            for _sample, label in item.items:
                label.setText(label.text)  # setLabelTextColor leaves the text as drawn
        elif isinstance(item, pg.LabelItem):
            current = item.opts.get("color")
            colour = None if current is None else _translated(pg.mkColor(current), mapping)
            text = _translated_html(item.text, mapping) if isinstance(item.text, str) \
                else item.text
            if current is None or colour is not None:
                item.setText(text, color=fg if colour is None else colour.name())
            elif text != item.text:
                item.setText(text)
        elif isinstance(item, pg.TextItem):
            colour = _translated(item.color, mapping)
            if colour is not None:
                item.setColor(colour)
        elif isinstance(item, pg.InfiniteLine):
            colour = _translated(item.pen.color(), mapping)
            if colour is not None:
                pen = pg.mkPen(item.pen)
                pen.setColor(colour)
                item.setPen(pen)
    view.viewport().update()


def charts(root: QWidget | None = None) -> list[pg.GraphicsView]:
    """Every chart in the application's windows (or under ``root``); none
    while pyqtgraph is not loaded (no chart can exist then)."""
    if "pyqtgraph" not in sys.modules:
        return []
    import pyqtgraph as pg

    app = QApplication.instance()
    roots = [root] if root is not None else (
        app.topLevelWidgets() if isinstance(app, QApplication) else [])
    found: list[pg.GraphicsView] = []
    for top in roots:
        if not shiboken6.isValid(top):
            continue
        if isinstance(top, pg.GraphicsView):
            found.append(top)
        found.extend(v for v in top.findChildren(pg.GraphicsView) if shiboken6.isValid(v))
    return found


def apply_theme(app: QApplication, name: str) -> None:
    """Fusion is forced because platform styles ignore parts of the palette
    and style sheet, which would make the two themes inconsistent per OS.

    It is set once, before the first style sheet: with a sheet applied,
    ``app.style()`` is Qt's style-sheet wrapper (whose name is empty), and
    setting the style again would destroy the style in use (see module doc)."""
    c = colors(name)
    sheet = style_sheet(name)
    previous_name = app.property(_THEME_PROPERTY)
    previous = _COLORS.get(previous_name) if isinstance(previous_name, str) else None
    if not app.property(_STYLE_PROPERTY):
        if app.style().name().lower() != "fusion":
            app.setStyle("Fusion")
        app.setProperty(_STYLE_PROPERTY, True)
    app.setPalette(build_palette(c))
    app.setStyleSheet(sheet)
    app.setProperty(_THEME_PROPERTY, name)
    # New plots read the global options; existing ones are re-coloured here.
    _configure_pyqtgraph(name)
    for view in charts():
        style_chart(view, c, previous if previous is not c else None)
    theme_notifier().changed.emit(name)


def _set_chart_options(pg: ModuleType, name: str) -> None:
    c = colors(name)
    pg.setConfigOptions(background=c.plot_background, foreground=c.plot_foreground,
                        antialias=True)


def _configure_pyqtgraph(name: str) -> None:
    """Set pyqtgraph's global options now if it is loaded, else as soon as
    something imports it (before that module can make a plot)."""
    pg = sys.modules.get("pyqtgraph")
    if pg is not None:
        _set_chart_options(pg, name)
        return
    if not any(isinstance(f, _ChartOptionsOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _ChartOptionsOnImport())


class _ChartOptionsOnImport(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A one-shot import hook: finds pyqtgraph with the other finders, runs
    its module as usual, then gives it the current theme's options and
    removes itself. Nothing else is touched; any other name is left to the
    regular finders."""

    def __init__(self) -> None:
        self._loader: importlib.abc.Loader | None = None

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != "pyqtgraph":
            return None
        others = [f for f in sys.meta_path if f is not self]
        for finder in others:
            find = getattr(finder, "find_spec", None)
            spec = None if find is None else find(fullname, path, target)
            if spec is not None and spec.loader is not None:
                self._loader = spec.loader
                spec.loader = self
                return spec  # type: ignore[no-any-return]
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None if self._loader is None else self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        if self._loader is None:
            raise ImportError("pyqtgraph: no loader found", name="pyqtgraph")
        module.__spec__.loader = self._loader  # type: ignore[union-attr]
        module.__loader__ = self._loader
        self._loader.exec_module(module)
        _set_chart_options(module, current_theme())
