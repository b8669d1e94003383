"""Per-person broker accounts through mosquitto's dynamic-security plugin.

When a person signs in to the hub's API, the hub creates (or re-keys) their
own broker account, ``person.<name>``, and gives it the role's rights: every
console may read telemetry, status, the hub's heartbeat and command answers;
only roles allowed to send commands (technician, engineer, admin) may publish
commands and desired-state updates. The broker enforces this, so a console
that ignores its greyed-out buttons still cannot command a device. Disabling
the person deletes the account, and mosquitto disconnects its clients.

The hub talks to the plugin over MQTT (``$CONTROL/dynamic-security/v1``) as
``smartiot.accounts``, a dynsec client whose only right is that control
topic; its password is in the hub machine's secret store
(``broker.accounts.password``). Devices, the hub and shared console accounts
keep their password file and ACL: mosquitto asks the plugin first and falls
back to the files for names the plugin does not know.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.errors import SmartIotError
from core.model.roles import GRANTS, Permission, Role
from core.ports.broker_accounts import BrokerAccounts, BrokerLogin
from core.ports.user_directory import UserDirectory
from simulator.broker_auth import CONSOLE_COMMAND_RULES, CONSOLE_READ_RULES

ACCOUNTS_USER = "smartiot.accounts"
ACCOUNTS_PASSWORD = "broker.accounts.password"  # secret-store name, on the hub's machine
PERSON_PREFIX = "person."
READ_ROLE = "smartiot-console-read"
COMMAND_ROLE = "smartiot-console-command"
ADMIN_ROLE = "smartiot-accounts"
CONTROL_TOPIC = "$CONTROL/dynamic-security/v1"
RESPONSE_TOPIC = f"{CONTROL_TOPIC}/response"
PLUGIN_PATHS = (
    "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/aarch64-linux-gnu/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/opt/homebrew/lib/mosquitto_dynamic_security.so",
)
# mosquitto_ctrl's hashing of dynsec passwords: PBKDF2-SHA512, 12-byte salt.
_ITERATIONS = 101


class BrokerAccountsError(SmartIotError):
    """The broker refused or did not answer a dynamic-security command."""


def person_username(user: str) -> str:
    return f"{PERSON_PREFIX}{user}"


def find_dynsec_plugin() -> str | None:
    return next((p for p in PLUGIN_PATHS if Path(p).is_file()), None)


def _acls(rules: tuple[tuple[str, str], ...]) -> list[dict[str, Any]]:
    """The project's ACL rules (simulator.broker_auth) as dynsec ACLs: "read"
    may subscribe (receiving is allowed by default), "write" may publish."""
    acls: list[dict[str, Any]] = []
    for access, topic in rules:
        if access in ("read", "readwrite"):
            acls.append({"acltype": "subscribePattern", "topic": topic, "allow": True})
        if access in ("write", "readwrite"):
            acls.append({"acltype": "publishClientSend", "topic": topic, "allow": True})
    return acls


ROLE_ACLS: dict[str, list[dict[str, Any]]] = {
    READ_ROLE: _acls(CONSOLE_READ_RULES),
    COMMAND_ROLE: _acls(CONSOLE_COMMAND_RULES),
}


def roles_for(role: Role) -> list[str]:
    names = [READ_ROLE]
    if Permission.DEVICE_COMMAND in GRANTS[role]:
        names.append(COMMAND_ROLE)
    return names


def _hashed_client(username: str, password: str, roles: list[str]) -> dict[str, Any]:
    salt = os.urandom(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _ITERATIONS, 64)
    return {"username": username, "password": base64.b64encode(digest).decode(),
            "salt": base64.b64encode(salt).decode(), "iterations": _ITERATIONS,
            "roles": [{"rolename": r} for r in roles]}


def dynsec_config(accounts_password: str) -> dict[str, Any]:
    """The plugin's initial state: the hub's control account and the two
    console roles; people's accounts are added at sign-in."""
    control = [{"acltype": t, "topic": "$CONTROL/dynamic-security/#", "allow": True}
               for t in ("publishClientSend", "publishClientReceive", "subscribePattern")]
    return {
        "defaultACLAccess": {"publishClientSend": False, "publishClientReceive": True,
                             "subscribe": False, "unsubscribe": True},
        "clients": [_hashed_client(ACCOUNTS_USER, accounts_password, [ADMIN_ROLE])],
        "groups": [],
        "roles": [{"rolename": ADMIN_ROLE, "acls": control},
                  *({"rolename": name, "acls": acls} for name, acls in ROLE_ACLS.items())],
    }


def write_dynsec_config(directory: Path, accounts_password: str) -> Path:
    """``dynsec.json`` (0600) in ``directory``; an existing one is kept, since
    the plugin writes people's accounts into it."""
    path = directory / "dynsec.json"
    if path.exists():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(dynsec_config(accounts_password), handle, indent=1)
    return path


def dynsec_conf_lines(config_file: Path, plugin: str) -> list[str]:
    return ["", "# Per-person console accounts, managed by the hub (smartiot hub)",
            f"plugin {plugin}", f"plugin_opt_config_file {config_file.resolve()}"]


class DynsecAccounts(BrokerAccounts):
    """Creates, re-keys and deletes people's broker accounts on one broker."""

    def __init__(self, host: str, port: int, password: str, *, public_url: str,
                 username: str = ACCOUNTS_USER, tls: ssl.SSLContext | None = None,
                 timeout_s: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.public_url = public_url
        self.timeout_s = timeout_s
        self._answers: dict[str, dict[str, Any]] = {}
        self._arrived = threading.Condition()
        self._connected = threading.Event()
        self._refused = ""
        self._lock = threading.Lock()  # one command at a time, in order
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                   client_id=f"smartiot-accounts-{uuid.uuid4().hex[:12]}")
        self._client.username_pw_set(username, password)
        if tls is not None:
            self._client.tls_set_context(tls)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message

    @classmethod
    def for_broker_url(cls, url: str, password: str, *, public_url: str = "",
                       timeout_s: float = 10.0) -> DynsecAccounts:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise BrokerAccountsError(f"broker {url!r}: per-person accounts need an "
                                      "mqtt:// or mqtts:// broker URL")
        tls = ssl.create_default_context() if parts.scheme == "mqtts" else None
        port = parts.port or (8883 if tls else 1883)
        return cls(parts.hostname, port, password, public_url=public_url or url, tls=tls,
                   timeout_s=timeout_s)

    # ------------------------------------------------------------ life cycle
    def start(self) -> DynsecAccounts:
        self._client.connect_async(self.host, self.port, keepalive=30)
        self._client.loop_start()
        if not self._connected.wait(self.timeout_s):
            self.close()
            raise BrokerAccountsError(
                f"the broker at {self.host}:{self.port} did not accept {ACCOUNTS_USER}"
                + (f": {self._refused}" if self._refused else " in time")
                + "; is mosquitto's dynamic-security plugin configured "
                "(smartiot broker config --person-accounts)?")
        for name, acls in ROLE_ACLS.items():
            # Roles made by an older release get today's rules.
            if self._call({"command": "createRole", "rolename": name}, ok=("already exists",)):
                continue
            for acl in acls:
                self._call({"command": "addRoleACL", "rolename": name, **acl},
                           ok=("already exists",))
        return self

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    # ------------------------------------------------------------ BrokerAccounts
    def provision(self, user: str, role: Role) -> BrokerLogin:
        username = person_username(user)
        password = secrets.token_urlsafe(24)
        roles = [{"rolename": r} for r in roles_for(role)]
        created = self._call({"command": "createClient", "username": username,
                              "password": password, "roles": roles},
                             ok=("already exists",))
        if not created:
            self._call({"command": "setClientPassword", "username": username,
                        "password": password})
            self._call({"command": "modifyClient", "username": username, "roles": roles})
            self._call({"command": "enableClient", "username": username})
        return BrokerLogin(self.public_url, username, password,
                           can_command=COMMAND_ROLE in {r["rolename"] for r in roles})

    def remove(self, user: str) -> None:
        self._call({"command": "deleteClient", "username": person_username(user)},
                   ok=("not found",))

    # ------------------------------------------------------------ MQTT
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any,
                    properties: Any) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        client.subscribe(RESPONSE_TOPIC, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage
                    ) -> None:
        try:
            answers = json.loads(message.payload).get("responses", [])
        except (ValueError, AttributeError):
            return
        with self._arrived:
            for answer in answers:
                key = str(answer.get("correlationData") or "")
                if key:
                    self._answers[key] = answer
            self._arrived.notify_all()

    def _call(self, command: dict[str, Any], *, ok: tuple[str, ...] = ()) -> bool:
        """Send one command and wait for its answer. True: done; False: it
        failed with an error containing one of ``ok`` (e.g. it exists already)."""
        key = uuid.uuid4().hex
        with self._lock:
            info = self._client.publish(CONTROL_TOPIC, json.dumps(
                {"commands": [{**command, "correlationData": key}]}), qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerAccountsError(f"{command['command']}: not sent "
                                          f"({mqtt.error_string(info.rc)})")
            with self._arrived:
                if not self._arrived.wait_for(lambda: key in self._answers, self.timeout_s):
                    raise BrokerAccountsError(f"{command['command']}: the broker did not "
                                              f"answer within {self.timeout_s:g} s")
                answer = self._answers.pop(key)
        failure = str(answer.get("error") or "")
        if not failure:
            return True
        if any(text in failure.lower() for text in ok):
            return False
        raise BrokerAccountsError(f"{command['command']}: {failure}")

    # ------------------------------------------------------------ housekeeping
    def people(self) -> list[str]:
        """The people who hold a broker account now."""
        key = uuid.uuid4().hex
        with self._lock:
            self._client.publish(CONTROL_TOPIC, json.dumps({"commands": [
                {"command": "listClients", "verbose": False, "count": -1, "offset": 0,
                 "correlationData": key}]}), qos=1)
            with self._arrived:
                if not self._arrived.wait_for(lambda: key in self._answers, self.timeout_s):
                    raise BrokerAccountsError("listClients: the broker did not answer within "
                                              f"{self.timeout_s:g} s")
                answer = self._answers.pop(key)
        if answer.get("error"):
            raise BrokerAccountsError(f"listClients: {answer['error']}")
        names = (answer.get("data") or {}).get("clients") or []
        return sorted(str(n)[len(PERSON_PREFIX):] for n in names
                      if str(n).startswith(PERSON_PREFIX))

    def remove_disabled(self, directory: UserDirectory) -> list[str]:
        """Delete the broker accounts of people the directory no longer lets in
        (disabled or removed), whoever changed the directory (an admin's
        `smartiot users disable` runs in another process than the hub)."""
        removed = []
        for name in self.people():
            entry = directory.get(name)
            if entry is None or entry.disabled:
                self.remove(name)
                removed.append(name)
        return removed
