"""The Library tab names who signed an image (the key's owner from the team's
trusted keys), not only the key id."""

from __future__ import annotations

from typing import Any

from core.model.roles import Actor, Role
from core.services.signing_keys import SigningKeyService
from plugins.firmware.widgets.library_tab import LibraryTab
from tests.gui.firmware.conftest import WAIT


def test_library_details_name_the_signer(qtbot: Any, owned: Any, context: Any, backend: Any,
                                         store: Any, library: Any) -> None:
    fw = library.import_bytes(b"image " * 500, version="1.0.0", device_type="pump")
    SigningKeyService(store.trusted_keys, store.audit).add(
        library.signing_key().public_pem, "alice", Actor("ada", Role.ADMIN))
    tab = owned(LibraryTab(context))
    tab.resize(1100, 700)
    tab.show()
    qtbot.waitUntil(lambda: tab.model.signature(fw.firmware_id) is not None, timeout=WAIT)
    ok, message = tab.model.signature(fw.firmware_id)
    assert ok and f"key {fw.key_id} of alice" in message
    assert tab.select(fw.firmware_id)
    assert f"key {fw.key_id} of alice" in tab.details.text()
