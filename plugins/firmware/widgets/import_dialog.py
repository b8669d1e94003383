"""Import a firmware image: pick the file, say what it is, watch it being read,
hashed and signed. Errors (duplicate, downgrade, bad version) stay in the
dialog next to the form so the person can correct and try again.

On AWS the bytes go straight to S3 (plugins/api/client/uploads.py): the bar
shows what was sent, how much of how much and how fast, and Cancel stops the
upload at once; the parts already sent stay, so importing the same file again
resumes from them."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.widgets.background import BackgroundCall
from console.widgets.signals import safe_emit
from core.context import AppContext
from core.errors import SmartIotError
from core.model import Firmware
from core.model.roles import Permission
from plugins.firmware.widgets.common import error_text, guard, show_message

_VERSION_IN_NAME = re.compile(r"(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)")


class UploadStopped(SmartIotError):
    """Raised from the progress callback when the person presses Cancel."""


def _mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


class _ProgressRelay(QObject):
    """Created on the GUI thread; emitting from the worker queues delivery here."""

    progressed = Signal(int, int)


class _Message(QLabel):
    """The dialog's answer line. The window grows with it once it is laid out:
    a long error wraps onto more lines, and Qt's minimum size for a window
    ignores wrapped height, so without this the form was squeezed until its
    rows were drawn over each other."""

    def setText(self, text: str) -> None:
        super().setText(text)
        QTimer.singleShot(0, self, self._fit_window)

    def _fit_window(self) -> None:
        window = self.window()
        layout = window.layout()
        if layout is None or not layout.hasHeightForWidth():
            return
        needed = layout.totalHeightForWidth(window.width())
        if window.height() < needed:
            window.resize(window.width(), needed)


class ImportDialog(QDialog):
    imported = Signal(object)  # the Firmware

    def __init__(self, context: AppContext, device_types: Sequence[str] = (),
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.setWindowTitle("Import firmware")
        self.setMinimumWidth(520)
        self._background = BackgroundCall(self)
        self._relay = _ProgressRelay(self)
        self._relay.progressed.connect(self._on_progress)
        self.result_firmware: Firmware | None = None

        self.path = QLineEdit()
        self.path.setPlaceholderText("firmware image (.bin, .hex, …)")
        self.browse = QPushButton("Browse…")
        self.browse.clicked.connect(self._browse)
        file_row = QHBoxLayout()
        file_row.addWidget(self.path, 1)
        file_row.addWidget(self.browse)
        self.version = QLineEdit()
        self.version.setPlaceholderText("semantic version, e.g. 2.1.0")
        self.device_type = QComboBox()
        self.device_type.setEditable(True)
        self.device_type.addItems(sorted(device_types))
        self.device_type.setCurrentText("")
        editor = self.device_type.lineEdit()
        if editor is not None:  # always, since the box is editable
            editor.setPlaceholderText("device type, e.g. pump")
        self.notes = QPlainTextEdit()
        self.notes.setPlaceholderText("What changed (shown in the library and the wizard)")
        self.notes.setFixedHeight(90)
        # A check box never wraps: its own text stays short, and the sentence that
        # explains it wraps below (the long one was cut at the dialog's edge).
        self.allow_downgrade = QCheckBox("Allow an older version")
        self.downgrade_note = QLabel("Import it even when the library already holds a newer "
                                     "version for this device type (to roll devices back).")
        self.downgrade_note.setWordWrap(True)
        self.downgrade_note.setProperty("role", "secondary")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.message = _Message()
        self.message.setWordWrap(True)
        self.message.setVisible(False)

        form = QFormLayout()
        file_label = QLabel("&File")  # a row of a layout has no buddy: name the line edit
        file_label.setBuddy(self.path)
        form.addRow(file_label, file_row)
        form.addRow("&Version", self.version)
        form.addRow("Device &type", self.device_type)
        form.addRow("&Release notes", self.notes)
        downgrade = QVBoxLayout()  # the box and its explanation read as one item
        downgrade.setSpacing(2)
        downgrade.addWidget(self.allow_downgrade)
        downgrade.addWidget(self.downgrade_note)
        form.addRow("", downgrade)
        # Long answers (an S3 error naming the bucket and what to do) wrap in the
        # width the form has instead of widening the dialog past the screen.
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self._stop = False
        self._started_at = 0.0
        self._first_done: int | None = None
        self.rate_text = ""

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.import_button = self.buttons.addButton("Import",
                                                    QDialogButtonBox.ButtonRole.AcceptRole)
        self.import_button.setDefault(True)
        guard(self.import_button, context.actor, Permission.FIRMWARE_IMPORT)
        self.buttons.accepted.connect(self.start_import)
        self.buttons.rejected.connect(self._cancel)

        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.progress)
        layout.addWidget(self.message)
        layout.addWidget(self.buttons)
        self.path.textChanged.connect(self._guess_from_name)
        # A long path scrolls in its box: the whole of it is a hover away.
        self.path.textChanged.connect(self.path.setToolTip)

    # ------------------------------------------------------------ form
    def _browse(self) -> None:
        name, _ = QFileDialog.getOpenFileName(self, "Firmware image", "",
                                              "Firmware images (*.bin *.hex *.img *.fw);;"
                                              "All files (*)")
        if name:
            self.path.setText(name)

    def _guess_from_name(self, text: str) -> None:
        """``pump-2.1.0.bin`` fills in version and type when they are still empty."""
        name = Path(text).name
        match = _VERSION_IN_NAME.search(name)
        if match and not self.version.text():
            self.version.setText(match.group(1))
        if not self.device_type.currentText():
            for i in range(self.device_type.count()):
                if self.device_type.itemText(i) and self.device_type.itemText(i) in name:
                    self.device_type.setCurrentIndex(i)
                    break

    # ------------------------------------------------------------ import
    def start_import(self) -> None:
        path = Path(self.path.text().strip()).expanduser()
        if not self.path.text().strip():
            show_message(self.message, "Choose the firmware file first.")
            return
        version = self.version.text().strip()
        device_type = self.device_type.currentText().strip()
        notes = self.notes.toPlainText().strip()
        allow = self.allow_downgrade.isChecked()
        relay = self._relay
        self._stop = False
        self._started_at = time.monotonic()
        self._first_done = None

        def report(done: int, total: int) -> None:
            if self._stop:  # read on the worker: stops the upload between writes
                raise UploadStopped("stopped")
            safe_emit(relay.progressed, done, total)

        def run() -> Firmware:
            return self.context.api.firmware.import_file(
                path, version=version, device_type=device_type, release_notes=notes,
                allow_downgrade=allow, progress=report)

        self._busy(True)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        show_message(self.message, f"Importing {path.name}…", "secondary")
        self._background.start(run, self._done, self._failed)

    def _on_progress(self, done: int, total: int) -> None:
        """Percent, MiB of MiB and the rate since this run's first report (a
        resumed upload starts at what was already stored: not counted as speed)."""
        self.progress.setValue(100 if total <= 0 else min(100, done * 100 // total))
        now = time.monotonic()
        if self._first_done is None:
            self._first_done, self._started_at = done, now
        elapsed = now - self._started_at
        rate = (done - self._first_done) / elapsed if elapsed > 0.05 else 0.0
        self.rate_text = f"{_mib(done)} of {_mib(total)} MiB" + (
            f", {_mib(int(rate))} MiB/s" if rate > 0 else "")
        self.progress.setFormat(f"%p% — {self.rate_text}")

    def _cancel(self) -> None:
        """While busy: stop the upload (what was sent stays, to resume); else close."""
        if self.path.isEnabled():  # nothing running (the form is disabled while busy)
            self.reject()
            return
        self._stop = True
        show_message(self.message, "Stopping…", "secondary")

    def _done(self, firmware: Firmware) -> None:
        self._busy(False)
        self.progress.setValue(100)
        self.result_firmware = firmware
        show_message(self.message, f"Imported {firmware.firmware_id}, signed with key "
                                   f"{firmware.key_id}.", "success")
        self.imported.emit(firmware)
        self.accept()

    def _failed(self, exc: BaseException) -> None:
        self._busy(False)
        if isinstance(exc, UploadStopped):
            show_message(self.message, f"Stopped at {self.rate_text or '0%'}. What was sent "
                                       "is kept: import the same file again to resume.")
            return
        self.progress.setValue(0)
        show_message(self.message, f"Not imported: {error_text(exc)}")

    def _busy(self, busy: bool) -> None:
        for w in (self.path, self.browse, self.version, self.device_type, self.notes,
                  self.allow_downgrade):
            w.setEnabled(not busy)
        guard(self.import_button, self.context.actor, Permission.FIRMWARE_IMPORT, not busy)
