"""Error bodies: validation (422) that says what to fix, client mistakes never 5xx, and an
unexpected failure that reveals nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from aws_extension.middleware.app import create_app
from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import NAME_HINT
from aws_extension.middleware.records.dynamodb import DynamoRecords
from tests.server.conftest import API_TOKEN, PASSWORD, Api

JSON = {"content-type": "application/json"}


def problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The problem-details body of `response`, after checking its common members."""
    assert response.status_code == status, response.json()
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == "about:blank"
    assert isinstance(body["title"], str) and body["title"]
    return body


def test_a_short_password_names_the_field_and_the_rule(api: Api, admin: str) -> None:
    body = {"username": "bob", "password": "short", "roles": []}
    reply = problem(api.post("/users", token=admin, json=body), 422, "validation_error")
    assert reply["detail"] == "body.password: String should have at least 8 characters"
    assert reply["errors"] == [
        {"field": "body.password", "message": "String should have at least 8 characters"}
    ]


def test_every_invalid_field_is_listed(api: Api, admin: str) -> None:
    body = {"username": "no spaces", "password": PASSWORD, "roles": ["ok", "bad name"], "x": 1}
    reply = problem(api.post("/users", token=admin, json=body), 422, "validation_error")
    fields = {error["field"]: error["message"] for error in reply["errors"]}
    assert fields == {
        "body.username": NAME_HINT,
        "body.roles.1": NAME_HINT,
        "body.x": "Extra inputs are not permitted",
    }
    for field in fields:
        assert field in reply["detail"]


def test_an_unknown_permission_lists_the_valid_ones(api: Api, admin: str) -> None:
    body = {"name": "r", "permissions": ["train:all", "root"]}
    reply = problem(api.post("/roles", token=admin, json=body), 422, "validation_error")
    assert reply["errors"][0]["field"] == "body.permissions.1"
    assert "'role:all'" in reply["detail"]
    assert "'train:all'" in reply["detail"]


def test_malformed_json_is_a_422_about_the_body(api: Api) -> None:
    response = api.post("/auth/login", content=b'{"username": "admin",', headers=JSON)
    reply = problem(response, 422, "validation_error")
    assert reply["errors"][0]["field"] == "body"
    assert "not valid JSON" in reply["detail"]


def test_a_missing_body_is_a_422(api: Api) -> None:
    reply = problem(api.post("/auth/login"), 422, "validation_error")
    assert reply["detail"] == "body: Field required"


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b"username=admin", "application/x-www-form-urlencoded"),
        (b"admin", "text/plain"),
        (b'{"username": "admin"}', None),
        (b"[1, 2]", "application/json"),
        (b'"just a string"', "application/json"),
    ],
)
def test_bodies_of_the_wrong_shape_are_422(
    api: Api, content: bytes, content_type: str | None
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = api.post("/auth/login", content=content, headers=headers)
    problem(response, 422, "validation_error")


def test_a_body_that_is_not_utf8_is_a_client_error(api: Api) -> None:
    response = api.post("/auth/login", content=b'{"username": "\xff\xfe"}', headers=JSON)
    problem(response, 400, "invalid")


@pytest.mark.parametrize("query", ["limit=0", "limit=201", "limit=ten", "cursor=" + "x" * 3000])
def test_bad_paging_parameters_are_422(api: Api, admin: str, query: str) -> None:
    reply = problem(api.get(f"/users?{query}", token=admin), 422, "validation_error")
    assert reply["errors"][0]["field"].startswith("query.")


def test_a_malformed_cursor_is_400_invalid(api: Api, admin: str) -> None:
    reply = problem(api.get("/users?cursor=bm9wZQ", token=admin), 400, "invalid")
    assert "cursor" in reply["detail"]


def test_a_bad_name_in_the_path_is_422_with_a_hint(api: Api, admin: str) -> None:
    reply = problem(api.get("/users/-dash-first", token=admin), 422, "validation_error")
    assert reply["detail"] == f"path.username: {NAME_HINT}"


@pytest.fixture
def broken_client(config: Config) -> Iterator[TestClient]:
    """The app on a DynamoDB table that does not exist: every records call fails."""
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            mp.setenv(name, "testing")
        client = boto3.client("dynamodb", region_name="us-east-1")
        app = create_app(config, DynamoRecords(client, "missing-table-name"))
        with TestClient(app, raise_server_exceptions=False) as test_client:
            yield test_client


def test_an_unexpected_failure_is_a_bare_500(
    broken_client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    response = broken_client.post(
        "/auth/login",
        json={"username": "admin", "password": PASSWORD},
        headers={"x-api-key": API_TOKEN},
    )
    reply = problem(response, 500, "internal")
    assert set(reply) == {"type", "title", "status", "detail", "code"}
    for internal in ("missing-table-name", "ResourceNotFound", "Traceback", "dynamodb"):
        assert internal not in response.text
    # The server log has the details, and only the method and path of the request.
    logged = [r for r in caplog.records if r.name == "aws_extension.middleware.errors"]
    assert logged and logged[0].exc_info is not None
    assert "POST /auth/login" in logged[0].getMessage()
    assert PASSWORD not in caplog.text
