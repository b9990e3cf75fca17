"""The error taxonomy: classes, and which class each server answer becomes, with what words."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import responses

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions

API = "https://api.example.test/prod"
API_TOKEN = "tok-ERR-apikey-0917"


def problem(status: int, code: str, detail: str) -> dict:
    return {"type": "about:blank", "title": "x", "status": status, "detail": detail, "code": code}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client() -> ApiClient:
    # No retries: each case is about one answer's mapping.
    return ApiClient(API, API_TOKEN, options=ClientOptions(retries=0))


def test_every_error_is_an_api_error_with_message_as_str() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(cls, errors.ApiError) for cls in classes)
    assert issubclass(errors.WrongCredentials, errors.NotAuthenticated)
    error = errors.NotFound("No role named 'x'.", status=404, code="not_found")
    assert str(error) == error.message == "No role named 'x'."
    assert (error.status, error.code) == (404, "not_found")
    assert repr(error) == "NotFound(message=\"No role named 'x'.\", status=404, code='not_found')"


def test_too_many_attempts_carries_retry_after() -> None:
    error = errors.TooManyAttempts("Wait.", retry_after=3.0)
    assert error.status == 429
    assert error.retry_after == 3.0
    assert repr(error).endswith("retry_after=3.0)")


def test_redacted_replaces_every_known_secret() -> None:
    error = errors.InvalidRequest("bad value abc-SECRET-123 and abc-SECRET-123-long")
    assert error.redacted(["abc-SECRET-123", None, "", "abc-SECRET-123-long"]) is error
    assert error.message == "bad value *** and ***"
    assert str(error) == error.message
    assert error.args == (error.message,)


# (status, body, headers) -> (class, exact message or None, words the message contains)
CASES = [
    (
        400,
        problem(400, "invalid", "The cursor is malformed."),
        {},
        errors.InvalidRequest,
        "The cursor is malformed.",
    ),
    (
        422,
        {
            **problem(422, "validation_error", "body.name: use letters and digits"),
            "errors": [{"field": "body.name", "message": "use letters and digits"}],
        },
        {},
        errors.InvalidRequest,
        "body.name: use letters and digits.",
    ),
    (
        422,
        {"detail": [{"loc": ["body", "name"], "msg": "field required", "type": "missing"}]},
        {},
        errors.InvalidRequest,
        "field required.",
    ),
    (
        401,
        problem(401, "not_authenticated", "Missing bearer token."),
        {},
        errors.NotAuthenticated,
        "You are not signed in: sign in first.",
    ),
    (
        401,
        problem(401, "invalid_token", "Token expired."),
        {},
        errors.NotAuthenticated,
        "Your session has expired or was revoked: sign in again.",
    ),
    (
        403,
        problem(403, "invalid_api_key", "The API key is missing or wrong."),
        {},
        errors.InvalidApiToken,
        None,
    ),
    (403, {"message": "Forbidden"}, {}, errors.InvalidApiToken, None),
    (
        403,
        problem(403, "permission_denied", "You need the permission role:all."),
        {},
        errors.PermissionDenied,
        "You need the permission role:all.",
    ),
    (403, {"message": "Missing Authentication Token"}, {}, errors.IncompatibleServer, None),
    (
        404,
        problem(404, "not_found", "No role named 'x'."),
        {},
        errors.NotFound,
        "No role named 'x'.",
    ),
    (404, {"detail": "Not Found"}, {}, errors.IncompatibleServer, None),
    (405, {"detail": "Method Not Allowed"}, {}, errors.IncompatibleServer, None),
    (
        409,
        problem(409, "conflict", "The role 'x' is held by 2 users."),
        {},
        errors.Conflict,
        "The role 'x' is held by 2 users.",
    ),
    (
        429,
        problem(429, "too_many_attempts", "Slow down."),
        {"Retry-After": "7"},
        errors.TooManyAttempts,
        "Slow down. Try again in 7 s.",
    ),
    (429, {"message": "Too Many Requests"}, {}, errors.TooManyAttempts, "Too Many Requests."),
    (500, problem(500, "internal", "Unexpected error."), {}, errors.ServerError, None),
    (502, {"message": "Internal server error"}, {}, errors.ServerError, None),
    (504, {"message": "Endpoint request timed out"}, {}, errors.ServerError, None),
    (503, "<html>busy</html>", {}, errors.ServerError, None),
    (418, problem(418, "teapot", "I am a teapot."), {}, errors.ApiError, None),
]


@pytest.mark.parametrize(("status", "body", "headers", "cls", "message"), CASES)
def test_status_and_code_map_to_a_class(
    client: ApiClient,
    rsps: responses.RequestsMock,
    status: int,
    body: object,
    headers: dict,
    cls: type[errors.ApiError],
    message: str | None,
) -> None:
    if isinstance(body, str):
        rsps.get(f"{API}/roles/x", status=status, body=body, headers=headers)
    else:
        rsps.get(f"{API}/roles/x", status=status, json=body, headers=headers)
    with pytest.raises(errors.ApiError) as caught:
        client.get_role("x")
    error = caught.value
    assert type(error) is cls
    assert error.status == status
    assert error.code == (body.get("code") if isinstance(body, dict) else None)
    if message is not None:
        assert error.message == message
    assert error.message.strip()


def test_wrong_credentials_on_login(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.post(
        f"{API}/auth/login",
        status=401,
        json=problem(401, "wrong_credentials", "Wrong username or password"),
    )
    with pytest.raises(errors.WrongCredentials) as caught:
        client.login("alice", "not-the-password")
    assert caught.value.message == "Wrong username or password."
    assert isinstance(caught.value, errors.NotAuthenticated)


@pytest.mark.parametrize(
    ("status", "body", "words"),
    [
        (500, problem(500, "internal", "Unexpected error."), ["500", "Unexpected error."]),
        (502, {"message": "Internal server error"}, ["502", "Internal server error."]),
        (503, "<html>busy</html>", ["503"]),
    ],
)
def test_server_errors_surface_detail_and_status(
    client: ApiClient, rsps: responses.RequestsMock, status: int, body: object, words: list[str]
) -> None:
    kwargs = {"body": body} if isinstance(body, str) else {"json": body}
    rsps.get(f"{API}/ping", status=status, **kwargs)
    with pytest.raises(errors.ServerError) as caught:
        client.ping()
    for word in words:
        assert word in caught.value.message
    assert "<html>" not in caught.value.message


def test_invalid_api_token_says_what_to_do(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", status=403, json=problem(403, "invalid_api_key", "Wrong API key."))
    with pytest.raises(errors.InvalidApiToken) as caught:
        client.ping()
    assert "API token was refused by api.example.test:443" in caught.value.message
    assert "check the API token" in caught.value.message


def test_missing_stage_is_pointed_out(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", status=403, json={"message": "Missing Authentication Token"})
    with pytest.raises(errors.IncompatibleServer) as caught:
        client.ping()
    assert "/prod" in caught.value.message


def test_long_details_are_cut(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/roles/x", status=400, json=problem(400, "invalid", "x" * 5000))
    with pytest.raises(errors.InvalidRequest) as caught:
        client.get_role("x")
    assert len(caught.value.message) < 600


def test_success_without_json_is_incompatible(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(f"{API}/roles/x", status=200, body="OK", content_type="text/plain")
    with pytest.raises(errors.IncompatibleServer) as caught:
        client.get_role("x")
    assert "something other than JSON" in caught.value.message
