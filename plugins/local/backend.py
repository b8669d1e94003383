"""Build the local backend's ports from the store.

The store is opened (and migrated to the newest schema) only when a page or
command first needs data, so listing plugins never touches the database.
"""

from __future__ import annotations

from core.context import AppContext
from core.ports.backend import Backend
from core.store import Store


class LocalBackend(Backend):
    def __init__(self, store: Store) -> None:
        super().__init__(
            name="local",
            registry=store.registry,
            alerts=store.alerts,
            telemetry=store.telemetry,
            firmware=store.firmware,
            deployments=store.deployments,
        )
        self.store = store

    def close(self) -> None:
        self.store.close()


def build_local_backend(context: AppContext) -> LocalBackend:
    return LocalBackend(Store.open(context.config.database_url))
