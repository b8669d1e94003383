"""Assemble the local backend: store, embedded broker, hub, console client, demo fleet.

Which parts run depends on the profile: the default ``local`` profile starts
everything in this process (an embedded broker, the hub and a demo fleet) so a
new user sees a live fleet within seconds; a team profile connects to a shared
broker and database and leaves ingestion to one ``smartiot hub``.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.context import AppContext
from core.errors import ConfigError, SmartIotError
from core.ingest.ingestor import registration_policies
from core.ports.backend import Backend
from core.services.change_feed import ChangeWatcher
from core.services.event_bus import EventBus
from core.store import Store
from core.store.audit_anchor import anchor_audit
from core.store.preferences import SqlPreferenceStore
from plugins.local.alerting import build_alerting, seed_default_rules
from plugins.local.hub.clients import ConsoleClient, MqttCommandChannel, MqttShadowService
from plugins.local.hub.hub import (
    BATCH_LIMIT,
    CONSOLE_BATCH_LIMIT,
    CONSOLE_INBOX_LIMIT,
    INBOX_LIMIT,
    Hub,
    hub_client_id,
)
from plugins.local.hub.mqtt_link import MqttLink
from plugins.local.hub.observer import TeamObserver

log = logging.getLogger(__name__)


class LocalBackend(Backend):
    def __init__(self, store: Store, bus: EventBus) -> None:
        super().__init__(
            name="local",
            registry=store.registry,
            alerts=store.alerts,
            telemetry=store.telemetry,
            firmware=store.firmware,
            deployments=store.deployments,
            live=bus,
            rules=store.rules,
            quarantine=store.quarantine,
            link_stats=store.link_stats,
            command_log=store.commands,
            audit=store.audit,
            changes=store.changes,
            trusted_keys=store.trusted_keys,
            preferences=SqlPreferenceStore(store.engine),
            users=store.users,
            accounts=store.accounts,
        )
        self.store = store
        self.bus = bus
        self.broker: Any = None
        self.hub: Hub | None = None
        self.hub_process: Any = None  # plugins.local.hub_process.HubProcess
        self.receiver: Any = None  # plugins.local.live_receiver.FleetReceiver
        # moves the console's own hub into a child process as the fleet grows
        self.handover: Any = None  # plugins.local.hub_handover.HubHandover
        self.client: ConsoleClient | None = None
        self.observer: TeamObserver | None = None
        self.demo: Any = None
        self.broker_url = ""
        self.audit_timer: Any = None  # signs the audit head (core.store.audit_anchor)
        # changes by other processes (CLI, other consoles, the hub) -> live events
        self.watcher: ChangeWatcher | None = None

    def close(self) -> None:
        """Stop in reverse order: devices first (they say goodbye), then the hub
        (it drains its inbox into the store), then the broker, then the store."""
        if self.handover is not None:
            self.handover.stop()  # a move under way first: its parts are stopped below
        for part in (self.watcher, self.demo, self.observer, self.receiver, self.client,
                     self.hub, self.hub_process):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    log.exception("stopping %s failed", type(part).__name__)
        if self.broker is not None:
            self.broker.stop()
        if self.audit_timer is not None:
            self.audit_timer.stop()
        self.store.close()


def _broker_address(broker: str) -> tuple[str, int, bool]:
    parts = urlsplit(broker)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ConfigError(f"broker {broker!r} must look like mqtt://host:1883")
    tls = parts.scheme == "mqtts"
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


# The console's account on its own embedded broker (fresh random credentials
# each start); its rights follow the configured role.
EMBEDDED_CONSOLE = "local"

Login = tuple[str | None, str | None]


def _team_logins(context: AppContext, *, hub_machine: bool = False) -> tuple[Login, Login]:
    """The hub's and this console's logins for a team broker, passwords from the
    secret store (written there by `smartiot broker config` on the machine that
    made the broker's files, or by `smartiot secrets set`). Without them the
    link connects without credentials, which an authenticating broker refuses
    with a message in the status line.

    In ``smartiot hub`` (``hub_machine``) the console side sends what people
    ask for through the REST API, after the server checked their role: it logs
    in as the hub's commander when its password is stored, since that machine
    has no console login of its own on a broker with person accounts, and a
    console login's role would limit everyone's commands to its own."""
    from simulator.broker_auth import (
        COMMANDER_PASSWORD,
        COMMANDER_USER,
        CONSOLE_PASSWORD,
        HUB_PASSWORD,
        HUB_USER,
        BrokerAuthError,
        console_username,
        stored_secret,
    )

    try:
        hub_password = stored_secret(HUB_PASSWORD)
        console_password = stored_secret(CONSOLE_PASSWORD)
        commander_password = stored_secret(COMMANDER_PASSWORD) if hub_machine else None
    except SmartIotError as exc:
        log.warning("broker passwords unavailable (%s); connecting without credentials", exc)
        return (None, None), (None, None)
    hub: Login = (HUB_USER, hub_password) if hub_password else (None, None)
    console: Login = (None, None)
    if commander_password:
        console = (COMMANDER_USER, commander_password)
    elif console_password:
        try:
            console = (console_username(context.actor.user), console_password)
        except BrokerAuthError as exc:
            log.warning("%s; connecting without credentials", exc)
    for what, login, name in (("hub", hub, HUB_PASSWORD), ("console", console, CONSOLE_PASSWORD)):
        if login[0] is None:
            log.info("no %s password in the secret store (%s): the %s connects to %s "
                     "without credentials", what, name, what, context.config.profile.broker)
    return hub, console


def demo_trusted_key_paths(context: AppContext) -> list[Path]:
    """The demo devices trust this console's code-signing keys, as real devices
    are provisioned with their vendor's, so firmware imported here installs.
    They re-read the public key and ``trusted/`` whenever a job names a key, so
    a key created after the fleet started (the first import, on any machine,
    keyring or not) is trusted from then on. The key itself is made by the
    demo's firmware update (plugins.local.demo) or by the first import."""
    from core.crypto.keystore import CodeSigningKeys

    keys = CodeSigningKeys(context.config.data_dir / "codesign")
    return [keys.public_path, keys.directory / "trusted", keys.team_trust_dir]


def write_team_trust(context: AppContext, store: Store) -> None:
    """The keys the database trusts (an admin's `smartiot firmware keys add`), as
    files the demo devices read beside this console's own key; rewritten when
    the list changes (core.services.wiring: the one-process console's key service)."""
    from core.crypto.keystore import CodeSigningKeys

    try:
        CodeSigningKeys(context.config.data_dir / "codesign").write_team_trust(
            {k.key_id: k.public_pem for k in store.trusted_keys.list()})
    except OSError as exc:
        log.warning("the team's trusted keys could not be written for the demo devices: %s",
                    exc)


def _offer_demo_firmware_later(context: AppContext, store: Store) -> None:
    """The demo's firmware update is signed off the start-up path: making the
    code-signing key may wait on the secret store."""
    import threading

    from plugins.local.demo import offer_demo_firmware

    def run() -> None:
        try:
            offer_demo_firmware(store, context.config.data_dir / "codesign")
        except Exception:
            log.exception("the demo firmware update could not be offered")

    threading.Thread(target=run, name="demo-firmware", daemon=True).start()


def _file_server(context: AppContext, store: Store) -> Any:
    """The firmware file server as the profile places it (loopback by default;
    HTTPS when devices elsewhere download from it)."""
    from plugins.local.jobs.file_server import build_file_server

    profile = context.config.profile
    return build_file_server(store.firmware, bind=profile.files_bind,
                             advertise=profile.files_advertise,
                             tls_cert=profile.files_tls_cert, tls_key=profile.files_tls_key,
                             where=f"{context.config.path}: profiles.{profile.name}")


def demo_scenario_path() -> Path:
    return Path(str(resources.files("resources") / "scenarios" / "demo.toml"))


def build_local_backend(context: AppContext, *, run_hub: bool | None = None,
                        demo_fleet: bool | None = None,
                        live: bool | None = None,
                        logins: tuple[Login, Login] | None = None) -> LocalBackend:
    """``logins``: the hub's and the console side's broker logins, given by a
    console that runs the hub as its child (plugins.local.hub_process) instead
    of read from the secret store."""
    profile = context.config.profile
    if profile.api_url and not run_hub:
        # The database is the hub's: data through context.api, only live events here.
        from plugins.local.api_console import build_api_console_backend

        return build_api_console_backend(  # type: ignore[return-value]
            context, live=context.live if live is None else live)
    store = Store.open(context.config.database_url)
    backend = LocalBackend(store, EventBus())
    # Whoever owns the data signs checkpoints of the audit trail with every
    # append: the one-process console and its one-shot commands, and
    # `smartiot hub`, which also signs what team consoles appended, every minute.
    is_live = context.live if live is None else live
    if profile.hub or run_hub:
        backend.audit_timer = anchor_audit(store.audit, context.config.data_dir,
                                           timer=bool(run_hub) and is_live)
    if not is_live:
        return backend  # store only: scripts and one-shot commands
    try:
        if profile.broker == "embedded":
            from simulator.broker import EmbeddedBroker

            backend.broker = EmbeddedBroker(
                consoles=[(EMBEDDED_CONSOLE, context.actor.role.value)]).start()
            backend.broker_url = backend.broker.url
            hub_login = backend.broker.hub_login
            console_login = backend.broker.console_login(EMBEDDED_CONSOLE)
        else:
            backend.broker_url = profile.broker
            # `smartiot hub` (run_hub) serves people through its API; a one-process
            # console (profile.hub) commands with its own person's login.
            hub_login, console_login = logins or _team_logins(context,
                                                              hub_machine=run_hub is True)
        host, port, tls = _broker_address(backend.broker_url)
        tls_context = None
        tls_factory = None  # the hub's receiver process builds its own (contexts do not pickle)
        if tls:
            import ssl

            tls_factory = ssl.create_default_context
            tls_context = tls_factory()

        wants_demo = demo_fleet if demo_fleet is not None else profile.demo_fleet
        wants_demo = wants_demo and profile.broker == "embedded"
        if wants_demo:
            # Names and places first, so the hub starts with them in its registry view.
            from plugins.local.demo import register_demo_devices, scenario_devices
            from simulator.scenario import load_scenario

            demo_scenario = load_scenario(demo_scenario_path())
            register_demo_devices(store, scenario_devices(demo_scenario))
            seed_default_rules(store)

        wants_hub = run_hub if run_hub is not None else profile.hub
        protocol = 4 if getattr(backend.broker, "kind", "") == "amqtt" else 5

        def link(filters: Any, on_message: Any) -> MqttLink:
            return MqttLink(host, port, client_id=f"smartiot-console-{uuid.uuid4().hex[:8]}",
                            filters=filters, on_message=on_message, tls_context=tls_context,
                            username=console_login[0], password=console_login[1])

        def start_hub() -> Hub:
            hub = Hub(store, backend.bus, host, port, tls_context=tls_context,
                      file_server=_file_server(context, store),
                      username=hub_login[0], password=hub_login[1],
                      alerting=build_alerting(context, store),
                      client_id=hub_client_id(profile.name, context.config.database_url),
                      protocol=protocol, receiver=profile.hub_receiver,
                      tls_factory=tls_factory,
                      # the console's own hub (not `smartiot hub`): the window first
                      batch_limit=BATCH_LIMIT if run_hub else CONSOLE_BATCH_LIMIT,
                      inbox_limit=INBOX_LIMIT if run_hub else CONSOLE_INBOX_LIMIT)
            hub.ingestor.registration = registration_policies(context.config.registration)
            hub.start()
            return hub

        from plugins.local.hub_handover import HubChildWiring, HubHandover, start_hub_child

        wiring = HubChildWiring(context.config, backend.broker_url, host, port, tls, protocol,
                                hub_login, console_login, link)
        observer_link: Callable[[Any, Any], Any] = link
        if wants_hub and run_hub is None and profile.hub_process:
            # `smartiot hub` as this console's child on the same broker and
            # database; this console then follows it as a team console does,
            # its telemetry through a receiver child that decodes it there.
            observer_link = start_hub_child(backend, wiring)
        elif wants_hub:
            backend.hub = start_hub()
            if run_hub is None and profile.hub_process_above and protocol == 5:
                # (the child speaks MQTT 5: not to the amqtt fallback broker)
                backend.handover = HubHandover(backend, wiring,
                                               above=profile.hub_process_above,
                                               restart_in_console=start_hub).start()

        if backend.hub is None:
            # The hub runs elsewhere: follow the devices and the shared database.
            backend.observer = TeamObserver(observer_link, backend.bus, store.registry,
                                            store.alerts)
            backend.observer.start()

        client = ConsoleClient(link, backend.bus)
        client.commands = MqttCommandChannel(client, store.commands, store.registry,
                                             user=context.actor.user)
        client.shadows = MqttShadowService(client, store.shadows)
        client.start()
        backend.client = client
        backend.commands = client.commands
        backend.shadows = client.shadows
        bus = backend.bus
        backend.watcher = ChangeWatcher(store.changes, bus.publish,
                                        active=lambda: bus.subscriber_count > 0).start()

        if wants_demo:
            from simulator.api import RunningFleet

            _offer_demo_firmware_later(context, store)
            write_team_trust(context, store)
            backend.demo = RunningFleet(demo_scenario,
                                        on_broker=backend.broker,
                                        client_id_prefix="demo-",
                                        trusted_key_paths=demo_trusted_key_paths(context)
                                        ).start()
    except Exception:
        backend.close()
        raise
    return backend
