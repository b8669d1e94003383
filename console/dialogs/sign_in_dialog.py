"""Sign in to the team's hub (or AWS) when the console works through the REST API.

Shown at start when no stored refresh token lets the console resume. The
password goes to the server once, off the GUI thread; the dialog stays
responsive and says in plain words why a sign-in failed (wrong name or
password, disabled account, too many tries, hub unreachable). The user name
is remembered next to the window state; the password never is.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from console.icons import app_icon
from console.widgets.background import BackgroundCall
from core.model.roles import Actor
from core.ports.remote_api import RemoteSession

REMEMBER_FILE = "window.ini"


def _settings(config_path: Path) -> QSettings:
    return QSettings(str(Path(config_path).parent / REMEMBER_FILE), QSettings.Format.IniFormat)


def remembered_username(config_path: Path, profile: str) -> str:
    value = _settings(config_path).value(f"signin/{profile}/username")
    return value if isinstance(value, str) else ""


def remember_username(config_path: Path, profile: str, username: str) -> None:
    Path(config_path).parent.mkdir(parents=True, exist_ok=True)
    settings = _settings(config_path)
    settings.setValue(f"signin/{profile}/username", username)
    settings.sync()


class SignInDialog(QDialog):
    #: the server's answer: who the person is (role and organization included)
    signed_in = Signal(object)

    def __init__(self, remote: RemoteSession, *, config_path: Path, profile: str,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.remote = remote
        self._config_path = config_path
        self._profile = profile
        self.actor: Actor | None = None
        self.setObjectName("SignInDialog")
        self.setWindowTitle("Sign in")
        self.setWindowIcon(app_icon())
        self.setModal(True)
        self.setMinimumWidth(420)
        self._background = BackgroundCall(self)

        intro = QLabel(f"Sign in to work on the fleet at<br><b>{remote.base_url}</b>")
        intro.setObjectName("SignInServer")
        intro.setWordWrap(True)
        self.username = QLineEdit(remote.username or remembered_username(config_path, profile))
        self.username.setObjectName("SignInUsername")
        self.username.setPlaceholderText("your user name")
        self.password = QLineEdit()
        self.password.setObjectName("SignInPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        form = QFormLayout()
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)
        self.error = QLabel("")
        self.error.setObjectName("SignInError")
        self.error.setWordWrap(True)
        self.error.setProperty("role", "error")  # the theme's error colour (light and dark)
        self.error.hide()

        buttons = QDialogButtonBox()
        self.sign_in_button = QPushButton("Sign in")
        self.sign_in_button.setObjectName("SignInButton")
        self.sign_in_button.setDefault(True)
        buttons.addButton(self.sign_in_button, QDialogButtonBox.ButtonRole.AcceptRole)
        self.quit_button = buttons.addButton("Quit", QDialogButtonBox.ButtonRole.RejectRole)
        # Enter anywhere presses "Sign in" (the default button); "Quit" never takes
        # Enter over, also while "Sign in" is disabled during a sign-in.
        self.quit_button.setAutoDefault(False)
        self.sign_in_button.clicked.connect(self.submit)
        self.quit_button.clicked.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        (self.password if self.username.text() else self.username).setFocus()

    def submit(self) -> None:
        username = self.username.text().strip()
        password = self.password.text()
        if not username or not password:
            self._show_error("Enter your user name and password.")
            (self.username if not username else self.password).setFocus()
            return
        self._busy(True)
        remote = self.remote
        self._background.start(lambda: remote.sign_in(username, password), self._done,
                               self._failed, key="sign-in")

    def _done(self, actor: object) -> None:
        self._busy(False)
        assert isinstance(actor, Actor)
        self.actor = actor
        self.password.clear()
        # A read-only profile directory: the name is asked again next time.
        with contextlib.suppress(OSError):
            remember_username(self._config_path, self._profile, self.username.text().strip())
        self.signed_in.emit(actor)
        self.accept()

    def _failed(self, error: object) -> None:
        self._busy(False)
        self.password.clear()
        self.password.setFocus()
        self._show_error(str(error) or type(error).__name__)

    def _busy(self, busy: bool) -> None:
        for widget in (self.username, self.password, self.sign_in_button):
            widget.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")
        if not busy:
            self.sign_in_button.setDefault(True)  # Qt drops it while the button is disabled
        if busy:
            self.error.hide()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
