"""No secret leaves the client in an error: not in str, repr, traceback nor a log line.

Every secret here is distinctive, and the fake server echoes them back in its details (a
careless server or proxy might), so the test fails if any reaches the user's screen or logs.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import Callable, Iterator

import pytest
import requests
import responses

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions

API = "https://api.example.test/prod"
API_TOKEN = "SECRET-apitoken-7Hq2"
PASSWORD = "SECRET-password-Lm4x"
NEW_PASSWORD = "SECRET-newpass-Vc81"
ACCESS = "SECRET-access-Pz90"
REFRESH = "SECRET-refresh-Yt55"
SECRETS = (API_TOKEN, PASSWORD, NEW_PASSWORD, ACCESS, REFRESH)
ECHO = " ".join(SECRETS)


def problem(status: int, code: str, *echoed: str) -> dict:
    # The detail echoes the secrets the request carried: the client must scrub them.
    return {"status": status, "code": code, "detail": f"Rejected: {' '.join(echoed)}"}


SESSION = {
    "access_token": ACCESS,
    "refresh_token": REFRESH,
    "token_type": "bearer",
    "expires_in": 900,
    "user": {"username": "alice", "roles": [], "permissions": []},
}


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def signed_in(rsps: responses.RequestsMock) -> ApiClient:
    api = ApiClient(API, API_TOKEN, options=ClientOptions(retries=1), sleep=lambda _: None)
    rsps.post(f"{API}/auth/login", json=SESSION)
    api.login("alice", PASSWORD)
    return api


def assert_clean(error: BaseException) -> None:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret} leaked in {type(error).__name__}: {text}"


Scenario = Callable[[responses.RequestsMock], None]


def login_wrong(rsps: responses.RequestsMock) -> None:
    rsps.post(
        f"{API}/auth/login", status=401, json=problem(401, "wrong_credentials", API_TOKEN, PASSWORD)
    )
    ApiClient(API, API_TOKEN).login("alice", PASSWORD)


def login_throttled(rsps: responses.RequestsMock) -> None:
    rsps.post(
        f"{API}/auth/login", status=429, json=problem(429, "too_many_attempts", API_TOKEN, PASSWORD)
    )
    ApiClient(API, API_TOKEN).login("alice", PASSWORD)


def bad_api_key(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", status=403, json=problem(403, "invalid_api_key", API_TOKEN))
    ApiClient(API, API_TOKEN).ping()


def weak_new_password(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.put(
        f"{API}/me/password",
        status=422,
        json=problem(422, "validation_error", ACCESS, PASSWORD, NEW_PASSWORD),
    )
    api.change_password(PASSWORD, NEW_PASSWORD)


def create_user_conflict(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.post(f"{API}/users", status=409, json=problem(409, "conflict", ACCESS, NEW_PASSWORD))
    api.create_user("bob", NEW_PASSWORD, ["artist"])


def update_user_denied(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.put(
        f"{API}/users/bob", status=403, json=problem(403, "permission_denied", ACCESS, NEW_PASSWORD)
    )
    api.update_user("bob", password=NEW_PASSWORD)


def refresh_refused(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.get(f"{API}/me", status=401, json=problem(401, "invalid_token", ACCESS))
    rsps.post(f"{API}/auth/refresh", status=401, json=problem(401, "invalid_token", REFRESH))
    api.me()


def refresh_direct_refused(rsps: responses.RequestsMock) -> None:
    api = ApiClient(API, API_TOKEN, refresh_token=REFRESH)
    rsps.post(f"{API}/auth/refresh", status=422, json=problem(422, "validation_error", REFRESH))
    api.refresh()


def server_failure_after_retry(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.get(f"{API}/roles", status=503, json=problem(503, "internal", ACCESS, API_TOKEN))
    api.list_roles()


def not_found(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.get(f"{API}/roles/x", status=404, json=problem(404, "not_found", ACCESS))
    api.get_role("x")


def html_page(rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/ping", status=404, body=f"<html>{ECHO}</html>", content_type="text/html")
    ApiClient(API, API_TOKEN).ping()


def connection_error(rsps: responses.RequestsMock) -> None:
    api = signed_in(rsps)
    rsps.get(f"{API}/me", body=requests.ConnectionError(f"refused {ECHO}"))
    api.me()


def token_as_url(rsps: responses.RequestsMock) -> None:
    ApiClient(API_TOKEN, API_TOKEN)


def url_with_password(rsps: responses.RequestsMock) -> None:
    ApiClient(f"https://alice:{PASSWORD}@api.example.test", API_TOKEN)


def token_with_newline(rsps: responses.RequestsMock) -> None:
    ApiClient(API, f"{API_TOKEN}\nX-Evil: 1")


SCENARIOS: list[Scenario] = [
    login_wrong,
    login_throttled,
    bad_api_key,
    weak_new_password,
    create_user_conflict,
    update_user_denied,
    refresh_refused,
    refresh_direct_refused,
    server_failure_after_retry,
    not_found,
    html_page,
    connection_error,
    token_as_url,
    url_with_password,
    token_with_newline,
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_no_secret_in_errors_or_logs(
    scenario: Scenario, rsps: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(errors.ApiError) as caught:
        scenario(rsps)
    assert_clean(caught.value)
    for secret in SECRETS:
        assert secret not in caplog.text


def test_echoed_secrets_are_replaced_not_dropped(rsps: responses.RequestsMock) -> None:
    with pytest.raises(errors.WrongCredentials) as caught:
        login_wrong(rsps)
    assert caught.value.message == "Rejected: *** ***."


def test_network_failures_leak_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = ApiClient(
        f"http://127.0.0.1:{port}", API_TOKEN, refresh_token=REFRESH, sleep=lambda _: None
    )
    with pytest.raises(errors.ConnectionFailed) as caught:
        api.me()  # refreshes first: a POST carrying the refresh token, refused
    assert_clean(caught.value)
    assert "retry" not in caplog.text  # a POST is not retried
    with pytest.raises(errors.ConnectionFailed) as caught:
        api.ping()
    assert_clean(caught.value)
    assert "retry 3 of 3" in caplog.text
    for secret in SECRETS:
        assert secret not in caplog.text
