"""QApplication bootstrap for ``smartiot`` without a subcommand.

Kept separate from the window so tests can build a MainWindow against their
own QApplication (pytest-qt's) while the real entry point owns the event
loop, the plugins' start-up/shut-down and Ctrl+C in the terminal.
"""

from __future__ import annotations

import signal
import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from console import gui_thread_gc
from console.icons import app_icon
from console.main_window import MainWindow
from console.theme import apply_theme
from core import __version__
from core.context import AppContext

APP_NAME = "smartiot"


def ensure_application(argv: list[str] | None = None) -> QApplication:
    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    if not isinstance(app, QApplication):
        raise RuntimeError("a QCoreApplication already exists; the console needs widgets")
    app.setApplicationName(APP_NAME)
    app.setOrganizationName(APP_NAME)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName(APP_NAME)  # lets Wayland docks find the icon
    app.setWindowIcon(app_icon())
    return app


def build_main_window(context: AppContext) -> MainWindow:
    """The theme goes first: pyqtgraph reads its colours when a plot is made."""
    app = ensure_application()
    apply_theme(app, context.config.theme)
    return MainWindow(context)


def _quit_on_sigint(app: QApplication) -> QTimer:
    # Qt's event loop never returns to Python on its own, so a SIGINT would
    # wait for the next Python callback; the idle timer provides one. SIGTERM (a
    # logout, `kill`, a service manager) closes the same way, so what the console
    # started (the aws-local sandbox, its hub processes) is stopped, not orphaned.
    signal.signal(signal.SIGINT, lambda *_: app.quit())
    signal.signal(signal.SIGTERM, lambda *_: app.quit())
    timer = QTimer(app)
    timer.start(250)
    timer.timeout.connect(lambda: None)
    return timer


# How long a thread may hold the GIL while another waits for it (CPython: 5 ms).
# Every Qt signal into Python takes the GIL back; with the local hub's writer in
# the same process each could wait this long, and the window's 10 ms frames did:
# at 10,000 devices 1 ms cut the live chart's p99 stall 132 -> 23 ms
# (bench/console_bench.py; docs/benchmarks.md "Console, seventh round").
GUI_SWITCH_INTERVAL_S = 0.001


def tune_gui_process(app: QApplication) -> gui_thread_gc.GuiThreadCollector:
    """What the console's process needs beside its window: the GIL handed to
    the GUI thread sooner, and garbage cycles collected on it (cycles with Qt
    objects die on this thread; gui_thread_gc says why)."""
    sys.setswitchinterval(GUI_SWITCH_INTERVAL_S)
    return gui_thread_gc.install(app)


def run_console(context: AppContext) -> int:
    app = ensure_application()
    collector = tune_gui_process(app)
    window = build_main_window(context)
    context.plugins.startup(context)
    try:
        window.show()
        _quit_on_sigint(app)
        return int(app.exec())
    finally:
        # quit() from Ctrl+C or a session logout ends the loop without closing
        # the window; close it so its state is saved and Qt lets go of it.
        window.close()
        context.plugins.shutdown(context)
        collector.stop()
