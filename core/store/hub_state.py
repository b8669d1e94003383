"""What a hub session remembers of its own absences (table ``hub_state``).

A hub killed with ``kill -9`` cannot say when it died, so it writes "alive at"
every few seconds; the next start takes the period from that moment to its
reconnect as an outage, and seq gaps found in it are the hub's loss. Recent
outages (also disconnects while running) are kept with it, so a device that
reports rarely is judged against the right period after another restart.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, select

from core.model.timeutil import utcnow
from core.store._sql import dialect_insert
from core.store.schema import hub_state as _hub

Outage = tuple[int, int]  # [start_ms, end_ms] on the hub's clock (epoch ms)


@dataclass(frozen=True, slots=True)
class HubSessionState:
    client_id: str
    alive_at_ms: int | None = None
    outages: tuple[Outage, ...] = field(default_factory=tuple)


class SqlHubStateStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def get(self, client_id: str) -> HubSessionState | None:
        with self._engine.connect() as conn:
            row = conn.execute(select(_hub.c.alive_at_ms, _hub.c.outages)
                               .where(_hub.c.client_id == client_id)).first()
        if row is None:
            return None
        outages: list[Outage] = []
        for item in row[1] or []:
            if (isinstance(item, list) and len(item) == 2
                    and all(isinstance(v, int) and not isinstance(v, bool) for v in item)):
                outages.append((item[0], item[1]))
        return HubSessionState(client_id, row[0], tuple(outages))

    def put(self, state: HubSessionState) -> None:
        values = {"client_id": state.client_id, "alive_at_ms": state.alive_at_ms,
                  "outages": [list(o) for o in state.outages], "updated_at": utcnow()}
        with self._engine.begin() as conn:
            ins = dialect_insert(conn.dialect.name, _hub)
            conn.execute(ins.on_conflict_do_update(
                index_elements=[_hub.c.client_id],
                set_={k: ins.excluded[k] for k in ("alive_at_ms", "outages", "updated_at")}),
                values)
