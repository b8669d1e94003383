"""One firmware trust model for a team, through the real CLI on a shared
database (finding 5 of the team set-up): the keys the fleet trusts live in the
database, only an admin adds and revokes them (audited, refusals included),
each engineer signs with their own key, another console's library names who
signed an image, and asking to see a key never creates one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from core.model import Device, DeviceStatus
from core.store import Store

ROOT = Path(__file__).resolve().parents[3]


def person(tmp_path: Path, name: str, role: str):
    """A person on their own machine (data dir), all on the team's database."""
    home = tmp_path / name
    (home / "data").mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTIOT_")}
    env.update(PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring",
               SMARTIOT_CODESIGN_PASSPHRASE=f"{name}-passphrase",
               SMARTIOT_DATA_DIR=str(home / "data"), SMARTIOT_CONFIG=str(home / "config.toml"),
               XDG_DATA_HOME=str(home / "xdg"), SMARTIOT_ROLE=role)
    database = f"sqlite:///{tmp_path / 'team.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "console.cli", *args,
                               "--database", database], capture_output=True, text=True,
                              env=env, cwd=ROOT, timeout=180)

    run.codesign = home / "data" / "codesign"  # type: ignore[attr-defined]
    return run


def test_team_trust_model_from_key_creation_to_revocation(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 'team.db'}") as store:
        # in the profile's organization: deployments reach only the caller's own devices
        store.registry.upsert(Device("pump-1", device_type="pump", status=DeviceStatus.ONLINE,
                                     firmware_version="0.9.0", organization="demo"))
    sam = person(tmp_path, "sam", "support")
    alice = person(tmp_path, "alice", "engineer")
    bob = person(tmp_path, "bob", "engineer")
    ada = person(tmp_path, "ada", "admin")
    image = tmp_path / "pump.bin"
    image.write_bytes(b"pump firmware " * 100)

    # Looking at a key creates none; creating one is for engineers and admins.
    shown = sam("firmware", "key")
    assert shown.returncode == 1 and "firmware key create" in shown.stderr
    assert not (sam.codesign / "signing-key.pem").exists()
    refused = sam("firmware", "key", "create")
    assert refused.returncode == 1 and "may not" in refused.stderr
    assert not (sam.codesign / "signing-key.pem").exists()

    created = alice("firmware", "key", "create")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    assert alice("firmware", "key").stdout == created.stdout
    alice_pub = alice.codesign / "signing-key.pub.pem"

    # Not yet trusted by the team: the import says so and stores nothing.
    early = alice("firmware", "add", str(image), "--version", "1.0.0", "--type", "pump")
    assert early.returncode == 1 and "not in the team's trusted keys" in early.stderr

    # Only an admin changes the trust list.
    engineer_adds = bob("firmware", "keys", "add", str(alice_pub), "--owner", "alice")
    assert engineer_adds.returncode == 1
    assert "may not add or revoke trusted code-signing keys" in engineer_adds.stderr
    added = ada("firmware", "keys", "add", str(alice_pub), "--owner", "alice",
                "--note", "release builds")
    assert added.returncode == 0, added.stderr
    key_id = added.stdout.split()[2]
    listed = sam("firmware", "keys", "list")
    assert listed.returncode == 0 and key_id in listed.stdout and "alice" in listed.stdout

    exported = sam("firmware", "keys", "export", str(tmp_path / "fleet-keys"))
    assert exported.returncode == 0, exported.stderr
    assert (tmp_path / "fleet-keys" / f"{key_id}.pem").read_bytes() == alice_pub.read_bytes()

    imported = alice("firmware", "add", str(image), "--version", "1.0.0", "--type", "pump")
    assert imported.returncode == 0, imported.stderr

    # Another console (bob's own machine, no key of his) sees who signed it.
    verified = bob("firmware", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"signature verified (key {key_id} of alice, trusted by the team)" in verified.stdout
    assert f"signed {key_id} (alice)" in bob("firmware", "list").stdout

    # Bob has no key: his deployment is refused instead of creating a key he never asked
    # for and a manifest no device would accept; alice's goes out under her trusted key.
    keyless = bob("deploy", "create", "--firmware", "pump@1.0.0", "--devices", "pump-1")
    assert keyless.returncode == 1 and "firmware key create" in keyless.stderr
    assert not (bob.codesign / "signing-key.pem").exists()
    deployed = alice("deploy", "create", "--firmware", "pump@1.0.0", "--devices", "pump-1")
    assert deployed.returncode == 0, deployed.stderr
    assert f"manifest signed by key {key_id}" in deployed.stdout

    revoked = ada("firmware", "keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    after = bob("firmware", "verify")
    assert after.returncode == 1 and f"key {key_id} of alice, revoked by" in after.stdout
    assert ada("firmware", "keys", "revoke", key_id).returncode == 1  # already revoked
    assert key_id not in sam("firmware", "keys", "list").stdout
    assert key_id in sam("firmware", "keys", "list", "--all").stdout

    # Re-exporting into the same directory drops the revoked key's file (devices
    # provisioned from it would otherwise keep trusting the key); other files stay.
    fleet_keys = tmp_path / "fleet-keys"
    (fleet_keys / "ca.pem").write_bytes(b"not a code-signing key")
    again = sam("firmware", "keys", "export", str(fleet_keys))
    assert again.returncode == 0, again.stderr
    assert f"removed 1 key no longer trusted: {key_id}" in again.stdout
    assert sorted(p.name for p in fleet_keys.iterdir()) == ["ca.pem"]

    with Store.open(f"sqlite:///{tmp_path / 'team.db'}") as store:
        trail = [(e.action, e.details.get("outcome", "done"), e.details["role"])
                 for e in store.audit.entries() if e.action.startswith("firmware.key")]
    assert ("firmware.key.create", "denied", "support") in trail
    assert ("firmware.key.create", "done", "engineer") in trail
    assert ("firmware.key.add", "denied", "engineer") in trail
    assert ("firmware.key.add", "done", "admin") in trail
    assert ("firmware.key.revoke", "done", "admin") in trail
