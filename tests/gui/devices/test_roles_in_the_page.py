"""The Devices page acts through DeviceService with the context's Actor: a
support login's command, desired-state edit and decommission are refused with
the reason on the page, nothing reaches the device, and each refusal is in the
audit trail; an engineer's command goes out and is recorded under their name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from core.context import AppContext
from core.hookspecs import hookimpl
from core.model import Device, DeviceStatus
from core.model.roles import Actor, Role
from core.ports.backend import Backend
from core.registrations import BackendSpec
from core.store import Store
from tests.gui.devices.conftest import AnsweringChannel, MemoryShadows


class BackendPlugin:
    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    @hookimpl
    def smartiot_register_backends(self, register: Callable[[BackendSpec], None]) -> None:
        register(BackendSpec("local", "test store", lambda _ctx: self.backend))


@pytest.fixture
def open_detail(qtbot: Any, store: Store, channel: AnsweringChannel, shadows: MemoryShadows,
                make_context: Callable[..., AppContext], tmp_path: Path) -> Callable[..., Any]:
    from plugins.devices.widgets.devices_page import DevicesPage

    store.registry.upsert(Device("pump-1", device_type="pump", status=DeviceStatus.ONLINE))
    backend = Backend("local", registry=store.registry, alerts=store.alerts,
                      telemetry=store.telemetry, commands=channel, shadows=shadows,
                      command_log=store.commands, audit=store.audit)

    def open_as(actor: Actor) -> Any:
        context = make_context(("test-backend", BackendPlugin(backend)), actor=actor)
        page = DevicesPage(context, saved_filters_path=tmp_path / "filters.json")
        qtbot.addWidget(page)
        page.show()
        qtbot.waitUntil(lambda: page.api is not None and not page._loading, timeout=60_000)
        assert page.show_device("pump-1")
        qtbot.waitUntil(lambda: page.detail.loaded_device_id == "pump-1", timeout=15_000)
        page.detail.confirm = lambda title, text: True
        return page.detail

    return open_as


def test_a_support_login_is_refused_on_the_page_and_audited(
        qtbot: Any, open_detail: Any, store: Store, channel: AnsweringChannel,
        shadows: MemoryShadows) -> None:
    detail = open_detail(Actor("sam", Role.SUPPORT))
    # The page greys the actions out and says why; the service refuses them even
    # when they are triggered anyway (a stale page, a keyboard path, a plugin).
    assert not any(b.isEnabled() for b in (detail.commands.ping_button,
                                           detail.shadow_tab.shadow_apply,
                                           detail.decommission_button,
                                           detail.overview.save_button))
    assert detail.role_note.isVisible()
    assert "Decommission…, Update desired (engineer or admin)" in detail.role_note.text()
    detail.commands.send_command("ping")
    qtbot.waitUntil(lambda: "may not send commands" in detail.commands.command_status.text(),
                    timeout=15_000)
    detail.shadow_tab.shadow_editor.setPlainText('{"interval_s": 5}')
    detail.shadow_tab.apply_desired()
    qtbot.waitUntil(lambda: "may not change a device's desired state"
                    in detail.shadow_tab.shadow_error.text(), timeout=15_000)
    detail.decommission()
    qtbot.waitUntil(lambda: "may not decommission devices" in detail.message.text(),
                    timeout=15_000)

    assert channel.sent == [] and shadows.docs == {}
    assert store.registry.get("pump-1").status is DeviceStatus.ONLINE
    refused = [(e.actor, e.action, e.details["outcome"]) for e in store.audit.entries()]
    assert refused == [("sam", "device.command", "denied"), ("sam", "device.desired", "denied"),
                       ("sam", "device.decommission", "denied")]


def test_an_engineers_command_goes_out_under_their_name(
        qtbot: Any, open_detail: Any, store: Store, channel: AnsweringChannel) -> None:
    detail = open_detail(Actor("erin", Role.ENGINEER))
    detail.commands.ping_button.click()
    qtbot.waitUntil(lambda: "ping: ok" in detail.commands.command_status.text(), timeout=15_000)
    assert channel.sent == [("pump-1", "ping", None)]
    [entry] = store.audit.entries()
    assert (entry.actor, entry.action, entry.subject) == ("erin", "device.command", "pump-1")
    assert entry.details["role"] == "engineer" and entry.details["command"] == "ping"
