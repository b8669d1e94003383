"""run_console owns the event loop; once ``exec()`` returns Qt treats the
application as closing (new windows no longer activate), so these tests run
it in a child process instead of the shared pytest-qt QApplication."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from console.app import run_console
    from core.config import load_config
    from core.context import AppContext
    from core.hookspecs import hookimpl
    from core.plugins import PluginManager

    events = []

    class Lifecycle:
        @hookimpl
        def smartiot_startup(self, context):
            events.append("startup")
            def quit_when_shown():
                shown = [w for w in QApplication.topLevelWidgets()
                         if w.objectName() == "MainWindow" and w.isVisible()]
                if shown:
                    events.append("shown")
                    QApplication.instance().quit()
            poll = QTimer(QApplication.instance())
            poll.timeout.connect(quit_when_shown)
            poll.start(20)
            QTimer.singleShot(5000, QApplication.instance().quit)

        @hookimpl
        def smartiot_shutdown(self, context):
            events.append("shutdown")

    tmp = Path(sys.argv[1])
    manager = PluginManager(builtins=(), entry_points=False, blocked=())
    manager.register("life", Lifecycle())
    code = run_console(AppContext(load_config(tmp / "config.toml", tmp / "data", env={}),
                                  manager))
    app = QApplication.instance()
    print(json.dumps({"code": code, "events": events, "name": app.applicationName(),
                      "org": app.organizationName(), "icon": not app.windowIcon().isNull()}))
""")


def test_run_console_lifecycle(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0
    assert result["events"] == ["startup", "shown", "shutdown"]
    assert (result["name"], result["org"], result["icon"]) == ("smartiot", "smartiot", True)
    # quitting the loop (not closing the window) still saves the window state
    assert (tmp_path / "window.ini").is_file()
