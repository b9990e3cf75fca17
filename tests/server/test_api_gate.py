"""The gates in front of every route: API key (403), bearer token (401), documentation."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from aws_extension.contract import API_VERSION
from aws_extension.middleware.app import ROUTERS, create_app
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from tests.server.conftest import API_TOKEN, Api

OPEN_ROUTES = {("GET", "/ping"), ("POST", "/auth/login"), ("POST", "/auth/refresh")}


def all_routes() -> list[tuple[str, str]]:
    """Every (method, path) of the app, path parameters filled in, so new routes are covered
    without anyone remembering to add them here."""
    routes = []
    for route in (route for router in ROUTERS for route in router.routes):
        if isinstance(route, APIRoute):
            path = re.sub(r"\{[^}]+\}", "someone", route.path)
            routes += [(method, path) for method in sorted(route.methods)]
    return routes


ROUTES = all_routes()
ROUTE_IDS = [f"{method} {path}" for method, path in ROUTES]
BEARER_ROUTES = [route for route in ROUTES if route not in OPEN_ROUTES]


def test_the_route_table_is_complete() -> None:
    assert set(ROUTES) >= OPEN_ROUTES | {
        ("POST", "/auth/logout"),
        ("GET", "/me"),
        ("PUT", "/me/password"),
        ("GET", "/roles"),
        ("POST", "/roles"),
        ("GET", "/roles/someone"),
        ("PUT", "/roles/someone"),
        ("DELETE", "/roles/someone"),
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/someone"),
        ("PUT", "/users/someone"),
        ("DELETE", "/users/someone"),
    }


BAD_KEYS = [None, "", "wrong-key", API_TOKEN + "x", API_TOKEN[:-1], API_TOKEN.upper()]
BAD_AUTHORIZATIONS = {
    None: "not_authenticated",
    "Basic YWRtaW46YWRtaW4=": "not_authenticated",
    "Bearer": "not_authenticated",
    "Bearer not-a-jwt": "invalid_token",
    "Bearer a.b.c": "invalid_token",
}


@pytest.mark.parametrize(
    ("method", "path"), [*ROUTES, ("GET", "/no/such/route")], ids=[*ROUTE_IDS, "unknown"]
)
def test_every_route_needs_the_api_key(api: Api, method: str, path: str) -> None:
    for key in BAD_KEYS:
        headers = {"Authorization": "Bearer whatever"}
        if key is not None:
            headers["x-api-key"] = key
        # Even a body that does not parse must not get past the gate.
        response = api.client.request(method, path, headers=headers, content=b"{not json")
        assert response.status_code == 403
        assert response.headers["content-type"] == "application/problem+json"
        body = response.json()
        assert body["code"] == "invalid_api_key"
        assert body["status"] == 403
        assert body["type"] == "about:blank"
        assert body["title"] == "Forbidden"
        assert "x-api-key" in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"), BEARER_ROUTES, ids=[f"{m} {p}" for m, p in BEARER_ROUTES]
)
def test_every_other_route_needs_a_bearer_token(api: Api, method: str, path: str) -> None:
    for authorization, code in BAD_AUTHORIZATIONS.items():
        headers = {} if authorization is None else {"Authorization": authorization}
        response = api.request(method, path, headers=headers, json={})
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["code"] == code


def test_ping_answers_with_the_api_version(api: Api) -> None:
    response = api.get("/ping")
    assert response.status_code == 200
    assert response.json() == {"message": "pong", "api_version": API_VERSION}


def test_a_second_api_token_is_accepted_for_rotation(records: SqliteRecords) -> None:
    config = Config(api_tokens=("old-token", "new-token"), signing_secret="s" * 40)
    client = TestClient(create_app(config, records))
    for key in ("old-token", "new-token"):
        assert client.get("/ping", headers={"x-api-key": key}).status_code == 200
    assert client.get("/ping", headers={"x-api-key": "other"}).status_code == 403


def test_unknown_route_with_the_key_is_a_404_problem(api: Api) -> None:
    response = api.get("/no/such/route")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "not_found"
    assert "/no/such/route" in response.json()["detail"]


def test_wrong_method_is_a_405_problem(api: Api) -> None:
    response = api.request("PATCH", "/ping")
    assert response.status_code == 405
    assert response.json()["code"] == "invalid"
    assert response.headers["allow"] == "GET"


def test_openapi_document_describes_every_route_and_both_schemes(api: Api) -> None:
    # The documentation is public (it holds nothing secret), so no key is needed.
    response = api.client.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["version"] == API_VERSION
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "someone", path))
        for path, item in document["paths"].items()
        for method in item
    }
    assert documented == set(ROUTES)
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": schemes["ApiKey"]["description"],
    }
    assert schemes["HTTPBearer"]["scheme"] == "bearer"
    assert document["paths"]["/ping"]["get"]["security"] == [{"ApiKey": []}]
    assert document["paths"]["/users"]["get"]["security"] == [{"ApiKey": [], "HTTPBearer": []}]
    problem = document["paths"]["/users"]["post"]["responses"]["409"]["content"]
    schema = {"$ref": "#/components/schemas/Problem"}
    assert problem == {"application/problem+json": {"schema": schema}}
    assert api.client.get("/docs").status_code == 200
