"""The route table, the OpenAPI document and docs/api.md say the same thing,
and the seed's routes are all there."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from core.model.roles import Role
from plugins.api.app import RateLimit, build_app, openapi_json
from tests.integration.api.conftest import Api, start_api

DOC = Path(__file__).resolve().parents[3] / "docs" / "api.md"

SEED_ROUTES = {
    "POST /devices", "GET /devices", "GET /devices/{device_id}", "PUT /devices/{device_id}",
    "DELETE /devices/{device_id}", "GET /devices/{device_id}/history", "GET /alerts",
    "GET /alerts/{alert_id}", "POST /alerts/{alert_id}/acknowledge",
    "POST /alerts/{alert_id}/resolve", "GET /users/me", "PUT /users/me/preferences",
    "POST /firmware/upload", "POST /firmware/deployments",
    "GET /firmware/deployments/{deployment_id}", "GET /analytics/dashboard",
    "POST /analytics/query",
}


def _openapi_routes(doc: dict) -> set[str]:
    return {f"{method.upper()} {path}" for path, ops in doc["paths"].items() for method in ops}


def _table_routes() -> set[str]:
    app = build_app(lambda: None)  # type: ignore[arg-type, return-value]
    routes = set()
    for route in app._static_routes + app._dynamic_routes:
        if route.path == "/openapi.json":
            continue
        path = re.sub(r"<(\w+)>", r"{\1}", route.path)
        routes |= {f"{m} {path}" for m in ([route.method] if isinstance(route.method, str)
                                           else route.method)}
    return routes


def test_every_route_is_in_openapi_and_in_the_docs() -> None:
    doc = json.loads(openapi_json(build_app(lambda: None)))  # type: ignore[arg-type, return-value]
    in_openapi = _openapi_routes(doc)
    table = _table_routes()
    assert table == in_openapi
    assert in_openapi >= SEED_ROUTES
    text = DOC.read_text(encoding="utf-8")
    documented = set(re.findall(r"`((?:GET|POST|PUT|DELETE) /[^`]*)`", text))
    assert in_openapi - documented == set()
    assert documented - in_openapi == {"GET /openapi.json"}
    schemas = doc["components"]["schemas"]
    assert schemas["DeviceCreate"]["required"] == ["device_id", "device_type"]
    create = doc["paths"]["/devices"]["post"]
    assert "422" not in create["responses"]
    assert create["responses"]["400"]["content"]["application/json"]["schema"]["$ref"] \
        == "#/components/schemas/ErrorEnvelope"
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_openapi_is_served_without_a_token(api: Api) -> None:
    reply = api.client.call("GET", "/openapi.json", role=None)
    assert reply.status == 200 and "/devices" in reply.body["paths"]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_caller_over_the_rate_limit_gets_429(store, tmp_path: Path) -> None:
    gen = start_api(store, tmp_path, rate_limit=RateLimit(3))
    api = next(gen)
    try:
        codes = [api.client.call("GET", "/devices", role=Role.SUPPORT, user="sam").status
                 for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        # another person has their own allowance
        assert api.client.call("GET", "/devices", role=Role.SUPPORT, user="kim").status == 200
    finally:
        gen.close()
