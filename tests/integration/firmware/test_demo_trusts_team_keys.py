"""The one-process console keeps its demo working under the team trust model:
its own key files stay trusted, and a key an admin adds to the database is
trusted by the demo devices too (written where they read their keys), until
it is revoked."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from core.config import load_config
from core.context import AppContext
from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.model.roles import Actor, Role
from core.plugins import PluginManager
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.backend import LocalBackend, demo_trusted_key_paths, write_team_trust
from simulator.ota.verify import TrustStore


def test_demo_devices_trust_the_consoles_key_and_the_databases_keys(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.toml", tmp_path / "data", env={})
    context = AppContext(config, PluginManager(builtins=(), entry_points=False, blocked=()),
                         actor=Actor("ada", Role.ADMIN))
    own = CodeSigningKeys(config.data_dir / "codesign", passphrase=lambda _create: b"pw")
    own.signing_key()
    devices = TrustStore((), demo_trusted_key_paths(context))
    assert devices.key_ids == {own.current_key_id()}

    colleague = codesign.generate_key()
    colleague_id = codesign.key_id(colleague)
    with Store.open(config.database_url) as store:
        context._backend = LocalBackend(store, EventBus())
        firmware = context.api.firmware
        firmware.trust_key(codesign.public_pem(colleague), "carol")
        assert devices.key_ids == {own.current_key_id(), colleague_id}

        firmware.revoke_key(colleague_id)
        assert devices.key_ids == {own.current_key_id()}

        # a console starting on a database with trusted keys writes them at start
        other = codesign.generate_key()
        store.trusted_keys.add(dataclasses.replace(
            firmware.trusted_keys(include_revoked=True)[0], key_id=codesign.key_id(other),
            public_pem=codesign.public_pem(other), revoked_at=None, revoked_by=None))
        write_team_trust(context, store)
        assert devices.key_ids == {own.current_key_id(), codesign.key_id(other)}
