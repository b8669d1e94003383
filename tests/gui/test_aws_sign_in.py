"""The console and the CLI on the AWS sandbox (`smartiot aws sandbox` as a
subprocess, started the way `smartiot --profile aws-local` starts it, every
port free-chosen): people sign in to its Cognito user pool with SRP through
the real sign-in dialog, see their role, and the pages offer what the role
may do while the API refuses the rest; the first sign-in with a temporary
password and an MFA code are steps of the same dialog; a wrong password is
said plainly; signing out forgets the tokens; `smartiot login
--password-stdin` lets later commands run as that person; and no token
reaches a log, the config or the data directory."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from PySide6.QtCore import Qt

from core import secrets
from core.config import load_config
from core.context import AppContext
from core.model import Device
from core.model.roles import Actor, Permission, Role
from core.plugins import PluginManager
from plugins.api.client.identity_session import IdentityApiSession
from plugins.aws.console_access.launch import LaunchedSandbox
from plugins.aws.console_access.session import CognitoSession

ORGANIZATION = "demo"


@dataclass
class Sandbox:
    info: dict[str, Any]
    home: Path

    @property
    def data_dir(self) -> Path:
        return self.home / "data"

    @property
    def config_path(self) -> Path:
        return self.home / "config" / "config.toml"

    def login(self, role: str) -> tuple[str, str]:
        user = next(u for u in self.info["users"] if u["role"] == role)
        return user["username"], user["password"]

    def idp(self) -> Any:
        return boto3.client("cognito-idp", region_name=self.info["region"],
                            endpoint_url=self.info["endpoint_url"],
                            aws_access_key_id="sandbox", aws_secret_access_key="sandbox")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    home = tmp_path_factory.mktemp("aws-console")
    launched = LaunchedSandbox(home / "data", extra_args=(
        "--aws-port", "0", "--api-port", "0", "--mqtt-port", "0", "--ws-port", "0",
        "--devices", "3", "--rate", "1"))
    info = launched.start()
    try:
        yield Sandbox(info, home)
    finally:
        launched.stop()
    assert not (home / "data" / "aws-sandbox.json").exists()  # its state file went with it


def _context(sandbox: Sandbox) -> AppContext:
    # The sandbox's ports are free-chosen here: the console finds them (the
    # API, the user pool, the live link) in its state file, as aws-local does.
    config = load_config(sandbox.config_path, sandbox.data_dir,
                         env={"SMARTIOT_PROFILE": "aws-local"})
    return AppContext(config, PluginManager(entry_points=False, blocked=()))


def _open(sandbox: Sandbox, qtbot: Any) -> Any:
    from console.app import build_main_window

    context = _context(sandbox)
    window = build_main_window(context)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.sign_in.dialog is not None
                    and window.sign_in.dialog.isVisible(), timeout=20_000)
    return window


def _session(window: Any) -> IdentityApiSession:
    remote = window.context.remote
    assert isinstance(remote, IdentityApiSession)
    return remote


@pytest.fixture(autouse=True)
def _nobody_signed_in(sandbox: Sandbox) -> Iterator[None]:
    """Each test starts with no refresh token of the sandbox's pool stored."""
    from plugins.aws.cognito.signin import CognitoPool
    from plugins.aws.console_access.session import refresh_secret_name

    name = refresh_secret_name(CognitoPool(sandbox.info["region"], sandbox.info["user_pool_id"],
                                           sandbox.info["user_pool_client_id"]))
    secrets.delete_secret(name)
    yield
    secrets.delete_secret(name)


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_each_role_signs_in_through_the_dialog_and_the_pages_offer_what_it_may_do(
        sandbox: Sandbox, qtbot: Any, role: str) -> None:
    window = _open(sandbox, qtbot)
    dialog = window.sign_in.dialog
    assert sandbox.info["api_url"] in dialog.findChild(type(dialog.error), "SignInServer").text()
    assert not window.sidebar.isEnabled()  # no page asks for data before the sign-in
    username, _password = sandbox.login(role)
    # The sandbox's demo users are offered; picking one fills the form.
    index = dialog.demo.findData(username)
    assert index > 0, [dialog.demo.itemText(i) for i in range(dialog.demo.count())]
    dialog.demo.setCurrentIndex(index)
    assert dialog.username.text() == username and dialog.password.text()
    qtbot.keyClick(dialog.password, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)

    session = _session(window)
    actor = window.context.actor
    assert actor == Actor(username, Role(role), ORGANIZATION)  # from the ID token's groups
    assert f"<b>{username}</b> ({role})" in window.sidebar.footer.text()
    assert window.sidebar.isEnabled()
    # The refresh token is in the secret store; the ID token is what the API gets.
    assert secrets.get_secret(session.provider.secret_name)  # type: ignore[attr-defined]

    window.show_page("devices")  # the window may reopen on the last page shown
    devices = window.page_widget("devices")
    qtbot.waitUntil(lambda: devices.model.rowCount() == 3, timeout=20_000)
    assert devices.register_button.isEnabled() == actor.can(Permission.DEVICE_REGISTER)
    window.show_page("firmware")
    firmware = window.page_widget("firmware")
    assert firmware.library.import_button.isEnabled() == actor.can(Permission.FIRMWARE_IMPORT)

    if not actor.can(Permission.DEVICE_REGISTER):
        # The page greys it out; the API refuses it anyway.
        devices.register_device(Device("pump-77", device_type="pump",
                                       organization=ORGANIZATION))
        qtbot.waitUntil(lambda: "Could not register pump-77" in devices.status_label.text(),
                        timeout=20_000)
        assert role in devices.status_label.text()

    # Sign out (File > Sign out, Ctrl+Shift+L): RevokeToken at Cognito (moto lacks
    # it: docs/aws.md, Gaps) and this machine forgets every token; the window closes.
    assert window.sign_out_action.shortcut().toString() == "Ctrl+Shift+L"
    provider = session.provider
    assert isinstance(provider, CognitoSession)
    window.sign_out_action.trigger()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=20_000)
    assert secrets.get_secret(provider.secret_name) is None
    assert provider.actor is None and provider.resume() is None
    window.context.close()


def test_a_wrong_password_or_name_is_said_plainly_and_nothing_is_kept(
        sandbox: Sandbox, qtbot: Any) -> None:
    """An unknown name on moto's pool; a wrong password as Cognito answers it
    (moto accepts any SRP proof, docs/aws.md Gaps: botocore's Stubber)."""
    from botocore.stub import Stubber

    window = _open(sandbox, qtbot)
    dialog = window.sign_in.dialog
    session = _session(window)
    username, password = sandbox.login("technician")

    dialog.username.setText("nobody.here")
    dialog.password.setText(password)
    dialog.submit()
    assert not dialog.sign_in_button.isEnabled()  # busy: SRP runs off the GUI thread
    qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled(), timeout=20_000)
    assert "there is no user nobody.here" in dialog.error.text()

    client = session.provider._signin._client  # type: ignore[attr-defined]
    with Stubber(client) as stub:
        stub.add_response("initiate_auth", {"ChallengeName": "PASSWORD_VERIFIER",
                                            "ChallengeParameters": {
                                                "SALT": "ab" * 16, "SRP_B": "cd" * 64,
                                                "USERNAME": username,
                                                "USER_ID_FOR_SRP": username,
                                                "SECRET_BLOCK": "c2VjcmV0"}})
        stub.add_client_error("respond_to_auth_challenge", "NotAuthorizedException",
                              "Incorrect username or password.", 400)
        dialog.username.setText(username)
        dialog.password.setText(password + "-not")
        dialog.submit()
        qtbot.waitUntil(lambda: dialog.sign_in_button.isEnabled(), timeout=20_000)
    assert dialog.error.text() == "wrong user name or password", dialog.error.text()
    assert dialog.password.text() == "" and dialog.isVisible()
    assert session.actor is None and not window.sidebar.isEnabled()
    assert secrets.get_secret(session.provider.secret_name) is None  # type: ignore[attr-defined]

    dialog.password.setText(password)
    dialog.submit()
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)
    assert window.context.actor.role is Role.TECHNICIAN
    window.close()
    window.context.close()


def test_the_first_sign_in_with_a_temporary_password_sets_a_new_one_in_the_dialog(
        sandbox: Sandbox, qtbot: Any) -> None:
    idp = sandbox.idp()
    pool = sandbox.info["user_pool_id"]
    idp.admin_create_user(UserPoolId=pool, Username="nina.new", MessageAction="SUPPRESS",
                          TemporaryPassword="Temporary-Pass-1",
                          UserAttributes=[{"Name": "custom:organization",
                                           "Value": ORGANIZATION}])
    idp.admin_add_user_to_group(UserPoolId=pool, Username="nina.new", GroupName="support")

    window = _open(sandbox, qtbot)
    dialog = window.sign_in.dialog
    dialog.username.setText("nina.new")
    dialog.password.setText("Temporary-Pass-1")
    dialog.submit()
    qtbot.waitUntil(lambda: dialog.step_answer.isVisible(), timeout=20_000)
    assert dialog.challenge is not None and dialog.challenge.kind == "new_password"
    assert "temporary password" in dialog.step_prompt.text()
    assert dialog.sign_in_button.text() == "Continue"

    dialog.step_answer.setText("Nina-Own-Password-2")
    dialog.step_repeat.setText("Nina-Own-Password-3")
    dialog.submit()
    assert "differ" in dialog.error.text()  # checked here, nothing sent
    dialog.step_answer.setText("Nina-Own-Password-2")
    dialog.step_repeat.setText("Nina-Own-Password-2")
    qtbot.keyClick(dialog.step_repeat, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)
    assert window.context.actor == Actor("nina.new", Role.SUPPORT, ORGANIZATION)
    assert "<b>nina.new</b> (support)" in window.sidebar.footer.text()
    status = idp.admin_get_user(UserPoolId=pool, Username="nina.new")["UserStatus"]
    assert status == "CONFIRMED"
    window.close()
    window.context.close()


def test_an_mfa_code_is_a_step_of_the_dialog(sandbox: Sandbox, qtbot: Any) -> None:
    """SMS MFA: moto sends no SMS and takes any six digits; the dialog's step and
    what it sends are the same for an authenticator app's code."""
    idp = sandbox.idp()
    username, password = sandbox.login("engineer")
    idp.admin_set_user_mfa_preference(UserPoolId=sandbox.info["user_pool_id"],
                                      Username=username,
                                      SMSMfaSettings={"Enabled": True, "PreferredMfa": True})
    try:
        window = _open(sandbox, qtbot)
        dialog = window.sign_in.dialog
        dialog.username.setText(username)
        dialog.password.setText(password)
        dialog.submit()
        qtbot.waitUntil(lambda: dialog.step_answer.isVisible(), timeout=20_000)
        assert dialog.challenge is not None and dialog.challenge.kind == "code"
        assert "6-digit code" in dialog.step_prompt.text()
        assert not dialog.step_repeat.isVisible()
        dialog.step_answer.setText("12a456")
        dialog.submit()
        qtbot.waitUntil(lambda: dialog.error.isVisible() and dialog.sign_in_button.isEnabled(),
                        timeout=20_000)
        assert "6-digit code" in dialog.error.text()
        dialog.step_answer.setText("123 456")
        dialog.submit()
        qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=20_000)
        assert window.context.actor.role is Role.ENGINEER
        window.close()
        window.context.close()
    finally:
        idp.admin_set_user_mfa_preference(UserPoolId=sandbox.info["user_pool_id"],
                                          Username=username,
                                          SMSMfaSettings={"Enabled": False,
                                                          "PreferredMfa": False})


def _smartiot(sandbox: Sandbox, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SMARTIOT_CONFIG": str(sandbox.config_path),
           "SMARTIOT_DATA_DIR": str(sandbox.data_dir)}
    return subprocess.run([sys.executable, "-m", "console.cli", "--profile", "aws-local",
                           *args], input=stdin, capture_output=True, text=True, env=env,
                          timeout=120)


def test_smartiot_login_with_password_stdin_then_commands_run_as_that_person(
        sandbox: Sandbox) -> None:
    username, password = sandbox.login("support")
    login = _smartiot(sandbox, "-v", "login", "--username", username, "--password-stdin",
                      stdin=password + "\n")
    assert login.returncode == 0, login.stderr[-2000:]
    assert f"as {username} (support, organization demo)" in login.stdout

    listed = _smartiot(sandbox, "-v", "devices", "list")
    assert listed.returncode == 0, listed.stderr[-2000:]
    for device in sandbox.info["devices"]:
        assert device in listed.stdout
    # Support may not register devices: the API refuses it for this person.
    refused = _smartiot(sandbox, "devices", "register", "pump-78", "--type", "pump")
    assert refused.returncode != 0
    assert "support" in refused.stderr

    out = _smartiot(sandbox, "logout")
    assert out.returncode == 0 and "signed out" in out.stdout
    after = _smartiot(sandbox, "devices", "list")
    assert after.returncode == 1 and "sign in again" in after.stderr
    # Neither the password nor anything token-like was printed (DEBUG included).
    for text in (login.stdout + login.stderr, listed.stdout + listed.stderr):
        assert password not in text
        assert "eyJ" not in text  # every JWT starts so


def test_tokens_never_reach_logs_the_config_or_the_data_dir(
        sandbox: Sandbox, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, botocore's included
    context = _context(sandbox)
    session = context.remote
    assert isinstance(session, IdentityApiSession)
    provider = session.provider
    assert isinstance(provider, CognitoSession)
    username, password = sandbox.login("admin")
    actor = session.sign_in(username, password)
    assert isinstance(actor, Actor) and actor.role is Role.ADMIN
    first = provider._tokens
    assert first is not None
    assert context.api.devices.all()  # a call with the ID token as bearer
    assert provider.access_token() == first.id_token  # fresh: no renewal
    # Four minutes before the ID token expires, the next call renews it first
    # (REFRESH_TOKEN_AUTH with the stored refresh token), then sends the new one.
    provider._clock = lambda: first.expires_at - 240
    assert context.api.devices.all()
    renewed = provider._tokens
    assert renewed is not None and renewed.id_token != first.id_token
    assert renewed.refresh_token == first.refresh_token
    provider._clock = time.time
    assert provider.access_token() == renewed.id_token  # good for another hour
    session.sign_out()
    context.close()

    tokens = {first.id_token, first.access_token, first.refresh_token, renewed.id_token,
              renewed.access_token}
    assert all(len(t) >= 32 for t in tokens)  # moto's refresh token is a UUID
    assert any(r.name.startswith("botocore") for r in caplog.records)  # DEBUG was on
    logged = caplog.text
    for token in tokens:
        assert token not in logged
        for part in token.split(".")[1:]:  # a JWT's payload or signature alone neither
            assert part not in logged
    assert password not in logged
    files = [p for p in (*sandbox.data_dir.rglob("*"), *sandbox.config_path.parent.rglob("*"),
                         *Path(os.environ["SMARTIOT_DATA_DIR"]).rglob("*")) if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for token in tokens:
            assert token.encode() not in data, path


def test_smartiot_login_asks_for_a_new_password_on_a_first_sign_in(
        sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Interactive: the temporary password, then the new one twice (a
    mismatch is asked again); a script is told to sign in interactively once."""
    from console.cli import main

    idp = sandbox.idp()
    pool = sandbox.info["user_pool_id"]
    idp.admin_create_user(UserPoolId=pool, Username="olga.new", MessageAction="SUPPRESS",
                          TemporaryPassword="Temporary-Pass-1",
                          UserAttributes=[{"Name": "custom:organization",
                                           "Value": ORGANIZATION}])
    idp.admin_add_user_to_group(UserPoolId=pool, Username="olga.new", GroupName="engineer")
    monkeypatch.setenv("SMARTIOT_DATA_DIR", str(sandbox.data_dir))
    config = ["--config", str(sandbox.config_path), "--profile", "aws-local"]

    monkeypatch.setattr("sys.stdin", io.StringIO("Temporary-Pass-1\n"))
    assert main([*config, "login", "--username", "olga.new", "--password-stdin"]) == 1
    assert "run `smartiot login` once interactively" in capsys.readouterr().err

    answers = iter(["Temporary-Pass-1", "Olga-Own-Pass-22", "Olga-Own-Pass-23",
                    "Olga-Own-Pass-22", "Olga-Own-Pass-22"])
    monkeypatch.setattr("plugins.api.login_commands.getpass.getpass",
                        lambda prompt="": next(answers))
    assert main([*config, "login", "--username", "olga.new"]) == 0
    out = capsys.readouterr()
    assert "temporary password" in out.err and "differ" in out.err
    assert "as olga.new (engineer, organization demo)" in out.out
    assert next(answers, None) is None  # every answer was asked for
    status = idp.admin_get_user(UserPoolId=pool, Username="olga.new")["UserStatus"]
    assert status == "CONFIRMED"
    assert main([*config, "logout"]) == 0
