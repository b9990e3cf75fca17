"""Handlers of the API and User Settings sub-tab, called as gradio would call them.

Light on purpose: the browser test drives the same handlers through a real page and a real
server. These pin the promises that are easy to break without noticing: the token never
goes back to the page, passwords are cleared, panels follow permissions, errors are words.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest
from fake_api import API, API_TOKEN, PASSWORD

from aws_extension.ui.connection_panel import SAVED_TOKEN_PLACEHOLDER
from aws_extension.ui.paging import PageState
from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.tab import SettingsPanels, build_settings

REQUEST = SimpleNamespace(username=None)  # a WebUI without logins


@pytest.fixture
def tab(ui_context) -> SettingsPanels:
    with gr.Blocks() as blocks:
        return build_settings(ui_context, UserSessions(ui_context), blocks)


def _visible(update: object) -> bool | None:
    return update.get("visible") if isinstance(update, dict) else None


def _cells(update: dict) -> list[list[str]]:
    return update["data"]


def _connect(tab: SettingsPanels, token: str = API_TOKEN, password: str = PASSWORD) -> dict:
    return tab.connection.on_connect(API, token, "admin", password, REQUEST)


def test_first_load_asks_for_the_connection(tab):
    updates = tab.connection.on_load(REQUEST)

    assert "No API is configured yet" in updates[tab.connection.status]
    assert _visible(updates[tab.connection.sign_out]) is False
    assert _visible(updates[tab.roles.panel]) is False
    assert _visible(updates[tab.users.panel]) is False


def test_connect_signs_in_shows_the_panels_and_never_returns_the_token(api, tab):
    updates = _connect(tab)

    c = tab.connection
    assert "Signed in as <b>admin</b>" in updates[c.status]
    assert updates[c.api_token]["value"] == ""
    assert updates[c.api_token]["placeholder"] == SAVED_TOKEN_PLACEHOLDER
    assert updates[c.password] == ""
    assert _visible(updates[c.sign_out]) is True
    assert _visible(updates[tab.roles.panel]) is True
    assert _cells(updates[tab.roles.table])[0][0] == "admin"
    assert _cells(updates[tab.users.table])[0][:2] == ["admin", "admin"]
    assert updates[tab.users.roles]["choices"] == ["admin"]
    assert API_TOKEN not in repr(updates)
    assert PASSWORD not in repr(updates)


def test_a_wrong_token_is_said_in_words_and_changes_nothing_else(api, tab, ui_context):
    updates = _connect(tab, token="not-the-token")

    assert set(updates) == {tab.connection.status}
    assert "API token was refused" in updates[tab.connection.status]
    assert not ui_context.store.path.exists()


def test_wrong_credentials_are_said_in_words(api, tab):
    updates = _connect(tab, password="not the password")

    assert "Wrong username or password" in updates[tab.connection.status]


def test_a_reload_shows_the_saved_connection_but_not_the_token(api, tab, ui_context):
    _connect(tab)

    with gr.Blocks() as blocks:  # a restarted WebUI builds a new tab
        fresh = build_settings(ui_context, UserSessions(ui_context), blocks)
    updates = fresh.connection.on_load(REQUEST)

    c = fresh.connection
    assert "Signed in as <b>admin</b>" in updates[c.status]
    assert updates[c.api_url] == API
    assert updates[c.username] == "admin"
    # Only the placeholder: a value update would wipe what the user may be typing.
    assert updates[c.api_token] == gr.update(placeholder=SAVED_TOKEN_PLACEHOLDER)
    assert c.password not in updates
    assert API_TOKEN not in repr(updates)


def test_a_revoked_session_shows_signed_out_with_the_reason(api, tab):
    _connect(tab)
    api.revoked.add("admin")

    updates = tab.connection.on_load(REQUEST)

    assert "Signed out: Your session has expired" in updates[tab.connection.status]
    assert _visible(updates[tab.roles.panel]) is False


def test_panels_follow_the_permissions(api, tab):
    api.roles["user-admins"] = ["user:all"]
    api.users["ops"] = ("pw-ops-123456", ["user-admins"])

    updates = tab.connection.on_connect(API, API_TOKEN, "ops", "pw-ops-123456", REQUEST)

    assert _visible(updates[tab.roles.panel]) is False
    assert _visible(updates[tab.users.panel]) is True


def test_sign_out_hides_and_empties_the_panels(api, tab, ui_context):
    _connect(tab)

    updates = tab.connection.on_sign_out(REQUEST)

    assert ">Signed out.<" in updates[tab.connection.status]
    assert _visible(updates[tab.roles.panel]) is False
    assert _cells(updates[tab.users.table]) == []
    assert ui_context.store.user_session("") is None
    assert "admin" in api.revoked


def test_create_role_refreshes_the_table(api, tab):
    _connect(tab)

    updates = tab.roles.on_create("artists", ["inference:all"], PageState(), REQUEST)

    assert (
        updates[tab.roles.status] == '<span class="sagemaker-success">Created role artists.</span>'
    )
    assert [row[:2] for row in _cells(updates[tab.roles.table])] == [
        ["admin", ", ".join(api.roles["admin"])],
        ["artists", "inference:all"],
    ]


def test_a_refused_change_is_said_in_words(api, tab):
    _connect(tab)

    updates = tab.roles.on_create("admin", [], PageState(), REQUEST)

    assert set(updates) == {tab.roles.status}
    assert "Error: A role named &#x27;admin&#x27; exists." in updates[tab.roles.status]


def test_an_empty_name_is_caught_before_calling_the_api(api, tab):
    _connect(tab)
    api.sent.clear()

    updates = tab.roles.on_create("  ", [], PageState(), REQUEST)

    assert "Error: Enter the role name." in updates[tab.roles.status]
    assert api.sent == []


def test_create_user_clears_the_password_field(api, tab):
    _connect(tab)

    updates = tab.users.on_create("carol", "pw-carol-123456", ["admin"], PageState(), REQUEST)

    assert updates[tab.users.password] == ""
    assert "Created user carol." in updates[tab.users.status]
    assert "carol" in [row[0] for row in _cells(updates[tab.users.table])]


def test_delete_asks_first_and_cancel_deletes_nothing(api, tab):
    _connect(tab)
    tab.roles.on_create("artists", [], PageState(), REQUEST)

    asked = tab.roles.on_delete("artists")
    assert _visible(asked[tab.roles.confirm_row]) is True
    assert asked[tab.roles.pending] == "artists"
    assert "artists" in asked[tab.roles.confirm_text]

    cancelled = tab.roles.on_cancel()
    assert _visible(cancelled[tab.roles.confirm_row]) is False
    assert "artists" in api.roles


def test_confirmed_delete_deletes_and_refreshes(api, tab):
    _connect(tab)
    tab.roles.on_create("artists", [], PageState(), REQUEST)

    updates = tab.roles.on_confirm_delete("artists", PageState(), REQUEST)

    assert "artists" not in api.roles
    assert "Deleted role artists." in updates[tab.roles.status]
    assert _visible(updates[tab.roles.confirm_row]) is False
    assert [row[0] for row in _cells(updates[tab.roles.table])] == ["admin"]


def test_an_expired_session_during_an_action_signs_the_user_out_here(api, tab, ui_context):
    _connect(tab)
    api.revoked.add("admin")  # signed out elsewhere: access and refresh token are void

    updates = tab.roles.on_refresh(PageState(), REQUEST)

    assert "sign in again" in updates[tab.roles.status]
    assert ui_context.store.user_session("") is None


def test_selecting_a_row_fills_the_form(api, tab):
    items = [{"name": "artists", "permissions": ["inference:all", "unknown:perm"]}]
    event = SimpleNamespace(index=[0, 1])

    updates = tab.roles.on_select(items, event)

    assert updates == {tab.roles.name: "artists", tab.roles.permissions: ["inference:all"]}
