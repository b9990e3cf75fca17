"""The OpenAPI document, completed with what FastAPI cannot see.

`api_key.ApiKeyGate` enforces the key outside FastAPI's dependency system, so the scheme is
added here to every operation. It is ANDed into each operation's own requirements, because
an operation-level `security` list replaces the document-level one in OpenAPI. Error
responses are declared with the media type they really have, `application/problem+json`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from aws_extension.middleware.api_key import HEADER
from aws_extension.middleware.errors import PROBLEM_MEDIA_TYPE

API_KEY_SCHEME = "ApiKey"


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes[API_KEY_SCHEME] = {
                "type": "apiKey",
                "in": "header",
                "name": HEADER,
                "description": "The deployment's API token; required on every request.",
            }
            for path_item in schema.get("paths", {}).values():
                for operation in path_item.values():
                    own = operation.get("security") or [{}]
                    operation["security"] = [{API_KEY_SCHEME: [], **req} for req in own]
                    for status, response in operation.get("responses", {}).items():
                        content = response.get("content", {})
                        if int(status) >= 400 and "application/json" in content:
                            content[PROBLEM_MEDIA_TYPE] = content.pop("application/json")
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
