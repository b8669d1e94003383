from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from core.errors import NotFound, ValidationError
from core.model.link import CommandRecord, CommandStatus
from core.store import Store

T0 = datetime(2024, 7, 5, 9, 0, tzinfo=UTC)


def _cmd(n: int, device: str = "dev-1", **kw: object) -> CommandRecord:
    base: dict[str, object] = {
        "request_id": f"req-{n:03d}",
        "device_id": device,
        "command": "reboot" if n % 2 else "set_rate",
        "params": {"rate_s": n, "nested": {"x": [1, None]}},
        "requested_by": "alice",
        "created_at": T0 + timedelta(seconds=n),
    }
    base.update(kw)
    return CommandRecord(**base)  # type: ignore[arg-type]


def test_add_get_update_round_trip(store: Store) -> None:
    cmd = _cmd(1)
    store.commands.add(cmd)
    assert store.commands.get(cmd.request_id) == cmd
    with pytest.raises(ValidationError):
        store.commands.add(cmd)
    with pytest.raises(NotFound):
        store.commands.get("nope")

    sent = dataclasses.replace(cmd, status=CommandStatus.SENT)
    store.commands.update(sent)
    done = dataclasses.replace(
        sent,
        status=CommandStatus.ERROR,
        response={"code": 500, "msg": "ünknown"},
        error="device said no",
        completed_at=T0 + timedelta(seconds=3),
        timeout_s=2.5,
    )
    store.commands.update(done)
    got = store.commands.get(cmd.request_id)
    assert got == done
    assert got.status is CommandStatus.ERROR
    with pytest.raises(NotFound):
        store.commands.update(_cmd(99))


def test_list_for_newest_first_and_unfinished(store: Store) -> None:
    for n in range(6):
        store.commands.add(_cmd(n, "dev-1" if n < 5 else "dev-2"))
    store.commands.update(dataclasses.replace(_cmd(0), status=CommandStatus.OK))
    store.commands.update(dataclasses.replace(_cmd(1), status=CommandStatus.TIMEOUT))
    store.commands.update(dataclasses.replace(_cmd(2), status=CommandStatus.SENT))
    store.commands.update(dataclasses.replace(_cmd(3), status=CommandStatus.ERROR))

    listed = store.commands.list_for("dev-1")
    assert [c.request_id for c in listed] == [f"req-{n:03d}" for n in (4, 3, 2, 1, 0)]
    assert [c.request_id for c in store.commands.list_for("dev-1", limit=2)] == [
        "req-004",
        "req-003",
    ]
    assert store.commands.list_for("nobody") == []
    unfinished = store.commands.unfinished()
    assert [(c.request_id, c.status) for c in unfinished] == [
        ("req-002", CommandStatus.SENT),
        ("req-004", CommandStatus.PENDING),
        ("req-005", CommandStatus.PENDING),
    ]
