"""Every route with an id in its path, asked with an id no record could have
(a NUL, an escape sequence, SQL, 2,000 characters): the caller's error (4xx)
with a message, never a 500 from the database underneath. A NUL in an id
went through to PostgreSQL, which refuses it in text, as a server error."""

from __future__ import annotations

import re

from core.model.roles import Role
from plugins.api.app import build_app
from tests.integration.api.conftest import Api

HOSTILE = ["dev%00x", "%1B%5B31mred", "x" * 2_000, "a'%20OR%20'1'='1", "%C3%28"]


def _routes() -> list[tuple[str, str]]:
    """From the app's own OpenAPI document: a route added later is probed too."""
    doc = build_app(lambda: None).get_openapi_schema()  # type: ignore[arg-type,return-value]
    return sorted((method.upper(), re.sub(r"\{(\w+)\}", r"<\1>", path))
                  for path, item in doc.paths.items() if "{" in path
                  for method in ("get", "post", "put", "delete") if getattr(item, method))


ROUTES = _routes()


def test_the_router_has_routes_with_ids_in_their_paths() -> None:
    assert len(ROUTES) >= 25
    assert ("GET", "/devices/<device_id>") in ROUTES


def test_a_hostile_id_in_the_path_is_the_callers_error(api: Api) -> None:
    """One server for every route (a store each would be a minute of set-up);
    every failing route and id is listed, not just the first."""
    wrong = []
    for method, pattern in ROUTES:
        for bad in HOSTILE:
            path = re.sub(r"<[^>]+>", bad, pattern)
            body = None if method in ("GET", "DELETE") else {}
            reply = api.client.call(method, path, body, role=Role.ADMIN, org="demo")
            if not 400 <= reply.status < 500 or not reply.error.get("message"):
                wrong.append((method, path[:60], reply.status, reply.body))
    assert not wrong
