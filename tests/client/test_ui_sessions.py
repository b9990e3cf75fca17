"""UserSessions: what is saved when, per WebUI user, and never a password."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from fake_api import API, API_TOKEN, PASSWORD, REFRESH

from aws_extension.client.errors import (
    ConnectionFailed,
    IncompatibleServer,
    InvalidApiToken,
    InvalidUrl,
    NotAuthenticated,
    WrongCredentials,
)
from aws_extension.ui.context import request_user
from aws_extension.ui.feedback import UiError
from aws_extension.ui.sessions import SignedOut, UserSessions


@pytest.fixture
def sessions(ui_context) -> UserSessions:
    return UserSessions(ui_context)


def test_a_successful_connect_saves_the_connection_and_the_session(api, ui_context, sessions):
    client = sessions.connect("", f"  {API}/ ", API_TOKEN, "admin", PASSWORD)

    store = ui_context.store
    assert client.username == "admin"
    assert (store.connection().api_url, store.connection().api_token) == (API, API_TOKEN)
    assert store.user_session("").username == "admin"
    assert store.user_session("").refresh_token == f"{REFRESH}-admin"
    text = store.path.read_text()
    assert PASSWORD not in text
    assert store.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("url", "token", "username", "password", "error"),
    [
        ("api.test:8080", API_TOKEN, "admin", PASSWORD, InvalidUrl),
        (API, "wrong-token", "admin", PASSWORD, InvalidApiToken),
        (API, API_TOKEN, "admin", "wrong password", WrongCredentials),
        (API, API_TOKEN, "", PASSWORD, UiError),
        (API, API_TOKEN, "admin", "", UiError),
        (API, "", "admin", PASSWORD, InvalidApiToken),
    ],
)
def test_a_failed_connect_saves_nothing(
    api, ui_context, sessions, url, token, username, password, error
):
    with pytest.raises(error):
        sessions.connect("", url, token, username, password)

    assert not ui_context.store.path.exists()


def test_an_unreachable_server_is_reported_in_words(ui_context, sessions):
    with pytest.raises(ConnectionFailed, match="Cannot reach"):
        sessions.connect("", "http://127.0.0.1:9", API_TOKEN, "admin", PASSWORD)


def test_another_api_version_is_refused(api, sessions):
    api.api_version = "2.0"

    with pytest.raises(IncompatibleServer, match=r"API version 2\.0"):
        sessions.connect("", API, API_TOKEN, "admin", PASSWORD)


def test_an_empty_token_field_keeps_the_saved_token(api, ui_context, sessions):
    sessions.connect("", API, API_TOKEN, "admin", PASSWORD)

    client = sessions.connect("", API, "", "admin", PASSWORD)

    assert client.username == "admin"
    assert ui_context.store.connection().api_token == API_TOKEN


def test_each_webui_user_has_a_session_of_its_own(api, ui_context, sessions):
    api.users["bob"] = ("pw-bob-123456", [])
    sessions.connect("alice", API, API_TOKEN, "admin", PASSWORD)
    sessions.connect("bob", API, "", "bob", "pw-bob-123456")

    assert sessions.client("alice").username == "admin"
    assert sessions.client("bob").username == "bob"
    assert ui_context.store.user_session("alice").username == "admin"
    assert ui_context.store.user_session("bob").username == "bob"


def test_after_a_restart_the_session_resumes_without_the_password(api, ui_context, sessions):
    sessions.connect("", API, API_TOKEN, "admin", PASSWORD)
    api.sent.clear()

    client = UserSessions(ui_context).check("")  # a new tab: nothing in memory

    assert client.username == "admin"
    assert [(m, u.removeprefix(API)) for m, u, _ in api.sent] == [("POST", "/auth/refresh")]


def test_a_revoked_session_is_forgotten_on_resume(api, ui_context, sessions):
    sessions.connect("", API, API_TOKEN, "admin", PASSWORD)
    api.revoked.add("admin")

    with pytest.raises(NotAuthenticated, match="sign in again"):
        UserSessions(ui_context).check("")

    assert ui_context.store.user_session("") is None
    assert ui_context.store.connection() is not None


def test_resume_without_saved_settings_says_what_to_do(ui_context, sessions):
    with pytest.raises(SignedOut, match="No API is configured yet"):
        sessions.check("")


def test_sign_out_revokes_on_the_server_and_forgets_here(api, ui_context, sessions):
    sessions.connect("", API, API_TOKEN, "admin", PASSWORD)

    sessions.sign_out("")

    assert "admin" in api.revoked
    assert ui_context.store.user_session("") is None
    with pytest.raises(SignedOut, match="Not signed in"):
        sessions.client("")


def test_sign_out_after_a_restart_still_revokes_the_stored_session(api, ui_context, sessions):
    sessions.connect("", API, API_TOKEN, "admin", PASSWORD)

    UserSessions(ui_context).sign_out("")

    assert "admin" in api.revoked
    assert ui_context.store.user_session("") is None


def test_the_webui_user_is_the_gradio_login_or_nobody():
    assert request_user(SimpleNamespace(username="alice")) == "alice"
    assert request_user(SimpleNamespace(username=None)) == ""
    assert request_user(None) == ""
