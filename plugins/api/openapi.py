"""The OpenAPI document (/openapi.json, and docs/api.md which a test keeps equal)."""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from plugins.api.auth import PUBLIC_PATHS

API_VERSION = "1.0.0"

_ERROR_ANSWERS = {
    "400": "Bad input; message starts with the field, details list each field",
    "401": "No verified identity",
    "403": "The caller's role may not do this",
    "404": "Unknown, outside the caller's organization, or not offered by this backend",
    "409": "Stale If-Match, changed by someone else first, or refused by the lifecycle",
    "413": "Body too large",
    "429": "Too many requests a minute",
}


def openapi_json(app: APIGatewayRestResolver) -> str:
    """Powertools' document from the models and routes, told the truth about
    the answers: the envelope, 400 (not FastAPI's 422) for bad input, the other
    error statuses, and the bearer token every route but this one needs."""
    doc = json.loads(app.get_openapi_json_schema(
        title="Smart IoT Fleet API", version=API_VERSION,
        description="Devices, alerts, users, firmware and analytics of one fleet. Every answer "
        "is {\"success\": true, \"data\": ...} or {\"success\": false, \"error\": {\"code\", "
        "\"message\", \"details\"}}. See docs/api.md."))
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(unused, None)
    schemas["Envelope"] = {"type": "object", "required": ["success", "data"], "properties": {
        "success": {"type": "boolean", "const": True}, "data": {}}}
    schemas["ErrorEnvelope"] = {"type": "object", "required": ["success", "error"],
                                "properties": {
        "success": {"type": "boolean", "const": False},
        "error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "details": {}}}}}
    doc["components"]["securitySchemes"] = {"bearer": {
        "type": "http", "scheme": "bearer",
        "description": "Cognito ID token on AWS; locally a token from `smartiot api token`"}}
    doc["security"] = [{"bearer": []}]
    for path in PUBLIC_PATHS:
        for op in doc.get("paths", {}).get(path, {}).values():
            op["security"] = []  # the password or the refresh token is the credential
    envelope_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}
    error_ref = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for ops in doc.get("paths", {}).values():
        for op in ops.values():
            answers = op.setdefault("responses", {})
            answers.pop("422", None)
            answers["200"] = {"description": "Success", "content": envelope_ref}
            for status, text in _ERROR_ANSWERS.items():
                answers[status] = {"description": text, "content": error_ref}
    return json.dumps(doc, indent=1)
