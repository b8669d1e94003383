"""The main window: navigation and pages come only from plugins.

The shell hard-codes no page. It asks ``context.plugins.pages()`` once,
lists them in ``order``, builds each on first show (see PageHost) and keeps
running whatever any plugin does. Window geometry and the open page are
restored from ``window.ini`` next to the config file.
"""

from __future__ import annotations

import logging
from functools import partial

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QHBoxLayout,
    QMainWindow,
    QVBoxLayout,
    QWidget,
)

from console.icons import app_icon, themed_icon
from console.navigation import ICON_NAME_ROLE, Sidebar
from console.navigator import ShellNavigation
from console.offline_status import OfflineBanner, PendingActionsIndicator
from console.page_host import PageHost
from console.preferences import save_theme
from console.shortcuts import assign_shortcuts
from console.sign_in import SignInFlow, describe
from console.status_bar import install_status_widgets
from console.theme import apply_theme, current_colors, current_theme
from console.window_state import WindowStateStore
from core.context import AppContext
from core.errors import ConfigError, SmartIotError
from core.ports.navigation import NoNavigation
from core.ports.offline import OfflineWork

log = logging.getLogger(__name__)

WINDOW_TITLE = "Smart IoT Fleet Console"
DEFAULT_SIZE = (1280, 800)
# The first window on a larger screen: most of it, so the devices list shows
# its names and every column without a scroll bar; past this a window is
# wider than anyone reads.
LARGEST_FIRST_SIZE = (1680, 1050)
FIRST_SHARE = 0.85


def first_size(available: tuple[int, int]) -> tuple[int, int]:
    """The window's size before anyone has sized it (``window.ini`` keeps it
    after): ``FIRST_SHARE`` of the screen's free area, at most
    ``LARGEST_FIRST_SIZE``, and never less than the default (a smaller screen
    gets the default, as before, which the window system fits to it)."""
    width, height = (max(default, min(int(free * FIRST_SHARE), largest))
                     for free, default, largest in zip(available, DEFAULT_SIZE,
                                                       LARGEST_FIRST_SIZE, strict=True))
    return width, height
# Menu shortcuts win over page shortcuts, so pages never shadow Quit or Settings.
SIGN_OUT_SHORTCUT = "Ctrl+Shift+L"  # "log out", as in desktop sessions
MENU_SHORTCUTS = ("Ctrl+,", "Ctrl+Q", "Ctrl+Shift+T", "F11", SIGN_OUT_SHORTCUT)


class MainWindow(QMainWindow):
    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setObjectName("MainWindow")
        self.setWindowTitle(WINDOW_TITLE)
        self.setWindowIcon(app_icon())
        self._state_store = WindowStateStore(context.config.path)

        specs = context.plugins.pages()
        self.sidebar = Sidebar(self)
        self.nav = self.sidebar.nav
        self.pages = PageHost(context, specs, self)
        central = QWidget(self)
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        # Through the REST API: "Offline — showing data from 12:03" above the pages
        # while the server cannot be reached (console/offline_status.py).
        self.offline_work = _offline_work(context)
        self.offline_banner: OfflineBanner | None = None
        if self.offline_work is not None and context.remote is not None:
            column = QWidget(central)
            column_layout = QVBoxLayout(column)
            column_layout.setContentsMargins(0, 0, 0, 0)
            column_layout.setSpacing(0)
            self.offline_banner = OfflineBanner(self.offline_work, context.remote.base_url,
                                                parent=column)
            column_layout.addWidget(self.offline_banner)
            column_layout.addWidget(self.pages, 1)
            layout.addWidget(column, 1)
        else:
            layout.addWidget(self.pages, 1)
        self.setCentralWidget(central)

        self.page_shortcuts = assign_shortcuts(specs, MENU_SHORTCUTS)
        self._shortcuts: list[QShortcut] = []
        for spec in specs:
            seq = self.page_shortcuts.get(spec.page_id, "")
            hint = QKeySequence(seq).toString(QKeySequence.SequenceFormat.NativeText)
            tooltip = spec.tooltip or spec.title
            self.nav.add_page(spec.page_id, spec.title, spec.icon,
                              f"{tooltip} ({hint})" if hint else tooltip)
            if seq:
                shortcut = QShortcut(QKeySequence(seq), self)
                shortcut.activated.connect(partial(self.show_page, spec.page_id))
                self._shortcuts.append(shortcut)
        self.nav.page_selected.connect(self.show_page)
        self.pages.empty_state.open_plugins_requested.connect(self.open_plugins_dialog)
        # Before any page is built: pages register their targets as they load.
        self.navigation = ShellNavigation(specs, self.show_page, self.set_badge)
        context.navigation = self.navigation
        self.destroyed.connect(partial(_forget_navigation, context, self.navigation))

        remote = context.remote
        self.sign_in = None if remote is None else SignInFlow(
            self, context, remote, self.sidebar, lambda _actor: None)
        self._build_menus()
        # Changes waiting in the outbox, and those that need a decision: shown from
        # the start (they were read back from disk), before anyone signs in.
        self.pending_actions: PendingActionsIndicator | None = None
        if self.offline_work is not None:
            flow = self.sign_in
            self.pending_actions = PendingActionsIndicator(
                self.offline_work,
                sign_in=None if flow is None else lambda: flow.ask("", required=False),
                parent=self.statusBar())
            self.statusBar().addPermanentWidget(self.pending_actions)
        # Through the REST API, status widgets (which read data) wait for the sign-in.
        self.status_widgets: dict[str, QWidget] = {} if self.sign_in is not None else \
            install_status_widgets(self.statusBar(), context, context.plugins.status_widgets())
        self._update_footer()
        self._refresh_themed_parts()

        screen = self.screen()
        free = screen.availableGeometry() if screen is not None else None
        self.resize(*first_size((free.width(), free.height()) if free is not None else (0, 0)))
        last_page = self._state_store.restore(self)
        self.full_screen_action.setChecked(self.isFullScreen())
        ids = self.page_ids()
        first = (last_page if last_page in ids else ids[0]) if ids else None
        if self.sign_in is not None:
            # Through the REST API: no page asks for data before someone signs in.
            self.sign_in.on_ready = lambda _actor: self._signed_in(first)
            self.sign_in.start()
        elif first is not None:
            self.show_page(first)

    # ------------------------------------------------------------ public API
    def offer_sign_in(self, message: str) -> None:
        """A page's call found the sign-in expired (core.errors.SignInExpired,
        via its StatusLine): show the sign-in dialog with why; cancelling it
        leaves the window as it was and the queued actions waiting."""
        if self.sign_in is not None:
            self.sign_in.ask(message, required=False)

    def page_ids(self) -> list[str]:
        """Page ids in navigation order."""
        return self.nav.page_ids()

    def current_page_id(self) -> str | None:
        return self.pages.current_page_id()

    def show_page(self, page_id: str) -> QWidget:
        """Builds the page on first use; raises KeyError for unknown ids."""
        widget = self.pages.show_page(page_id)
        self.nav.select_page(page_id)
        return widget

    def page_widget(self, page_id: str) -> QWidget | None:
        return self.pages.page_widget(page_id)

    def set_badge(self, page_id: str, text: str) -> None:
        """Short text (e.g. an alert count) shown next to a page; "" clears it."""
        self.nav.set_badge(page_id, text)

    def set_theme(self, name: str, *, persist: bool = True) -> None:
        app = QApplication.instance()
        if not isinstance(app, QApplication):
            raise RuntimeError("set_theme needs a QApplication")
        apply_theme(app, name)
        self._refresh_themed_parts()
        self.dark_theme_action.blockSignals(True)
        self.dark_theme_action.setChecked(name == "dark")
        self.dark_theme_action.blockSignals(False)
        if not persist:
            return
        try:
            save_theme(self.context, name)
        except (ConfigError, OSError) as exc:
            log.warning("theme not saved: %s", exc)
            self.statusBar().showMessage(f"Theme applied but not saved: {exc}", 10000)

    def save_window_state(self) -> None:
        self._state_store.save(self, self.current_page_id())

    def open_plugins_dialog(self) -> QDialog:
        from console.dialogs.plugins_dialog import PluginsDialog

        return self._open(PluginsDialog(self.context, self))

    def open_settings_dialog(self) -> QDialog:
        from console.dialogs.settings_dialog import SettingsDialog

        return self._open(SettingsDialog(self.context, self))

    def open_about_dialog(self) -> QDialog:
        from console.dialogs.about_dialog import AboutDialog

        return self._open(AboutDialog(self.context, self))

    # ------------------------------------------------------------ internals
    def _open(self, dialog: QDialog) -> QDialog:
        # open() rather than exec(): window-modal without a nested event loop,
        # which keeps plugin timers running and lets tests drive the dialog.
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self.settings_action = self._action("&Settings…", "Ctrl+,", self.open_settings_dialog)
        self.settings_action.setMenuRole(QAction.MenuRole.PreferencesRole)
        file_menu.addAction(self.settings_action)
        file_menu.addSeparator()
        if self.sign_in is not None:
            self.sign_out_action = self._action("Sign &out", SIGN_OUT_SHORTCUT,
                                                self.sign_in.sign_out)
            file_menu.addAction(self.sign_out_action)
        self.quit_action = self._action("&Quit", "Ctrl+Q", self.close)
        self.quit_action.setMenuRole(QAction.MenuRole.QuitRole)
        file_menu.addAction(self.quit_action)

        view_menu = bar.addMenu("&View")
        self.dark_theme_action = self._action("&Dark theme", "Ctrl+Shift+T")
        self.dark_theme_action.setCheckable(True)
        self.dark_theme_action.setChecked(current_theme() == "dark")
        self.dark_theme_action.toggled.connect(
            lambda on: self.set_theme("dark" if on else "light"))
        view_menu.addAction(self.dark_theme_action)
        self.full_screen_action = self._action("&Full screen", "F11")
        self.full_screen_action.setCheckable(True)
        self.full_screen_action.toggled.connect(self._set_full_screen)
        view_menu.addAction(self.full_screen_action)

        help_menu = bar.addMenu("&Help")
        self.plugins_action = self._action("&Plugins…", "", self.open_plugins_dialog)
        help_menu.addAction(self.plugins_action)
        self.about_action = self._action("&About…", "", self.open_about_dialog)
        self.about_action.setMenuRole(QAction.MenuRole.AboutRole)
        help_menu.addAction(self.about_action)

    def _action(self, text: str, shortcut: str, slot: object = None) -> QAction:
        action = QAction(text, self)
        if shortcut:
            action.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(lambda _checked=False: slot())  # type: ignore[operator]
        self.addAction(action)  # shortcuts keep working while the menu bar is hidden
        return action

    def _set_full_screen(self, on: bool) -> None:
        if on:
            self._was_maximized = self.isMaximized()
            self.showFullScreen()
        elif getattr(self, "_was_maximized", False):
            self.showMaximized()
        else:
            self.showNormal()

    def _signed_in(self, first_page: str | None) -> None:
        self._update_footer()
        if not self.status_widgets:
            self.status_widgets = install_status_widgets(
                self.statusBar(), self.context, self.context.plugins.status_widgets())
        if first_page is not None:
            self.show_page(first_page)

    def _update_footer(self) -> None:
        config = self.context.config
        remote = self.context.remote
        if remote is not None and remote.actor is not None:
            # The role shown is the server's answer, not this machine's config.
            self.sidebar.footer.setText(describe(remote.actor, remote))
            self.sidebar.footer.setToolTip(f"Profile {config.profile_name}; configuration: "
                                           f"{config.path}")
            return
        self.sidebar.footer.setText(
            f"Profile <b>{config.profile_name}</b> · {config.profile.organization}"
        )
        self.sidebar.footer.setToolTip(f"Configuration: {config.path}")

    def _refresh_themed_parts(self) -> None:
        c = current_colors()
        for row in range(self.nav.count()):
            item = self.nav.item(row)
            item.setIcon(themed_icon(item.data(ICON_NAME_ROLE) or "", c.icon, c.accent_text))
        self.sidebar.logo.setPixmap(app_icon().pixmap(24, 24))
        self.settings_action.setIcon(themed_icon("settings", c.icon))
        self.plugins_action.setIcon(themed_icon("plugins", c.icon))
        self.nav.viewport().update()

    def closeEvent(self, event: QCloseEvent) -> None:
        try:
            self.save_window_state()
        except OSError as exc:  # a read-only profile must not block quitting
            log.warning("window state not saved: %s", exc)
        super().closeEvent(event)


def _forget_navigation(context: AppContext, navigation: ShellNavigation, *_args: object) -> None:
    """A closed window's pages can no longer be opened (a plain function: it runs
    while the window's C++ object is being destroyed)."""
    if context.navigation is navigation:
        context.navigation = NoNavigation()


def _offline_work(context: AppContext) -> OfflineWork | None:
    """The REST session's outbox and offline cache, when it keeps them."""
    try:
        remote = context.remote
    except SmartIotError as exc:  # said where the session is needed (sign-in, start-up)
        log.warning("no REST session for the offline indicators: %s", exc)
        return None
    except Exception:  # a fault in a client plugin: no indicator, its traceback logged
        log.exception("no REST session for the offline indicators")
        return None
    work_of = getattr(remote, "offline_work", None)
    work = work_of() if callable(work_of) else None
    return work if work is not None else None
