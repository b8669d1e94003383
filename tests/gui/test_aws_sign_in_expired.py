"""A sign-in that ends while the console works (on the AWS sandbox, through
the REST API and Cognito): the acknowledgement made meanwhile stays in the
outbox, the next page load offers the sign-in dialog saying the sign-in has
expired, cancelling it keeps the window, and signing in again sends the
queued acknowledgement, applied once in DynamoDB."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from PySide6.QtCore import Qt

from core.model import Alert, AlertState, Device, Severity
from plugins.api.client.outbox import ActionQueued
from plugins.aws.console_access.session import CognitoSession
from tests.gui.test_aws_sign_in import (  # noqa: F401  (fixtures)
    ORGANIZATION,
    Sandbox,
    _nobody_signed_in,
    _open,
    _session,
    sandbox,
)


def _sign_in(window: Any, qtbot: Any, username: str, password: str) -> None:
    dialog = window.sign_in.dialog
    dialog.username.setText(username)
    dialog.password.setText(password)
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)


def test_an_expired_sign_in_offers_the_dialog_and_keeps_the_queued_acknowledgement(
        sandbox: Sandbox, qtbot: Any) -> None:  # noqa: F811
    from plugins.aws.backend import build_aws_backend_for
    from plugins.aws.settings import AwsSettings

    info = sandbox.info
    aws = build_aws_backend_for(AwsSettings(region=info["region"], stage=info["stage"],
                                            endpoint_url=info["endpoint_url"]))
    aws.registry.upsert_many([Device("expiry-pump", device_type="pump",
                                     organization=ORGANIZATION)])
    alert = Alert("expiry-pump", "rule-high", Severity.WARNING, "pressure high", 9.5)
    aws.alerts.add(alert)

    window = _open(sandbox, qtbot)
    username, password = sandbox.login("technician")
    _sign_in(window, qtbot, username, password)
    provider = _session(window).provider
    assert isinstance(provider, CognitoSession)
    tokens = provider._tokens
    assert tokens is not None
    # The sign-in ends: signed out everywhere at Cognito, and the ID token's hour is over.
    sandbox.idp().global_sign_out(AccessToken=tokens.access_token)
    provider._tokens = dataclasses.replace(tokens, expires_at=0.0)

    with pytest.raises(ActionQueued, match="is sent once you sign in again"):
        window.context.remote.api.alerts.acknowledge(alert.alert_id, "on it")
    work = window.offline_work
    assert work is not None and work.status().pending == 1
    assert work.status().problem.startswith("Sign in again")
    indicator = window.pending_actions
    indicator.refresh()
    assert indicator.sign_in_button.isVisibleTo(window)

    # The next page load offers the sign-in, saying why.
    window.show_page("devices")
    window.page_widget("devices").refresh()
    qtbot.waitUntil(lambda: window.sign_in.dialog.isVisible(), timeout=20_000)
    dialog = window.sign_in.dialog
    assert "your sign-in has expired — sign in again" in dialog.error.text()
    # Cancelling keeps the window (and the queued acknowledgement).
    dialog.reject()
    assert window.isVisible() and work.status().pending == 1
    assert aws.alerts.get(alert.alert_id).state is AlertState.ACTIVE

    indicator.sign_in_button.click()
    qtbot.waitUntil(lambda: window.sign_in.dialog.isVisible(), timeout=20_000)
    _sign_in(window, qtbot, username, password)
    qtbot.waitUntil(lambda: work.status().pending == 0, timeout=20_000)
    stored = aws.alerts.get(alert.alert_id)
    assert stored.state is AlertState.ACKNOWLEDGED and stored.version == alert.version + 1
    window.context.close()
