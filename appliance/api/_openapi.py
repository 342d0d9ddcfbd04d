"""The OpenAPI description: security schemes, and the problem-details error shape on every
operation."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

PUBLIC = {"/healthz", "/readyz", "/metrics", "/v1/unseal", "/v1/auth/login"}
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def install(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {
            "token": {"type": "http", "scheme": "bearer", "bearerFormat": "gfr_<id>_<secret>",
                      "description": "A Greffier API token (greffier tokens create)."},
            "session": {"type": "apiKey", "in": "cookie", "name": "__Host-greffier-session",
                        "description": "Browser session from POST /v1/auth/login; changes "
                        "also need the X-CSRF-Token header."},
        }
        components.setdefault("schemas", {})["Problem"] = {
            "type": "object", "required": ["type", "title", "status"],
            "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                           "status": {"type": "integer"}, "detail": {"type": "string"},
                           "hint": {"type": ["string", "null"]},
                           "errors": {"type": "array", "items": {"type": "object"}}},
            "description": "RFC 9457 problem details."}
        for path, operations in schema.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                if path not in PUBLIC:
                    operation["security"] = [{"token": []}, {"session": []}]
                    for code, text in (("401", "Not authenticated."),
                                       ("403", "Not allowed for this role or token."),
                                       ("429", "Rate limited: see Retry-After."),
                                       ("503", "Sealed.")):
                        responses.setdefault(code, {"description": text})
                if "422" in responses:
                    responses["422"] = {"description": "Invalid request."}
                for code, response in responses.items():
                    if code[0] in "45":
                        response["content"] = _PROBLEM
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
