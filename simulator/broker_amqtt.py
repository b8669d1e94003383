"""amqtt plugins: the same password and ACL files as mosquitto, and an open door
that still keeps sessions.

amqtt's own ``FileAuthPlugin`` knows Argon2 and ``$6$`` hashes only, not
mosquitto's PBKDF2-SHA512 (``$7$``), and its topic ACL has no per-user
patterns (%u); these two plugins evaluate our files with mosquitto's
semantics (simulator.broker_auth), so the no-mosquitto fallback enforces the
same logins and the same per-device topics. Both files are re-read when the
embedded broker adds devices (``reload``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin

from simulator.broker_auth import Acl, read_password_file, verify_mosquitto_hash

log = logging.getLogger("simulator.broker")

_LOADED: list[Any] = []  # live plugin instances, for reload()


def reload() -> None:
    for plugin in list(_LOADED):
        plugin.load()


class AcceptEveryClient(BaseAuthPlugin):  # type: ignore[misc]
    """Lets every client in, as amqtt's ``AnonymousAuthPlugin`` does, without
    marking its session anonymous. amqtt drops an anonymous session the moment
    its client disconnects and queues nothing for it, so a device's persistent
    session (``clean_session=False``) was lost across every reboot and link
    drop: a command published while the device was away never reached it.
    Brokers that check no credentials (the AWS sandbox's IoT Core stand-in, an
    anonymous embedded broker) keep sessions as IoT Core and mosquitto do."""

    async def authenticate(self, *, session: Any) -> bool:
        return True


class MosquittoPasswordAuth(BaseAuthPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        password_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.path = Path(self.config.password_file)
        self.users: dict[str, str] = {}
        self._stamp: tuple[int, int] = (0, 0)
        self.load()
        _LOADED.append(self)

    def load(self) -> None:
        info = self.path.stat()
        self._stamp = (info.st_mtime_ns, info.st_size)
        self.users = read_password_file(self.path)

    async def authenticate(self, *, session: Any) -> bool:
        username = getattr(session, "username", None)
        if self._accepts(username, session.password):
            return True
        # Another process of this user may have added or re-keyed devices
        # (simulator.local_brokers): re-read a changed file once.
        info = self.path.stat()
        if (info.st_mtime_ns, info.st_size) != self._stamp:
            self.load()
            if self._accepts(username, session.password):
                return True
        log.warning("broker refused client %s: %s", getattr(session, "client_id", "?"),
                    "no user name" if not username else f"bad user name or password ({username})")
        return False

    def _accepts(self, username: str | None, password: str | None) -> bool:
        hashed = self.users.get(username or "")
        return hashed is not None and verify_mosquitto_hash(password or "", hashed)

    async def close(self) -> None:
        if self in _LOADED:
            _LOADED.remove(self)


class MosquittoAclCheck(BaseTopicPlugin):  # type: ignore[misc]
    @dataclass
    class Config:
        acl_file: str = ""

    def __init__(self, context: Any) -> None:
        super().__init__(context)
        self.path = Path(self.config.acl_file)
        self.acl = Acl([])
        self.load()
        _LOADED.append(self)

    def load(self) -> None:
        self.acl = Acl.parse(self.path.read_text(), str(self.path))

    async def topic_filtering(self, *, session: Any = None, topic: str | None = None,
                              action: Any = None) -> bool:
        if session is None or not topic:
            return False
        access = "write" if action == Action.PUBLISH else "read"
        allowed = self.acl.allows(session.username, access, topic)
        if not allowed and action != Action.RECEIVE:
            log.warning("broker denied %s %s %s", session.username or session.client_id,
                        "PUBLISH to" if access == "write" else "SUBSCRIBE to", topic)
        return allowed

    async def close(self) -> None:
        if self in _LOADED:
            _LOADED.remove(self)
