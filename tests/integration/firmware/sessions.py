"""The firmware and deployment use cases as front ends get them: the one
wiring (core.services.wiring.build_services) over a real store, bound to a
person by LocalFleetApi, so tests go through the same checks as the pages,
the CLI and the REST API."""

from __future__ import annotations

from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Actor
from core.ports.backend import Backend
from core.services.session import LocalFleetApi
from core.services.wiring import build_services
from core.store import Store


def backend_over(store: Store) -> Backend:
    return Backend("local", registry=store.registry, alerts=store.alerts,
                   telemetry=store.telemetry, firmware=store.firmware,
                   deployments=store.deployments, rules=store.rules, audit=store.audit,
                   trusted_keys=store.trusted_keys)


def fleet_api(store: Store, keys: CodeSigningKeys | None, actor: Actor, *,
              team: bool = False) -> LocalFleetApi:
    """``team``: trust only the database's list of keys (a team console, the
    REST API); otherwise this machine's key files too (the one-process console)."""
    services = build_services(backend_over(store), signing_keys=keys, trust_key_files=not team)
    return LocalFleetApi(services, actor)
