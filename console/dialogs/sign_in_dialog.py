"""Sign in to the team's hub (or AWS) when the console works through the REST API.

Shown at start when no stored refresh token lets the console resume. The
password goes to the server once (on AWS not even that: Cognito's SRP proves
it without sending it), off the GUI thread; the dialog stays responsive and
says in plain words why a sign-in failed (wrong name or password, disabled
account, too many tries, hub unreachable). The user name is remembered next
to the window state; the password never is.

A sign-in may need a second step (core.ports.identity_provider): a new
password on the first sign-in with a temporary one, or an MFA code. The
dialog then shows that step in place of the password form and sends the
answer the same way. Against the AWS sandbox it offers the demo users.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from PySide6.QtCore import QSettings, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from console.icons import app_icon
from console.widgets.background import BackgroundCall
from core.model.roles import Actor
from core.ports.identity_provider import SignInChallenge
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
        #: the step being answered (None: the user name and password form)
        self.challenge: SignInChallenge | None = None
        self.setObjectName("SignInDialog")
        self.setWindowTitle("Sign in")
        self.setWindowIcon(app_icon())
        self.setModal(True)
        self.setMinimumWidth(420)
        self._background = BackgroundCall(self)

        where = getattr(remote, "description", "")
        intro = QLabel(f"Sign in to work on the fleet at<br><b>{remote.base_url}</b>"
                       + (f"<br><small>{where}</small>" if where else ""))
        intro.setObjectName("SignInServer")
        intro.setWordWrap(True)
        self.username = QLineEdit(remote.username or remembered_username(config_path, profile))
        self.username.setObjectName("SignInUsername")
        self.username.setPlaceholderText("your user name")
        self.password = QLineEdit()
        self.password.setObjectName("SignInPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("password")
        credentials = QWidget()
        form = QFormLayout(credentials)
        form.setContentsMargins(0, 0, 0, 0)
        self.demo = QComboBox()
        self.demo.setObjectName("SignInDemoUser")
        self._demo_logins = remote.demo_logins()
        if self._demo_logins:
            self.demo.addItem("Choose a demo user…", None)
            for login in self._demo_logins:
                self.demo.addItem(f"{login.username} ({login.role})", login.username)
            self.demo.currentIndexChanged.connect(self._pick_demo)
            form.addRow("Demo user", self.demo)
        else:
            self.demo.hide()
        form.addRow("User name", self.username)
        form.addRow("Password", self.password)

        # The second step: a new password, or an MFA code.
        step = QWidget()
        step_column = QVBoxLayout(step)
        step_column.setContentsMargins(0, 0, 0, 0)
        step_form = QFormLayout()
        self.step_prompt = QLabel("")
        self.step_prompt.setObjectName("SignInStepPrompt")
        self.step_prompt.setWordWrap(True)
        self.step_answer = QLineEdit()
        self.step_answer.setObjectName("SignInStepAnswer")
        self.step_repeat = QLineEdit()
        self.step_repeat.setObjectName("SignInStepRepeat")
        self.step_repeat.setEchoMode(QLineEdit.EchoMode.Password)
        self.step_answer_label = QLabel("New password")
        self.step_repeat_label = QLabel("Repeat it")
        step_form.addRow(self.step_answer_label, self.step_answer)
        step_form.addRow(self.step_repeat_label, self.step_repeat)
        step_column.addWidget(self.step_prompt)
        step_column.addLayout(step_form)
        self.steps = QStackedWidget()
        self.steps.addWidget(credentials)
        self.steps.addWidget(step)
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
        layout.addWidget(self.steps)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        (self.password if self.username.text() else self.username).setFocus()

    def _pick_demo(self, index: int) -> None:
        username = self.demo.itemData(index)
        for login in self._demo_logins:
            if login.username == username:
                self.username.setText(login.username)
                self.password.setText(login.password)
                self.sign_in_button.setFocus()

    def submit(self) -> None:
        if self.challenge is not None:
            self._answer_step(self.challenge)
            return
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

    def _answer_step(self, challenge: SignInChallenge) -> None:
        answer = self.step_answer.text()
        if not answer.strip():
            self._show_error("Enter the code." if challenge.kind == "code"
                             else "Enter the new password twice.")
            self.step_answer.setFocus()
            return
        if challenge.kind == "new_password" and answer != self.step_repeat.text():
            self._show_error("The two new passwords differ; enter the same one twice.")
            self.step_repeat.clear()
            self.step_repeat.setFocus()
            return
        self._busy(True)
        remote = self.remote
        self._background.start(lambda: remote.answer_challenge(challenge, answer), self._done,
                               self._failed, key="sign-in")

    def show_step(self, challenge: SignInChallenge) -> None:
        """The next step in place of the password form (typed answer: the session's)."""
        self.challenge = challenge
        code = challenge.kind == "code"
        self.step_prompt.setText(challenge.prompt)
        self.step_answer.clear()
        self.step_repeat.clear()
        self.step_answer.setEchoMode(QLineEdit.EchoMode.Normal if code
                                     else QLineEdit.EchoMode.Password)
        self.step_answer.setPlaceholderText("123456" if code else "new password")
        self.step_answer_label.setText("Code" if code else "New password")
        self.step_repeat.setVisible(not code)
        self.step_repeat_label.setVisible(not code)
        self.steps.setCurrentIndex(1)
        self.sign_in_button.setText("Continue")
        self.step_answer.setFocus()
        self.adjustSize()  # the prompt may wrap onto more lines than the form had

    def _done(self, actor: object) -> None:
        self._busy(False)
        if isinstance(actor, SignInChallenge):
            self.password.clear()
            self.show_step(actor)
            return
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
        if self.challenge is not None:
            self.step_answer.clear()
            self.step_repeat.clear()
            self.step_answer.setFocus()
        else:
            self.password.clear()
            self.password.setFocus()
        self._show_error(str(error) or type(error).__name__)

    def _busy(self, busy: bool) -> None:
        for widget in (self.username, self.password, self.demo, self.step_answer,
                       self.step_repeat, self.sign_in_button):
            widget.setEnabled(not busy)
        idle = "Sign in" if self.challenge is None else "Continue"
        self.sign_in_button.setText("Signing in…" if busy else idle)
        if not busy:
            self.sign_in_button.setDefault(True)  # Qt drops it while the button is disabled
        if busy:
            self.error.hide()

    def _show_error(self, text: str) -> None:
        self.error.setText(text)
        self.error.show()
