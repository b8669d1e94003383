"""Store fixtures (SQLite always, PostgreSQL when SMARTIOT_TEST_PG_URL is set),
shared with the store tests so analytics runs on the same two databases."""

from tests.integration.store.conftest import open_store, store, store_url

__all__ = ["open_store", "store", "store_url"]
