"""What the console loads before its first window is painted (issue #12: the
first painted window in < 1.5 s, heavy imports kept off that path).

A fresh interpreter builds the real ``MainWindow`` on the local profile,
offscreen, and reports ``sys.modules`` at the window's first ``Paint`` event
and again once the local backend (store, hub, broker) is up behind it. Only a
new process shows what an import costs: this test process has long loaded
everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = r"""
import dataclasses, json, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from PySide6.QtCore import QEvent, QObject
from console.app import build_main_window, ensure_application
from core.config import load_config
from core.context import AppContext
from core.plugins import PluginManager

WATCH = ("pyqtgraph", "alembic", "sqlalchemy.dialects.postgresql",
         "boto3", "botocore", "moto", "pycognito", "awscrt", "awsiot")
work = Path({work!r})
config = load_config(work / "config" / "config.toml", work / "data", env={{}})
assert config.profile_name == "local", config.profile_name
profile = dataclasses.replace(config.profile, broker="embedded", demo_fleet=False)
config = dataclasses.replace(config, profiles={{**config.profiles, "local": profile}})
app = ensure_application()
context = AppContext(config, PluginManager())
window = build_main_window(context)
painted = []

class Paint(QObject):
    def eventFilter(self, obj, event):
        if event.type() == QEvent.Type.Paint and not painted:
            painted.append(sorted(m for m in WATCH if m in sys.modules))
        return False

probe = Paint()
app.installEventFilter(probe)
window.show()
while not painted:
    app.processEvents()
context.backend  # waits for the worker building it: store opened, hub and broker up
after = sorted(m for m in WATCH if m in sys.modules)
print(json.dumps({{"at_paint": painted[0], "backend_up": after}}))
window.close()
context.close()
os._exit(0)
"""


def _start(tmp_path: Path, *, migrate_first: bool) -> dict[str, list[str]]:
    if migrate_first:  # here, so the child finds a database at head
        from core.config import load_config
        from core.store import Store

        config = load_config(tmp_path / "config" / "config.toml", tmp_path / "data", env={})
        Store.open(config.database_url).close()
    code = CHILD.format(root=str(ROOT), work=str(tmp_path))
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    env.pop("SMARTIOT_PROFILE", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_first_paint_without_charts_alembic_or_aws(tmp_path: Path) -> None:
    """The first page has no chart, so pyqtgraph (and numpy behind it) waits
    for the first one; a database already at head is opened without alembic;
    SQLite does not load the PostgreSQL dialect; nothing of AWS is loaded on the
    local profile, before or after the hub is up."""
    seen = _start(tmp_path, migrate_first=True)
    assert seen["at_paint"] == []
    assert seen["backend_up"] == []


def test_new_database_is_still_migrated_at_start_up(tmp_path: Path) -> None:
    """Keeping alembic off the path must not skip a migration: a new data
    directory gets its schema (alembic loaded for it), still without AWS."""
    seen = _start(tmp_path, migrate_first=False)
    assert "pyqtgraph" not in seen["at_paint"]
    assert "alembic" in seen["backend_up"]  # it brings every dialect's DDL along
    assert not {"boto3", "botocore", "moto", "pycognito"} & set(seen["backend_up"])
    from sqlalchemy import create_engine

    from core.store import migrate

    db = next((tmp_path / "data").rglob("*.db"))
    engine = create_engine(f"sqlite:///{db}")
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()
