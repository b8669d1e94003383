"""The firmware library page, newest version first per device type."""

from __future__ import annotations

from console.widgets.record_page import RecordPage
from console.widgets.record_table import Column
from core.context import AppContext
from core.model import Firmware

COLUMNS = [
    Column("Device type", lambda f: f.device_type),
    Column("Version", lambda f: str(f.version)),
    Column("Size (bytes)", lambda f: f.size, align_right=True),
    Column("SHA-256", lambda f: f.sha256[:16] + "…"),
    Column("Signed", lambda f: "yes" if f.is_signed else "no"),
    Column("Added", lambda f: f.created_at),
    Column("Release notes", lambda f: f.release_notes.splitlines()[0] if f.release_notes else ""),
]


def build_firmware_page(context: AppContext) -> RecordPage:
    def load() -> list[Firmware]:
        repo = context.backend.firmware
        if repo is None:
            raise RuntimeError(f"the {context.backend.name} backend has no firmware library")
        images = repo.list()
        images.sort(key=lambda f: f.version, reverse=True)
        images.sort(key=lambda f: f.device_type)
        return images

    return RecordPage("Firmware", COLUMNS, load, empty_text="No firmware images imported yet.")
