"""Which code-signing keys a team's fleet trusts, and who may change that.

One trust model for a team instead of one key per console: the public keys
live in the shared database (``TrustedKeyStore``); only an admin adds or
revokes one, and every change (and every refused attempt) is audited, because
a key in this list can put firmware on every device. Each engineer signs with
their own key, created explicitly (``create_signing_key``: engineers and
admins, the roles that may import firmware), and the library names the owner
of the key behind every signature.
"""

from __future__ import annotations

from collections.abc import Callable

from core.crypto import codesign
from core.crypto.keystore import CodeSigningKeys
from core.errors import NotFound, ValidationError
from core.model.roles import Actor, Permission
from core.model.timeutil import utcnow
from core.ports.hub import AuditTrail
from core.ports.signing_keys import TrustedKey, TrustedKeyStore
from core.services.access import authorize, record_action

MAX_OWNER = 128


class SigningKeyService:
    """``on_change`` runs after every add and revoke with the keys now trusted
    (the one-process set-up writes them where its demo devices read keys)."""

    def __init__(self, keys: TrustedKeyStore | None, audit: AuditTrail | None = None, *,
                 on_change: Callable[[dict[str, bytes]], None] | None = None) -> None:
        self._keys = keys
        self._audit = audit
        self._on_change = on_change

    def _store(self) -> TrustedKeyStore:
        if self._keys is None:
            raise NotFound("this backend keeps no list of trusted code-signing keys")
        return self._keys

    def add(self, public_pem: bytes, owner: str, actor: Actor, note: str = "") -> TrustedKey:
        store = self._store()
        try:
            key_id = codesign.key_id(codesign.load_public_pem(public_pem))
        except ValidationError as exc:
            authorize(self._audit, actor, Permission.SIGNING_KEYS, "firmware.key.add", "?")
            raise ValidationError(f"the key to add is unusable: {exc}") from None
        authorize(self._audit, actor, Permission.SIGNING_KEYS, "firmware.key.add", key_id,
                  {"owner": owner})
        owner = owner.strip()
        if not owner or len(owner) > MAX_OWNER:
            raise ValidationError(f"a trusted key needs its owner's name (1-{MAX_OWNER} "
                                  "characters): the person who signs with it")
        key = TrustedKey(key_id=key_id, owner=owner, public_pem=public_pem.strip() + b"\n",
                         added_by=actor.user, added_at=utcnow(), note=note.strip()[:500])
        store.add(key)
        record_action(self._audit, actor, "firmware.key.add", key_id,
                      {"owner": owner, "note": key.note})
        self._changed()
        return key

    def revoke(self, key_id: str, actor: Actor) -> TrustedKey:
        store = self._store()
        authorize(self._audit, actor, Permission.SIGNING_KEYS, "firmware.key.revoke", key_id)
        key = store.revoke(key_id, actor.user, utcnow())
        record_action(self._audit, actor, "firmware.key.revoke", key_id, {"owner": key.owner})
        self._changed()
        return key

    def list(self, *, include_revoked: bool = False) -> list[TrustedKey]:
        return [] if self._keys is None else self._keys.list(include_revoked=include_revoked)

    def trusted(self) -> dict[str, codesign.PublicKey]:
        """key id -> public key, for every key not revoked."""
        return {k.key_id: codesign.load_public_pem(k.public_pem) for k in self.list()}

    def owners(self) -> dict[str, TrustedKey]:
        """Every key ever added, revoked ones included: an old image still says whose
        key signed it."""
        return {k.key_id: k for k in self.list(include_revoked=True)}

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change({k.key_id: k.public_pem for k in self.list()})


def create_signing_key(keys: CodeSigningKeys, actor: Actor,
                       audit: AuditTrail | None = None) -> str:
    """Create this person's code-signing key pair; returns its key id.

    Only the roles that may import (sign) firmware create keys, and only on
    purpose: a key appearing as a side effect of asking to see one was how a
    support login came to hold a signing key."""
    authorize(audit, actor, Permission.FIRMWARE_IMPORT, "firmware.key.create", "signing-key")
    if keys.exists:
        raise ValidationError(f"{keys.private_path} already exists (key "
                              f"{keys.current_key_id()}); `smartiot firmware key` prints it")
    key_id = codesign.key_id(keys.signing_key())
    record_action(audit, actor, "firmware.key.create", key_id)
    return key_id


class TeamSigner:
    """A deployment's manifest signed in a team: only with this person's existing
    key, and only if the team trusts it. Otherwise every device would refuse the
    rollout, and a key would be created as a side effect of creating it.

    The REST API signs this way too: a server's key signs for the team only once
    an admin has added it to the team's list."""

    def __init__(self, keys: CodeSigningKeys, team: SigningKeyService, user: str = "") -> None:
        self._keys = keys
        self._team = team
        self._user = user

    def for_user(self, user: str) -> TeamSigner:
        """The same signer, naming ``user`` in the advice it gives."""
        return TeamSigner(self._keys, self._team, user)

    def current_key_id(self) -> str:
        owner = self._user or "NAME"
        if not self._keys.exists:
            raise ValidationError(
                "there is no code-signing key here to sign the deployment's manifest; "
                "create one with `smartiot firmware key create` and ask an admin to add it "
                f"(`smartiot firmware keys add FILE --owner {owner}`)")
        key_id = self._keys.current_key_id()
        if key_id not in self._team.trusted():
            raise ValidationError(
                f"the code-signing key {key_id} is not in the team's trusted keys, so devices "
                f"would refuse this deployment; ask an admin to run `smartiot firmware keys "
                f"add {self._keys.public_path} --owner {owner}`")
        return key_id

    def sign(self, data: bytes) -> tuple[bytes, str]:
        self.current_key_id()
        return self._keys.sign(data)
