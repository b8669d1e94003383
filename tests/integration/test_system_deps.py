"""scripts/ensure-system-deps.sh, which `make run`, `make test` and `make screenshots`
call before anything else. ``id`` is replaced by one that says "not root" so the
script never installs anything here; ``ldconfig``/``fc-list`` stand for a fresh
Debian machine where that matters."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "ensure-system-deps.sh"

XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
                "libxcb-render-util0", "libxcb-xkb1", "libxkbcommon-x11-0", "libxcb-randr0",
                "libxcb-shape0", "libxcb-xfixes0", "libx11-xcb1")


def _bin(tmp_path: Path, **tools: str) -> Path:
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    for name, body in {"id": 'echo 1000', **tools}.items():
        path = directory / name.replace("_", "-")
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)
    return directory


def _run(tmp_path: Path, *args: str, **tools: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": f"{_bin(tmp_path, **tools)}:{os.environ['PATH']}"}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_gui_set_on_a_fresh_machine_prints_the_exact_apt_line(tmp_path):
    result = _run(tmp_path, "--gui", ldconfig="true", fc_list="true")
    assert result.returncode == 1
    line = next(li for li in result.stderr.splitlines() if "sudo apt-get install" in li)
    for package in (*XCB_PACKAGES, "fonts-dejavu-core", "libegl1"):
        assert package in line.split(), package
    assert "xvfb" not in line.split()  # only `make screenshots` needs a virtual screen


def test_xvfb_set_adds_the_virtual_screen(tmp_path):
    result = _run(tmp_path, "--xvfb", ldconfig="true", fc_list="true", xvfb_run="exit 0",
                  xauth="exit 0")
    assert result.returncode == 1
    assert "libxcb-cursor0" in result.stderr  # --xvfb includes the window's libraries


def test_this_machine_has_everything_and_the_script_says_nothing(tmp_path):
    """With the real ldconfig: every library found, however long its output (reading it
    through `grep -q` under pipefail reported present libraries as missing)."""
    for args in ((), ("--gui",)):
        result = _run(tmp_path, *args)
        assert (result.returncode, result.stdout, result.stderr) == (0, "", ""), args


def test_unknown_option_is_refused(tmp_path):
    result = _run(tmp_path, "--gpu")
    assert result.returncode == 2 and "--gpu" in result.stderr
