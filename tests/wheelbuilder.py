"""Build a real wheel for a test-only plugin package, so tests install it with
pip exactly as a user installs a third-party plugin (no build backend needed)."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_plugin_wheel(package_dir: Path, dist_name: str, version: str, entry_point: str,
                       out_dir: Path) -> Path:
    """``entry_point`` is "name = module" for the smartiot.plugins group."""
    norm = dist_name.replace("-", "_")
    wheel = out_dir / f"{norm}-{version}-py3-none-any.whl"
    dist_info = f"{norm}-{version}.dist-info"
    files: dict[str, bytes] = {}
    for path in sorted(package_dir.rglob("*.py")):
        files[f"{package_dir.name}/{path.relative_to(package_dir)}"] = path.read_bytes()
    files[f"{dist_info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {dist_name}\nVersion: {version}\n".encode()
    )
    files[f"{dist_info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: smartiot-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    files[f"{dist_info}/entry_points.txt"] = f"[smartiot.plugins]\n{entry_point}\n".encode()
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return wheel
