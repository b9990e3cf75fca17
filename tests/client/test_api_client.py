"""ApiClient against a mocked server (`responses`) and, for the network failures, real sockets.

The server is not our code here, so mocking its HTTP is fair; what is under test is what the
client sends (headers, timeouts, paths, bodies), when it repeats itself, and how it keeps its
session.
"""

from __future__ import annotations

import email.utils
import http.server
import json
import shutil
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests
import responses
from responses import matchers

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions, Page, normalise_api_url
from tests.client.mocked_api import ACCESS, API, API_TOKEN, REFRESH, Sleeps

PASSWORD = "pw-Zebra-4410-secret"
ACCESS_2 = "acc-NEW-bearer-2"


def session_body(access: str = ACCESS, refresh: str = REFRESH, username: str = "alice") -> dict:
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "bearer",
        "expires_in": 900,
        "user": {
            "username": username,
            "roles": ["admin"],
            "permissions": [contract.PERMISSION_ROLE, contract.PERMISSION_USER],
        },
    }


def problem(status: int, code: str, detail: str) -> dict:
    return {"type": "about:blank", "title": "x", "status": status, "detail": detail, "code": code}


@pytest.fixture
def sessions() -> list[dict]:
    return []


@pytest.fixture
def client(sleeps: Sleeps, sessions: list[dict]) -> Iterator[ApiClient]:
    with ApiClient(API, API_TOKEN, sleep=sleeps, on_session=sessions.append) as api:
        yield api


def sign_in(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/auth/login", json=session_body())
    client.login("alice", PASSWORD)


# -- URL and token ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("https://api.example.test/prod/", "https://api.example.test/prod"),
        ("  https://api.example.test/prod//\n", "https://api.example.test/prod"),
        ("HTTP://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        (
            "https://abc123.execute-api.eu-west-1.amazonaws.com",
            "https://abc123.execute-api.eu-west-1.amazonaws.com",
        ),
    ],
)
def test_url_is_normalised(typed: str, expected: str) -> None:
    assert normalise_api_url(typed) == expected
    assert ApiClient(typed, API_TOKEN).api_url == expected


@pytest.mark.parametrize(
    ("typed", "words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("api.example.test/prod", "https://api.example.test/prod"),
        ("ftp://api.example.test", "https:// or http://"),
        ("http://", "no host"),
        ("http://exa mple.test", "spaces"),
        ("http://ex_ample.test", "invalid host"),
        ("http://api.example.test:99999", "invalid port"),
        ("http://api.example.test:http", "invalid port"),
        ("https://api.example.test/prod?stage=1", "'?' or '#'"),
        ("https://api.example.test/prod#top", "'?' or '#'"),
    ],
)
def test_malformed_urls_are_refused_at_construction(typed: str, words: str) -> None:
    with pytest.raises(errors.InvalidUrl) as caught:
        ApiClient(typed, API_TOKEN)
    assert words in caught.value.message
    assert caught.value.status is None


def test_credentials_in_url_are_refused_and_not_echoed() -> None:
    with pytest.raises(errors.InvalidUrl) as caught:
        ApiClient(f"https://admin:{PASSWORD}@api.example.test", API_TOKEN)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_token_pasted_into_url_field_is_not_echoed() -> None:
    with pytest.raises(errors.InvalidUrl) as caught:
        ApiClient(API_TOKEN, API_TOKEN)
    assert API_TOKEN not in str(caught.value)
    assert "has no scheme" in str(caught.value)


@pytest.mark.parametrize("token", ["", "   ", "tok with space", "tok\nnewline", "tok-é"])
def test_unusable_api_token_is_refused_without_echo(token: str) -> None:
    with pytest.raises(errors.InvalidApiToken) as caught:
        ApiClient(API, token)
    if token.strip():
        assert token.strip() not in str(caught.value)


def test_api_token_is_stripped(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    ApiClient(API, f" {API_TOKEN}\n").ping()
    assert rsps.calls[0].request.headers["x-api-key"] == API_TOKEN


# -- ping and compatibility ---------------------------------------------------------------


def test_ping_sends_api_key_and_no_bearer(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.3"})
    assert client.ping() == {"message": "pong", "api_version": "1.3"}
    request = rsps.calls[0].request
    assert request.headers["x-api-key"] == API_TOKEN
    assert "Authorization" not in request.headers
    assert request.headers["Accept"] == "application/json"


@pytest.mark.parametrize(
    ("version", "advice"), [("2.0", "update this extension"), ("0.9", "update the middleware")]
)
def test_ping_refuses_another_major_version_naming_both(
    client: ApiClient, rsps: responses.RequestsMock, version: str, advice: str
) -> None:
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": version})
    with pytest.raises(errors.IncompatibleServer) as caught:
        client.ping()
    assert version in caught.value.message
    assert contract.API_VERSION in caught.value.message
    assert advice in caught.value.message


@pytest.mark.parametrize(
    "reply",
    [
        {"message": "hello"},
        {"message": "pong"},
        {"message": "pong", "api_version": 1},
        {"message": "pong", "api_version": "x.y"},
        ["pong"],
    ],
)
def test_ping_refuses_replies_of_another_api(
    client: ApiClient, rsps: responses.RequestsMock, reply: object
) -> None:
    rsps.get(f"{API}/ping", json=reply)
    with pytest.raises(errors.IncompatibleServer):
        client.ping()


@pytest.mark.parametrize("status", [200, 404])
def test_html_page_means_wrong_url(
    client: ApiClient, rsps: responses.RequestsMock, status: int
) -> None:
    rsps.get(
        f"{API}/ping",
        body="<!doctype html><html><body>Stable Diffusion</body></html>",
        status=status,
        content_type="text/html",
    )
    with pytest.raises(errors.IncompatibleServer) as caught:
        client.ping()
    assert "does not look like the sd-webui-sagemaker API" in caught.value.message
    assert "HTML page" in caught.value.message


def test_redirect_is_not_followed(client: ApiClient, rsps: responses.RequestsMock) -> None:
    # Following it would hand the API token to whatever host the Location names.
    rsps.get(f"{API}/ping", status=301, headers={"Location": "https://elsewhere.test/ping"})
    with pytest.raises(errors.IncompatibleServer) as caught:
        client.ping()
    assert "https://elsewhere.test/ping" in caught.value.message
    assert len(rsps.calls) == 1


# -- headers, timeouts, paths -------------------------------------------------------------


def test_bearer_is_sent_once_signed_in(client: ApiClient, rsps: responses.RequestsMock) -> None:
    login = rsps.post(
        f"{API}/auth/login",
        json=session_body(),
        match=[matchers.json_params_matcher({"username": "alice", "password": PASSWORD})],
    )
    rsps.get(f"{API}/me", json=session_body()["user"])
    client.login("alice", PASSWORD)
    client.me()
    assert "Authorization" not in login.calls[0].request.headers
    me = rsps.calls[1].request
    assert me.headers["Authorization"] == f"Bearer {ACCESS}"
    assert me.headers["x-api-key"] == API_TOKEN


def test_every_call_carries_the_timeout(rsps: responses.RequestsMock) -> None:
    options = ClientOptions(timeout=7.0, connect_timeout=2.0)
    api = ApiClient(API, API_TOKEN, options=options)
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    rsps.post(f"{API}/auth/login", status=401, json=problem(401, "invalid_token", "Expired."))
    rsps.post(f"{API}/auth/login", json=session_body())
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Expired."))
    rsps.post(f"{API}/auth/refresh", json=session_body(access=ACCESS_2))
    rsps.get(f"{API}/me", json=session_body()["user"])
    rsps.get(f"{API}/roles", json={"items": [], "next_cursor": None})
    rsps.post(f"{API}/roles", status=201, json={"name": "r", "permissions": []})
    rsps.put(f"{API}/roles/r", json={"name": "r", "permissions": []})
    rsps.delete(f"{API}/roles/r", status=204)
    rsps.put(f"{API}/me/password", json=session_body())
    rsps.post(f"{API}/auth/logout", status=204)
    api.ping()
    with pytest.raises(errors.NotAuthenticated):
        api.login("alice", PASSWORD)
    api.login("alice", PASSWORD)
    api.me()
    api.list_roles()
    api.create_role("r", [])
    api.update_role("r", [])
    api.delete_role("r")
    api.change_password(PASSWORD, PASSWORD + "2")
    api.logout()
    assert len(rsps.calls) == 12
    assert [call.request.req_kwargs["timeout"] for call in rsps.calls] == [(2.0, 7.0)] * 12


def test_path_parameters_are_quoted(client: ApiClient, rsps: responses.RequestsMock) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/users/a%20b%2Fc%3F", json={"username": "a b/c?"})
    rsps.delete(f"{API}/roles/r%23x", status=204)
    assert client.get_user("a b/c?") == {"username": "a b/c?"}
    assert client.delete_role("r#x") is None


@pytest.mark.parametrize("name", ["", ".", ".."])
def test_names_that_would_change_the_path_are_refused(client: ApiClient, name: str) -> None:
    # No mock active: a request would fail with a connection error, not InvalidRequest.
    with pytest.raises(errors.InvalidRequest):
        client.get_role(name)


def test_lists_pass_limit_and_cursor_and_return_a_page(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    sign_in(client, rsps)
    rsps.get(
        f"{API}/users",
        json={"items": [{"username": "bob"}], "next_cursor": "c2"},
        match=[matchers.query_param_matcher({"limit": "2"})],
    )
    rsps.get(
        f"{API}/users",
        json={"items": [{"username": "carol"}], "next_cursor": None},
        match=[matchers.query_param_matcher({"limit": "2", "cursor": "c2"})],
    )
    first = client.list_users(limit=2)
    assert first == Page(items=[{"username": "bob"}], next_cursor="c2")
    second = client.list_users(limit=2, cursor=first.next_cursor)
    assert second == Page(items=[{"username": "carol"}], next_cursor=None)


@pytest.mark.parametrize("reply", [{"items": "x", "next_cursor": None}, {"users": []}, [1, 2]])
def test_a_list_reply_of_another_shape_is_incompatible(
    client: ApiClient, rsps: responses.RequestsMock, reply: object
) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/roles", json=reply)
    with pytest.raises(errors.IncompatibleServer):
        client.list_roles()


def test_user_and_role_bodies(client: ApiClient, rsps: responses.RequestsMock) -> None:
    sign_in(client, rsps)
    rsps.post(
        f"{API}/users",
        status=201,
        json={"username": "bob"},
        match=[
            matchers.json_params_matcher(
                {"username": "bob", "password": PASSWORD, "roles": ["artist"]}
            )
        ],
    )
    rsps.put(
        f"{API}/users/bob",
        json={"username": "bob"},
        match=[matchers.json_params_matcher({"roles": ["artist", "trainer"]})],
    )
    rsps.put(
        f"{API}/users/bob",
        json={"username": "bob"},
        match=[matchers.json_params_matcher({"password": PASSWORD})],
    )
    rsps.post(
        f"{API}/roles",
        status=201,
        json={"name": "artist"},
        match=[
            matchers.json_params_matcher(
                {"name": "artist", "permissions": [contract.PERMISSION_INFERENCE]}
            )
        ],
    )
    rsps.put(
        f"{API}/roles/artist",
        json={"name": "artist"},
        match=[matchers.json_params_matcher({"permissions": []})],
    )
    rsps.get(f"{API}/roles/artist", json={"name": "artist"})
    rsps.delete(f"{API}/users/bob", status=204)
    assert client.create_user("bob", PASSWORD, ("artist",)) == {"username": "bob"}
    assert client.update_user("bob", roles=["artist", "trainer"]) == {"username": "bob"}
    assert client.update_user("bob", password=PASSWORD) == {"username": "bob"}
    assert client.create_role("artist", (p for p in [contract.PERMISSION_INFERENCE])) == {
        "name": "artist"
    }
    assert client.update_role("artist", []) == {"name": "artist"}
    assert client.get_role("artist") == {"name": "artist"}
    assert client.delete_user("bob") is None


def test_update_user_without_changes_is_a_programming_error(client: ApiClient) -> None:
    with pytest.raises(ValueError, match="roles or password"):
        client.update_user("bob")


# -- sessions -----------------------------------------------------------------------------


def test_login_keeps_user_and_reports_the_session(
    client: ApiClient, rsps: responses.RequestsMock, sessions: list[dict]
) -> None:
    assert not client.signed_in
    assert client.username is None
    assert client.permissions == []
    sign_in(client, rsps)
    assert client.signed_in
    assert client.username == "alice"
    assert client.permissions == [contract.PERMISSION_ROLE, contract.PERMISSION_USER]
    assert client.refresh_token == REFRESH
    assert [s["refresh_token"] for s in sessions] == [REFRESH]


def test_me_updates_username_and_permissions(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/me", json={"username": "alice", "permissions": [contract.PERMISSION_TRAIN]})
    client.me()
    assert client.permissions == [contract.PERMISSION_TRAIN]


def test_failing_on_session_callback_does_not_fail_login(rsps: responses.RequestsMock) -> None:
    def broken(_: dict) -> None:
        raise OSError("disk full")

    api = ApiClient(API, API_TOKEN, on_session=broken)
    rsps.post(f"{API}/auth/login", json=session_body())
    assert api.login("alice", PASSWORD)["user"]["username"] == "alice"
    assert api.username == "alice"


def test_login_reply_without_tokens_is_incompatible(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{API}/auth/login", json={"ok": True})
    with pytest.raises(errors.IncompatibleServer):
        client.login("alice", PASSWORD)
    assert not client.signed_in


def test_expired_access_token_is_refreshed_once_silently(
    client: ApiClient, rsps: responses.RequestsMock, sessions: list[dict]
) -> None:
    sign_in(client, rsps)
    first = rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Token expired."))
    refresh = rsps.post(
        f"{API}/auth/refresh",
        json=session_body(access=ACCESS_2),
        match=[matchers.json_params_matcher({"refresh_token": REFRESH})],
    )
    rsps.get(f"{API}/me", json={"username": "alice", "permissions": []})
    assert client.me()["username"] == "alice"
    assert first.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert refresh.call_count == 1
    assert "Authorization" not in refresh.calls[0].request.headers
    assert rsps.calls[-1].request.headers["Authorization"] == f"Bearer {ACCESS_2}"
    assert [s["access_token"] for s in sessions] == [ACCESS, ACCESS_2]


def test_refresh_is_attempted_only_once(client: ApiClient, rsps: responses.RequestsMock) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Token revoked."))
    refresh = rsps.post(f"{API}/auth/refresh", json=session_body(access=ACCESS_2))
    with pytest.raises(errors.NotAuthenticated):
        client.me()
    assert refresh.call_count == 1
    assert [c.request.method for c in rsps.calls] == ["POST", "GET", "POST", "GET"]
    assert not client.signed_in


@pytest.mark.parametrize(("status", "code"), [(401, "invalid_token"), (422, "validation_error")])
def test_refresh_failure_means_not_authenticated(
    client: ApiClient, rsps: responses.RequestsMock, status: int, code: str
) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Token expired."))
    rsps.post(f"{API}/auth/refresh", status=status, json=problem(status, code, "Bad token."))
    with pytest.raises(errors.NotAuthenticated) as caught:
        client.me()
    assert "sign in again" in caught.value.message
    assert not client.signed_in
    assert client.refresh_token is None
    assert len(rsps.calls) == 3  # no repeat of GET /me after the failed refresh


def test_refresh_is_not_retried_on_server_errors(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Token expired."))
    refresh = rsps.post(f"{API}/auth/refresh", status=503, json={"message": "Service Unavailable"})
    with pytest.raises(errors.ServerError):
        client.me()
    assert refresh.call_count == 1
    assert sleeps == []


def test_stored_refresh_token_resumes_the_session(rsps: responses.RequestsMock) -> None:
    api = ApiClient(API, API_TOKEN, refresh_token=REFRESH)
    assert api.signed_in
    rsps.post(f"{API}/auth/refresh", json=session_body(access=ACCESS_2))
    rsps.get(f"{API}/roles", json={"items": [], "next_cursor": None})
    api.list_roles()
    assert [c.request.url.split("?")[0] for c in rsps.calls] == [
        f"{API}/auth/refresh",
        f"{API}/roles",
    ]
    assert rsps.calls[1].request.headers["Authorization"] == f"Bearer {ACCESS_2}"
    assert api.username == "alice"


def test_without_refresh_token_an_expired_session_is_not_refreshed(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{API}/auth/login", json={**session_body(), "refresh_token": None})
    client.login("alice", PASSWORD)
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", "Token expired."))
    with pytest.raises(errors.NotAuthenticated):
        client.me()
    assert len(rsps.calls) == 2


def test_not_signed_in_call_says_sign_in(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/me", status=401, json=problem(401, "not_authenticated", "Sign in."))
    with pytest.raises(errors.NotAuthenticated) as caught:
        client.me()
    assert "Authorization" not in rsps.calls[0].request.headers
    assert "sign in" in caught.value.message


def test_refresh_without_token_raises(client: ApiClient) -> None:
    with pytest.raises(errors.NotAuthenticated):
        client.refresh()


def test_change_password_takes_the_new_session(
    client: ApiClient, rsps: responses.RequestsMock, sessions: list[dict]
) -> None:
    sign_in(client, rsps)
    rsps.put(
        f"{API}/me/password",
        json=session_body(access=ACCESS_2, refresh="ref-new-after-change"),
        match=[
            matchers.json_params_matcher(
                {"current_password": PASSWORD, "new_password": "new-Pass-0001"}
            )
        ],
    )
    client.change_password(PASSWORD, "new-Pass-0001")
    assert client.refresh_token == "ref-new-after-change"
    assert sessions[-1]["access_token"] == ACCESS_2


def test_logout_revokes_and_forgets(client: ApiClient, rsps: responses.RequestsMock) -> None:
    sign_in(client, rsps)
    logout = rsps.post(f"{API}/auth/logout", status=204)
    client.logout()
    assert logout.calls[0].request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert not client.signed_in
    assert client.username is None
    client.logout()  # signed out already: nothing to send
    assert logout.call_count == 1


def test_logout_forgets_tokens_when_server_says_401(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    sign_in(client, rsps)
    rsps.post(f"{API}/auth/logout", status=401, json=problem(401, "invalid_token", "Revoked."))
    rsps.post(f"{API}/auth/refresh", status=401, json=problem(401, "invalid_token", "Revoked."))
    client.logout()
    assert not client.signed_in
    assert client.refresh_token is None


def test_logout_forgets_tokens_but_reports_other_failures(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    sign_in(client, rsps)
    rsps.post(f"{API}/auth/logout", status=500, json=problem(500, "internal", "Boom."))
    with pytest.raises(errors.ServerError):
        client.logout()
    assert not client.signed_in


def test_repr_shows_no_tokens(client: ApiClient, rsps: responses.RequestsMock) -> None:
    sign_in(client, rsps)
    text = repr(client)
    assert "alice" in text
    for secret in (API_TOKEN, ACCESS, REFRESH, PASSWORD):
        assert secret not in text


# -- retries ------------------------------------------------------------------------------


def test_get_is_retried_on_503_with_exponential_backoff(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    rsps.get(f"{API}/ping", status=503, json={"message": "Service Unavailable"})
    rsps.get(f"{API}/ping", status=502, json={"message": "Bad Gateway"})
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    assert client.ping()["message"] == "pong"
    assert len(rsps.calls) == 3
    # backoff 0.5 s doubled each time, plus up to half of it as jitter
    assert 0.5 <= sleeps[0] <= 0.75
    assert 1.0 <= sleeps[1] <= 1.5


def test_retries_give_up_after_the_configured_number(rsps: responses.RequestsMock) -> None:
    sleeps = Sleeps()
    api = ApiClient(API, API_TOKEN, options=ClientOptions(retries=2, backoff=0.1), sleep=sleeps)
    rsps.get(f"{API}/ping", status=504, json={"message": "Endpoint request timed out"})
    with pytest.raises(errors.ServerError) as caught:
        api.ping()
    assert caught.value.status == 504
    assert len(rsps.calls) == 3
    assert len(sleeps) == 2
    assert 0.1 <= sleeps[0] <= 0.15
    assert 0.2 <= sleeps[1] <= 0.3


def test_retry_after_is_honoured(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    rsps.get(f"{API}/ping", status=429, headers={"Retry-After": "2"}, json={"message": "Slow down"})
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    client.ping()
    assert sleeps == [2.0]


def test_retry_after_beyond_the_cap_is_left_to_the_user(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    rsps.get(
        f"{API}/ping",
        status=429,
        headers={"Retry-After": "120"},
        json=problem(429, "too_many_attempts", "Too many requests."),
    )
    with pytest.raises(errors.TooManyAttempts) as caught:
        client.ping()
    assert caught.value.retry_after == 120.0
    assert "120 s" in caught.value.message
    assert len(rsps.calls) == 1
    assert sleeps == []


def test_get_is_retried_after_a_connection_error(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    rsps.get(f"{API}/ping", body=requests.ConnectionError("Connection aborted."))
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    client.ping()
    assert len(rsps.calls) == 2
    assert len(sleeps) == 1


@pytest.mark.parametrize("status", [400, 404, 409, 500])
def test_other_statuses_are_not_retried(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps, status: int
) -> None:
    sign_in(client, rsps)
    rsps.get(f"{API}/roles/x", status=status, json=problem(status, "x", "No."))
    with pytest.raises(errors.ApiError):
        client.get_role("x")
    assert len(rsps.calls) == 2
    assert sleeps == []


def test_put_and_delete_are_retried(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    sign_in(client, rsps)
    rsps.put(f"{API}/roles/r", status=503, json={"message": "busy"})
    rsps.put(f"{API}/roles/r", json={"name": "r"})
    rsps.delete(f"{API}/roles/r", status=502, json={"message": "busy"})
    rsps.delete(f"{API}/roles/r", status=204)
    client.update_role("r", [])
    client.delete_role("r")
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("call", "method", "path"),
    [
        (lambda api: api.login("alice", PASSWORD), "POST", "/auth/login"),
        (lambda api: api.create_role("r", []), "POST", "/roles"),
        (lambda api: api.create_user("bob", PASSWORD, []), "POST", "/users"),
        (lambda api: api.change_password(PASSWORD, "new-Pass-0001"), "PUT", "/me/password"),
    ],
)
@pytest.mark.parametrize("failure", ["503", "429", "connection"])
def test_non_idempotent_calls_are_never_retried(
    client: ApiClient,
    rsps: responses.RequestsMock,
    sleeps: Sleeps,
    call,
    method: str,
    path: str,
    failure: str,
) -> None:
    if path != "/auth/login":
        sign_in(client, rsps)
    if failure == "connection":
        rsps.add(method, f"{API}{path}", body=requests.ConnectionError("refused"))
    else:
        rsps.add(
            method,
            f"{API}{path}",
            status=int(failure),
            headers={"Retry-After": "1"},
            json={"message": "busy"},
        )
    with pytest.raises(errors.ApiError):
        call(client)
    assert sum(1 for c in rsps.calls if c.request.path_url == f"/prod{path}") == 1
    assert sleeps == []


def test_login_rate_limit_reports_retry_after(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        f"{API}/auth/login",
        status=429,
        headers={"Retry-After": "8"},
        json=problem(429, "too_many_attempts", "Too many failed sign-ins for this username."),
    )
    with pytest.raises(errors.TooManyAttempts) as caught:
        client.login("alice", PASSWORD)
    assert caught.value.retry_after == 8.0
    assert caught.value.message == "Too many failed sign-ins for this username. Try again in 8 s."


# -- real sockets -------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_on_a_closed_port() -> None:
    port = closed_port()
    sleeps = Sleeps()
    api = ApiClient(f"http://127.0.0.1:{port}", API_TOKEN, sleep=sleeps)
    with pytest.raises(errors.ConnectionFailed) as caught:
        api.ping()
    assert caught.value.message.startswith(f"Cannot reach 127.0.0.1:{port}: connection refused")
    assert caught.value.status is None
    assert len(sleeps) == 3  # GET: retried three times, then given up


def test_dns_failure_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    api = ApiClient("https://no-such-host.invalid/prod", API_TOKEN, sleep=Sleeps())
    with pytest.raises(errors.ConnectionFailed) as caught:
        api.ping()
    assert "no-such-host.invalid:443" in caught.value.message
    assert "could not be resolved" in caught.value.message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections (through the backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def test_read_timeout_is_not_retried(silent_server: int) -> None:
    sleeps = Sleeps()
    options = ClientOptions(timeout=0.3, connect_timeout=2.0)
    api = ApiClient(f"http://127.0.0.1:{silent_server}", API_TOKEN, options=options, sleep=sleeps)
    with pytest.raises(errors.RequestTimeout) as caught:
        api.ping()
    assert "did not answer GET /ping within 0.3 s" in caught.value.message
    assert sleeps == []


class PongHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"message": "pong", "api_version": contract.API_VERSION}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(server: http.server.HTTPServer) -> Iterator[int]:
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class QuietServer(http.server.HTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        pass  # failed handshakes are the point of these tests


@pytest.fixture
def plain_server() -> Iterator[int]:
    yield from serve(QuietServer(("127.0.0.1", 0), PongHandler))


@pytest.fixture
def self_signed(tmp_path: Path) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
            "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return tmp_path


@pytest.fixture
def tls_server(self_signed: Path) -> Iterator[int]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(self_signed / "cert.pem", self_signed / "key.pem")
    server = QuietServer(("127.0.0.1", 0), PongHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    yield from serve(server)


def test_untrusted_certificate_is_a_tls_failure(tls_server: int) -> None:
    sleeps = Sleeps()
    api = ApiClient(f"https://127.0.0.1:{tls_server}", API_TOKEN, sleep=sleeps)
    with pytest.raises(errors.TlsFailed) as caught:
        api.ping()
    assert f"certificate of 127.0.0.1:{tls_server} could not be verified" in caught.value.message
    assert sleeps == []  # a certificate does not get better by asking again


def test_trusted_certificate_works_through_an_injected_session(
    tls_server: int, self_signed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests lets these variables override a session's `verify`.
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    session = requests.Session()
    session.verify = str(self_signed / "cert.pem")
    with ApiClient(f"https://127.0.0.1:{tls_server}", API_TOKEN, session=session) as api:
        assert api.ping()["message"] == "pong"
    # The caller's session stays usable: the client closes only sessions it made.
    assert session.get(f"https://127.0.0.1:{tls_server}/ping", timeout=5).ok
    session.close()


def test_https_to_a_plain_http_server_suggests_http(plain_server: int) -> None:
    api = ApiClient(f"https://127.0.0.1:{plain_server}", API_TOKEN, sleep=Sleeps())
    with pytest.raises(errors.TlsFailed) as caught:
        api.ping()
    assert "use an http:// URL" in caught.value.message


def test_plain_http_server_answers_ping(plain_server: int) -> None:
    with ApiClient(f"http://127.0.0.1:{plain_server}/", API_TOKEN) as api:
        assert api.ping() == {"message": "pong", "api_version": contract.API_VERSION}


def test_retry_after_as_http_date(
    client: ApiClient, rsps: responses.RequestsMock, sleeps: Sleeps
) -> None:
    when = email.utils.format_datetime(
        datetime.now(timezone.utc) + timedelta(seconds=5), usegmt=True
    )
    rsps.get(f"{API}/ping", status=503, headers={"Retry-After": when}, json={"message": "busy"})
    rsps.get(f"{API}/ping", json={"message": "pong", "api_version": "1.0"})
    client.ping()
    assert len(sleeps) == 1
    assert 3.0 < sleeps[0] <= 5.0


def test_parallel_calls_after_expiry_refresh_once(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    sign_in(client, rsps)
    refreshes: list[int] = []
    # All eight calls are in flight with the expired token before any hears it was refused.
    expired_together = threading.Barrier(8, timeout=5)

    def me(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        if request.headers["Authorization"] == f"Bearer {ACCESS_2}":
            return 200, {}, json.dumps({"username": "alice", "permissions": []})
        expired_together.wait()
        return 401, {}, json.dumps(problem(401, "invalid_token", "Token expired."))

    def refresh(request: requests.PreparedRequest) -> tuple[int, dict, str]:
        refreshes.append(1)
        return 200, {}, json.dumps(session_body(access=ACCESS_2))

    rsps.add_callback("GET", f"{API}/me", callback=me)
    rsps.add_callback("POST", f"{API}/auth/refresh", callback=refresh)
    failures: list[BaseException] = []

    def call() -> None:
        try:
            client.me()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert len(refreshes) == 1


def test_importing_the_client_package_stays_light() -> None:
    code = (
        "import sys, aws_extension.client as c\n"
        "assert 'requests' not in sys.modules, 'requests imported eagerly'\n"
        "from aws_extension.client import SettingsStore, ApiError\n"
        "assert 'requests' not in sys.modules, 'errors/settings pulled requests'\n"
        "c.ApiClient\n"
        "heavy = {'gradio', 'fastapi', 'pydantic', 'aws_extension.middleware', "
        "'aws_extension.local'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert set(c.__all__) == set(c._EXPORTS)\n"
        "assert all(getattr(c, name) for name in c.__all__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
