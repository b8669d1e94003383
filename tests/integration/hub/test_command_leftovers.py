"""A console (or `smartiot devices command`) starting next to a running one must not
close the running console's commands as timed out; a dead console's commands are
closed once their time is up."""

from __future__ import annotations

from datetime import timedelta

from core.model import CommandRecord, CommandStatus
from core.model.timeutil import utcnow
from core.services.event_bus import EventBus
from core.store import Store
from plugins.local.hub.clients import ConsoleClient, MqttCommandChannel
from tests.integration.hub.conftest import wait_until


class _NoLink:
    """Nothing here goes on the wire: only the shared command log is involved."""

    def start(self) -> None: ...

    def stop(self) -> None: ...


def test_in_flight_commands_of_another_console_are_left_alone(tmp_path):
    with Store.open(f"sqlite:///{tmp_path / 'team.db'}") as store:
        now = utcnow()
        stale = CommandRecord("old", "pump-1", "reboot", requested_by="maria",
                              status=CommandStatus.SENT, timeout_s=10,
                              created_at=now - timedelta(minutes=5))
        in_flight = CommandRecord("live", "pump-2", "ping", requested_by="li",
                                  status=CommandStatus.SENT, timeout_s=3, created_at=now)
        answered = CommandRecord("answered", "pump-3", "ping", requested_by="li",
                                 status=CommandStatus.SENT, timeout_s=3, created_at=now)
        for record in (stale, in_flight, answered):
            store.commands.add(record)

        client = ConsoleClient(lambda filters, on_message: _NoLink(), EventBus())
        channel = MqttCommandChannel(client, store.commands, store.registry, user="tom")
        try:
            # the dead console's reboot is closed at once ...
            assert store.commands.get("old").status is CommandStatus.TIMEOUT
            # ... the running console's commands are still its own
            assert store.commands.get("live").status is CommandStatus.SENT
            assert store.commands.get("answered").status is CommandStatus.SENT
            # which gets its answer meanwhile
            store.commands.update(CommandRecord(
                "answered", "pump-3", "ping", requested_by="li", status=CommandStatus.OK,
                timeout_s=3, created_at=now, completed_at=utcnow()))
            # once its time is up an unanswered one is closed; the answered one stays ok
            wait_until(lambda: store.commands.get("live").status is CommandStatus.TIMEOUT,
                       timeout=20)
            assert store.commands.get("answered").status is CommandStatus.OK
        finally:
            channel.close()
