"""UserSessions against the real middleware: what is saved when, per WebUI user, never a password.

The server is the embedded local stack as a process (`server` in conftest.py); whether the
server honours a saved refresh token is asked of the server itself.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aws_extension.client.errors import (
    ConnectionFailed,
    InvalidApiToken,
    InvalidUrl,
    NotAuthenticated,
    NotFound,
    WrongCredentials,
)
from aws_extension.client.settings_store import SettingsStore
from aws_extension.ui.context import UiContext, request_user
from aws_extension.ui.feedback import UiError
from aws_extension.ui.sessions import SignedOut, UserSessions
from tests.support.local_stack import refused_port


@pytest.fixture
def sessions(ui_context) -> UserSessions:
    return UserSessions(ui_context)


def _connect(sessions: UserSessions, server, user: str = "", token: str | None = None):
    api_token = server.api_token if token is None else token
    return sessions.connect(user, server.url, api_token, server.username, server.password)


def _restarted(ui_context: UiContext) -> UserSessions:
    """The sessions of a restarted WebUI: a new context over the same settings file."""
    store = SettingsStore(ui_context.store.path)
    return UserSessions(UiContext(store=store, client_options=ui_context.client_options))


def _honoured(server, refresh_token: str) -> bool:
    """Whether the server still accepts `refresh_token` (a revoked one is refused)."""
    with server.client(refresh_token=refresh_token) as client:
        try:
            client.refresh()
        except NotAuthenticated:
            return False
    return True


def test_a_successful_connect_saves_the_connection_and_the_session(server, ui_context, sessions):
    client = sessions.connect(
        "", f"  {server.url}/ ", server.api_token, server.username, server.password
    )

    store = ui_context.store
    assert client.username == server.username
    assert client.me()["username"] == server.username
    assert (store.connection().api_url, store.connection().api_token) == (
        server.url,
        server.api_token,
    )
    saved = store.user_session("")
    assert saved.username == server.username
    assert saved.refresh_token == client.refresh_token
    assert _honoured(server, saved.refresh_token)
    password_saved = server.password in store.path.read_text()
    assert not password_saved
    assert store.path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("change", "error"),
    [
        pytest.param(lambda s: {"api_url": s.url.removeprefix("http://")}, InvalidUrl, id="scheme"),
        pytest.param(lambda s: {"api_token": "not-the-api-token"}, InvalidApiToken, id="token"),
        pytest.param(lambda s: {"api_token": ""}, InvalidApiToken, id="no-token-saved"),
        pytest.param(lambda s: {"password": "not the password"}, WrongCredentials, id="password"),
        pytest.param(lambda s: {"username": "nobody-here"}, WrongCredentials, id="unknown-user"),
        pytest.param(lambda s: {"username": " "}, UiError, id="no-username"),
        pytest.param(lambda s: {"password": ""}, UiError, id="no-password"),
        # The API under another path (a wrong stage such as /prod): the stack's own 404.
        pytest.param(lambda s: {"api_url": f"{s.url}/prod"}, NotFound, id="path"),
    ],
)
def test_a_failed_connect_saves_nothing(server, ui_context, sessions, change, error):
    given = {
        "api_url": server.url,
        "api_token": server.api_token,
        "username": server.username,
        "password": server.password,
        **change(server),
    }

    with pytest.raises(error):
        sessions.connect("", **given)

    assert not ui_context.store.path.exists()


def test_an_unreachable_server_is_reported_in_words(server, ui_context, sessions):
    with refused_port() as port, pytest.raises(ConnectionFailed, match="Cannot reach"):
        sessions.connect(
            "", f"http://127.0.0.1:{port}", server.api_token, server.username, server.password
        )

    assert not ui_context.store.path.exists()


def test_an_empty_token_field_keeps_the_saved_token(server, ui_context, sessions):
    _connect(sessions, server)

    client = _connect(sessions, server, token="")

    assert client.username == server.username
    assert ui_context.store.connection().api_token == server.api_token


def test_each_webui_user_has_a_session_of_its_own(server, ui_context, sessions):
    bob = server.add_user("bob", [])
    _connect(sessions, server, user="alice")
    sessions.connect("bob", server.url, "", bob.username, bob.password)

    assert sessions.client("alice").username == server.username
    assert sessions.client("bob").username == bob.username
    assert sessions.client("bob").me()["permissions"] == []
    assert ui_context.store.user_session("alice").username == server.username
    assert ui_context.store.user_session("bob").username == bob.username


def test_after_a_restart_the_session_resumes_from_the_refresh_token(server, ui_context, sessions):
    _connect(sessions, server)
    saved = ui_context.store.user_session("")

    client = _restarted(ui_context).check("")  # nothing in memory, no password anywhere

    assert client.username == server.username
    assert client.me()["username"] == server.username
    assert client.refresh_token == saved.refresh_token
    assert SettingsStore(ui_context.store.path).user_session("") == saved


def test_a_revoked_session_is_forgotten_on_resume(server, ui_context, sessions):
    _connect(sessions, server)
    server.sign_out_elsewhere(server.login)  # revokes every token of that user

    with pytest.raises(NotAuthenticated, match="sign in again"):
        _restarted(ui_context).check("")

    assert ui_context.store.user_session("") is None
    assert ui_context.store.connection() is not None


def test_resume_without_saved_settings_says_what_to_do(ui_context, sessions):
    with pytest.raises(SignedOut, match="No API is configured yet"):
        sessions.check("")


def test_sign_out_revokes_on_the_server_and_forgets_here(server, ui_context, sessions):
    _connect(sessions, server)
    refresh_token = ui_context.store.user_session("").refresh_token

    sessions.sign_out("")

    assert not _honoured(server, refresh_token)
    assert ui_context.store.user_session("") is None
    with pytest.raises(SignedOut, match="Not signed in"):
        sessions.client("")


def test_sign_out_after_a_restart_still_revokes_the_stored_session(server, ui_context, sessions):
    _connect(sessions, server)
    refresh_token = ui_context.store.user_session("").refresh_token

    _restarted(ui_context).sign_out("")

    assert not _honoured(server, refresh_token)
    assert ui_context.store.user_session("") is None


def test_the_webui_user_is_the_gradio_login_or_nobody():
    assert request_user(SimpleNamespace(username="alice")) == "alice"
    assert request_user(SimpleNamespace(username=None)) == ""
    assert request_user(None) == ""
