"""Device-side image checks: every refusal has its reason, and REJECTED (the
document is unacceptable) is told apart from FAILED (may pass on retry)."""

from __future__ import annotations

import hashlib

import pytest

from core.crypto import codesign
from core.errors import ValidationError
from core.model.semver import SemVer
from core.protocol.ota import OtaFailure, OtaJobDocument
from simulator.ota.faults import OtaConfig, OtaConfigError, OtaFaults, draw_faults
from simulator.ota.verify import TrustStore, check_document, check_image, parse_document

KEY = codesign.generate_key()
ROGUE = codesign.generate_key()
DATA = b"firmware image " * 1000
TRUST = TrustStore.from_pems([codesign.public_pem(KEY).decode()])


def doc(data: bytes = DATA, *, key: codesign.PrivateKey = KEY, version: str = "2.0.0",
        device_type: str = "pump", allow_downgrade: bool = False, size: int | None = None,
        signature: bytes | None = None) -> OtaJobDocument:
    return OtaJobDocument(device_type, SemVer.parse(version), len(data) if size is None else size,
                          hashlib.sha256(data).hexdigest(),
                          codesign.sign(key, data) if signature is None else signature,
                          codesign.key_id(key), "http://x/fw", allow_downgrade)


def pre(d: OtaJobDocument, running: str = "1.5.0", device_type: str = "pump"):
    return check_document(d, device_type=device_type, running_version=running, trust=TRUST)


@pytest.mark.parametrize(("document", "running", "reason"), [
    (doc(device_type="tracker"), "1.5.0", OtaFailure.WRONG_DEVICE_TYPE),
    (doc(version="1.4.9"), "1.5.0", OtaFailure.DOWNGRADE),
    (doc(version="1.5.0-rc.1"), "1.5.0", OtaFailure.DOWNGRADE),
    (doc(version="1.5.0"), "1.5.0", OtaFailure.SAME_VERSION),
    (doc(key=ROGUE), "1.5.0", OtaFailure.UNTRUSTED_KEY),
])
def test_document_rejections(document, running, reason):
    verdict = pre(document, running)
    assert verdict is not None and verdict.reason is reason and verdict.message
    assert reason.is_rejection


def test_acceptable_documents_pass():
    assert pre(doc()) is None
    assert pre(doc(version="1.0.0", allow_downgrade=True)) is None
    assert pre(doc(), running="not-semver") is None  # cannot order it: the signature decides


def test_untrusted_key_wins_even_with_a_valid_signature_by_that_key():
    # The rogue key signed correctly, but the device never takes keys from the job.
    rogue = doc(key=ROGUE)
    assert codesign.verify(ROGUE.public_key(), DATA, rogue.signature)
    assert check_image(rogue, DATA, TRUST).reason is OtaFailure.UNTRUSTED_KEY


@pytest.mark.parametrize(("data", "document", "reason", "rejection"), [
    (DATA[:-10], doc(), OtaFailure.TRUNCATED, False),
    (DATA[:-1] + b"!", doc(), OtaFailure.SHA256_MISMATCH, False),
    (DATA + b"extra", doc(), OtaFailure.SHA256_MISMATCH, False),
    (DATA, doc(signature=codesign.sign(KEY, DATA + b"x")), OtaFailure.BAD_SIGNATURE, True),
    (DATA, doc(signature=b"\x30\x06garbage"), OtaFailure.BAD_SIGNATURE, True),
])
def test_image_checks(data, document, reason, rejection):
    verdict = check_image(document, data, TRUST)
    assert verdict is not None and verdict.reason is reason
    assert verdict.reason.is_rejection is rejection


def test_a_good_image_passes():
    assert check_image(doc(), DATA, TRUST) is None


def test_bad_documents_are_rejected_with_the_field():
    verdict = parse_document({"operation": "ota-update", "firmware": {"deviceType": "pump"}})
    assert not isinstance(verdict, OtaJobDocument)
    assert verdict.reason is OtaFailure.BAD_DOCUMENT and "missing" in verdict.message
    assert isinstance(parse_document(doc().to_json()), OtaJobDocument)


# ---------------------------------------------------------------------- config and faults
def test_ota_table_parses_keys_and_faults(tmp_path):
    pem_file = tmp_path / "signing.pub"
    pem_file.write_bytes(codesign.public_pem(ROGUE))
    config = OtaConfig.from_table({
        "trusted_keys": [codesign.public_pem(KEY).decode()],
        "trusted_key_files": ["signing.pub"],
        "failure_rate": 0.1,
        "download_stall": {"p": 0.5, "duration_s": 12},
        "power_loss": {"p": 0.2, "step": "installing"},
        "selftest_fail": {"p": 0.3, "mode": "hang"},
    }, base_dir=tmp_path)
    assert len(TrustStore.from_pems(config.trusted_keys)) == 2
    assert config.faults == OtaFaults(failure_rate=0.1, stall_p=0.5, stall_s=12,
                                      power_loss_p=0.2, power_loss_step="installing",
                                      selftest_fail_p=0.3, selftest_mode="hang")


@pytest.mark.parametrize(("table", "key"), [
    ({"failure_rate": 1.5}, ("failure_rate",)),
    ({"power_loss": {"p": 0.1, "step": "flashing"}}, ("power_loss", "step")),
    ({"download_stall": {"p": 0.1, "duration_s": 0}}, ("download_stall", "duration_s")),
    ({"selftest_fail": {"p": 0.1, "mode": "maybe"}}, ("selftest_fail", "mode")),
    ({"download_stall": {"q": 1}}, ("download_stall", "q")),
    ({"trusted_keys": ["not a key"]}, ("trusted_keys",)),
    ({"trusted_key_files": ["missing.pem"]}, ("trusted_key_files",)),
    ({"surprise": 1}, ("surprise",)),
])
def test_bad_ota_settings_name_the_key(table, key):
    with pytest.raises(OtaConfigError) as err:
        OtaConfig.from_table(table)
    assert err.value.key == key
    assert isinstance(err.value, ValidationError)


def test_fault_draws_are_seeded_and_independent_of_other_knobs():
    faults = OtaFaults(power_loss_p=0.5, stall_p=0.5)
    draws = [draw_faults(faults, 1, i, "job", 1) for i in range(400)]
    assert draws == [draw_faults(faults, 1, i, "job", 1) for i in range(400)]
    assert 120 < sum(d.power_loss_step is not None for d in draws) < 280
    assert {d.power_loss_step for d in draws} > {"downloading", "committing"}
    more = OtaFaults(power_loss_p=0.5, stall_p=0.5, selftest_fail_p=0.5)
    assert [d.power_loss_step for d in draws] == [
        draw_faults(more, 1, i, "job", 1).power_loss_step for i in range(400)]
    assert draws != [draw_faults(faults, 2, i, "job", 1) for i in range(400)]


def test_trust_follows_key_files_created_and_removed_later(tmp_path):
    public = tmp_path / "signing-key.pub.pem"
    trusted_dir = tmp_path / "trusted"
    trust = TrustStore.from_pems([], watch=[public, trusted_dir])
    late = codesign.generate_key()
    assert trust.get(codesign.key_id(late)) is None and "no key" in trust.describe()
    public.write_bytes(codesign.public_pem(late))  # the console made its key after start-up
    assert trust.get(codesign.key_id(late)) is not None
    trusted_dir.mkdir()
    (trusted_dir / "vendor.pem").write_bytes(codesign.public_pem(ROGUE))
    (trusted_dir / "junk.pem").write_bytes(b"not a key")
    assert trust.key_ids == {codesign.key_id(late), codesign.key_id(ROGUE)}
    (trusted_dir / "vendor.pem").unlink()  # revoked
    assert trust.get(codesign.key_id(ROGUE)) is None
    assert codesign.key_id(late) in trust.describe()
