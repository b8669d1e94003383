"""The window's side of working through the REST API (a profile's ``api_url``).

Before any page asks for data, the console resumes the last sign-in from the
refresh token in the secret store, or shows the sign-in dialog when there is
none (or the server no longer accepts it). Until then the navigation is
disabled, so no page calls the API unauthenticated. "Sign out" tells the
server, forgets the tokens and closes the window: the next start asks again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMainWindow, QWidget

from console.dialogs.sign_in_dialog import SignInDialog
from console.widgets.background import BackgroundCall
from core.context import AppContext
from core.model.roles import Actor
from core.ports.remote_api import RemoteSession

log = logging.getLogger(__name__)


class SignInFlow(QObject):
    def __init__(self, window: QMainWindow, context: AppContext, remote: RemoteSession,
                 navigation: QWidget, on_ready: Callable[[Actor], None]) -> None:
        super().__init__(window)
        self.window = window
        self.context = context
        self.remote = remote
        self.navigation = navigation
        self.on_ready = on_ready
        self.dialog: SignInDialog | None = None
        self._background = BackgroundCall(self)

    def start(self) -> None:
        self.navigation.setEnabled(False)
        self.window.statusBar().showMessage(f"Connecting to {self.remote.base_url}…")
        remote = self.remote
        self._background.start(remote.resume, self._resumed, self._resume_failed,
                               key="resume")

    def _resumed(self, ok: object) -> None:
        if ok and self.remote.actor is not None:
            self._ready(self.remote.actor)
        else:
            self.ask("")

    def _resume_failed(self, error: BaseException) -> None:
        log.info("the last sign-in was not resumed: %s", error)
        self.ask(str(error))

    def ask(self, message: str, *, required: bool = True) -> SignInDialog:
        """Show the sign-in dialog (window-modal, not a nested event loop).
        ``required``: at start-up, cancelling closes the window; a sign-in that
        expired while working (``required=False``) is cancelled back to the
        window, its queued actions still waiting."""
        if self.dialog is not None and self.dialog.isVisible():
            return self.dialog  # several pages noticed the same expiry
        self.window.statusBar().clearMessage()
        dialog = SignInDialog(self.remote, config_path=self.context.config.path,
                              profile=self.context.config.profile_name, parent=self.window)
        if message:
            dialog.error.setText(message)
            dialog.error.show()
        dialog.signed_in.connect(self._signed_in)
        if required:
            dialog.rejected.connect(self.window.close)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _signed_in(self, actor: object) -> None:
        assert isinstance(actor, Actor)
        self._ready(actor)

    def _ready(self, actor: Actor) -> None:
        self.window.statusBar().clearMessage()
        self.navigation.setEnabled(True)
        self.on_ready(actor)

    def sign_out(self) -> None:
        remote = self.remote
        self.window.statusBar().showMessage("Signing out…")
        self._background.start(remote.sign_out, self._signed_out, self._signed_out,
                               key="sign-out")

    def _signed_out(self, _result: object) -> None:
        self.window.close()


def describe(actor: Actor, remote: RemoteSession) -> str:
    """The footer: who the server says this is, and where."""
    org = f" · {actor.organization}" if actor.organization else ""
    return f"<b>{actor.user}</b> ({actor.role.value}){org} · {remote.base_url}"
