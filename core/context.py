"""The application context handed to plugins: config, plugins and the backend.

The backend is built lazily on first use so that ``smartiot --version`` or
``smartiot plugins`` never open a database or a broker connection.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import TYPE_CHECKING

from core.errors import SmartIotError

if TYPE_CHECKING:
    from core.config import Config
    from core.model.roles import Actor
    from core.plugins import PluginManager
    from core.ports.backend import Backend
    from core.ports.fleet_api import FleetApi
    from core.ports.navigation import Navigation
    from core.ports.remote_api import RemoteSession


class AppContext:
    def __init__(self, config: Config, plugins: PluginManager, *, live: bool = True,
                 actor: Actor | None = None) -> None:
        """``actor``: an identity established by someone who authenticated the
        person (a front end with sign-in, a test); otherwise the OS account
        (core.identity), resolved here once."""
        from core.identity import resolve_actor

        self.config = config
        self.plugins = plugins
        self._actor = actor if actor is not None else resolve_actor(config)
        # False for one-shot CLI commands: backends then open only their store
        # (no broker, hub or demo fleet) — `smartiot alerts ack` must not start a fleet.
        self.live = live
        self._backend: Backend | None = None
        self._owns_backend = True
        self._api: FleetApi | None = None
        self._remote: RemoteSession | None = None
        self._remote_lock = threading.Lock()
        self._remote_failed: SmartIotError | None = None
        self._closed = False
        self._lock = threading.Lock()
        from core.ports.navigation import NoNavigation

        #: how pages open each other's (core.ports.navigation); the window
        #: replaces it with its own, elsewhere nothing opens
        self.navigation: Navigation = NoNavigation()

    @property
    def backend(self) -> Backend:
        with self._lock:
            if self._closed:
                # A view's timer firing after shutdown must not start a second hub.
                raise SmartIotError("the application is shutting down")
            if self._backend is None:
                self._backend = self._build_backend()
            return self._backend

    @property
    def remote(self) -> RemoteSession | None:
        """The REST API session when the profile names an ``api_url`` (the team
        set-up through the hub's API, or AWS), else None: data is then in
        this process. Built on first use by the plugin that provides it."""
        if not self.config.profile.api_url:
            return None
        # Its own lock: the backend, built under self._lock, asks for the person's
        # broker login here.
        with self._remote_lock:
            if self._remote is None:
                clients = self.plugins.api_clients()
                if not clients:
                    raise SmartIotError(
                        f"profile {self.config.profile_name!r} names api_url "
                        f"{self.config.profile.api_url}, but no loaded plugin provides a "
                        "client of the REST API (the built-in 'api' plugin does; see "
                        "`smartiot plugins`)")
                if self._remote_failed is not None:
                    # Said once: every page asking again would repeat the attempt (an
                    # aws-local sandbox that cannot start took 15 s for each).
                    raise self._remote_failed
                try:
                    self._remote = next(iter(clients.values())).connect(self)
                except SmartIotError as exc:
                    self._remote_failed = exc
                    raise
            return self._remote

    @property
    def api(self) -> FleetApi:
        """The use cases for this person: what pages and CLI commands call
        (never the backend's ports). Built on first use, after the backend;
        with an ``api_url``, over the REST API, without opening any store."""
        remote = self.remote
        if remote is not None:
            with self._lock:
                if self._closed:
                    raise SmartIotError("the application is shutting down")
                if self._api is None:
                    self._api = remote.fleet_api()
                return self._api
        backend = self.backend
        with self._lock:
            if self._api is None:
                from core.crypto.keystore import CodeSigningKeys
                from core.identity import is_one_process
                from core.ports.audit import HUB_CHECKPOINT_INTERVAL_S
                from core.services.session import LocalFleetApi
                from core.services.wiring import build_services

                services = build_services(
                    backend, signing_keys=CodeSigningKeys(self.config.data_dir / "codesign"),
                    rule_types=self.plugins.alert_rule_types(),
                    # Where every append signs its own checkpoint nothing may wait
                    # for one; a team console allows the hub's interval twice over.
                    audit_grace=timedelta(0) if is_one_process(self.config.profile)
                    else timedelta(seconds=2 * HUB_CHECKPOINT_INTERVAL_S),
                    trust_key_files=is_one_process(self.config.profile))
                # A person with an entry in the user directory acts with the
                # entry's role and organization; a disabled entry is refused
                # (docs/security.md, "Identity"). Without one, nothing changes.
                actor = services.users.effective_actor(self._actor)
                self._api = LocalFleetApi(services, actor)
            return self._api

    @property
    def actor(self) -> Actor:
        """The person, role and organization every service checks permissions against:
        with an ``api_url``, the server's answer at sign-in (the server checks them)."""
        remote = self._remote
        if remote is not None and remote.actor is not None:
            return remote.actor
        return self._actor

    def note_claim(self, claimed_user: str) -> None:
        """A command's ``--user``: noted beside the real identity in every audit
        entry of this context's actions (core.identity), never instead of it."""
        from dataclasses import replace

        with self._lock:
            if claimed_user and claimed_user != self._actor.user:
                self._actor = replace(self._actor, claimed_user=claimed_user)
                self._api = None  # the next session acts with the claim noted

    @property
    def has_backend(self) -> bool:
        return self._backend is not None

    def adopt_backend(self, backend: Backend) -> None:
        """Use a backend a command built itself (the headless hub, with its own
        options) as this context's, so plugins' startup and shutdown hooks and the
        use cases work on that one backend; the command keeps closing it."""
        with self._lock:
            if self._backend is not None and self._backend is not backend:
                raise SmartIotError("this context has a backend already")
            self._backend = backend
            self._owns_backend = False
            self._api = None

    def _build_backend(self) -> Backend:
        from core.config import check_backend

        specs = self.plugins.backends()
        check_backend(self.config, specs)
        return specs[self.config.profile.backend].factory(self)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._api = None
            # The REST session's outbox sender and offline files (plugins/api/client).
            close_remote = getattr(self._remote, "close", None)
            if callable(close_remote):
                close_remote()
            if self._backend is not None and self._owns_backend:
                self._backend.close()
            self._backend = None
