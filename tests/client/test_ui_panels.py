"""Handlers of the API and User Settings sub-tab, called as gradio would call them.

Against the real middleware (the embedded local stack as a process, `server` in
conftest.py): these pin the promises that are easy to break without noticing: the token and
passwords never go back to the page, passwords are cleared, panels follow permissions,
tables page, errors are words. The browser test drives the same handlers through a page.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr
import pytest

from aws_extension.client.errors import NotAuthenticated
from aws_extension.contract import PERMISSIONS
from aws_extension.ui.connection_panel import SAVED_TOKEN_PLACEHOLDER
from aws_extension.ui.paging import PAGE_SIZE, PageState
from tests.client.tab_support import (
    REQUEST,
    build,
    cells,
    connect,
    names,
    secrets_shown,
    visible,
)
from tests.support.local_stack import refused_port


def test_first_load_asks_for_the_connection(tab):
    updates = tab.connection.on_load(REQUEST)

    assert "No API is configured yet" in updates[tab.connection.status]
    assert visible(updates[tab.connection.sign_out]) is False
    assert visible(updates[tab.roles.panel]) is False
    assert visible(updates[tab.users.panel]) is False


def test_connect_signs_in_shows_the_panels_and_never_returns_secrets(server, tab, ui_context):
    updates = connect(tab, server)

    c = tab.connection
    assert f"Signed in as <b>{server.username}</b>" in updates[c.status]
    assert updates[c.api_token]["value"] == ""
    assert updates[c.api_token]["placeholder"] == SAVED_TOKEN_PLACEHOLDER
    assert updates[c.password] == ""
    assert visible(updates[c.sign_out]) is True
    assert visible(updates[tab.roles.panel]) is True
    assert cells(updates[tab.roles.table])[0][:2] == ["admin", ", ".join(PERMISSIONS)]
    assert names(updates[tab.users.table]) == ["admin", server.username]
    assert cells(updates[tab.users.table])[1][1] == "admin"
    assert updates[tab.users.roles]["choices"] == ["admin"]
    refresh_token = ui_context.store.user_session("").refresh_token
    assert not secrets_shown(updates, server.api_token, server.password, refresh_token)


def test_a_wrong_token_is_said_in_words_and_changes_nothing_else(server, tab, ui_context):
    updates = connect(tab, server, api_token="not-the-api-token")

    assert set(updates) == {tab.connection.status}
    assert "API token was refused" in updates[tab.connection.status]
    assert not ui_context.store.path.exists()


def test_wrong_credentials_are_said_in_words(server, tab, ui_context):
    updates = connect(tab, server, password="not the password")

    assert set(updates) == {tab.connection.status}
    assert "Wrong username or password" in updates[tab.connection.status]
    assert not ui_context.store.path.exists()


def test_an_unreachable_server_is_said_in_words(server, tab, ui_context):
    with refused_port() as port:
        updates = connect(tab, server, api_url=f"http://127.0.0.1:{port}")

    assert set(updates) == {tab.connection.status}
    assert f"Cannot reach 127.0.0.1:{port}" in updates[tab.connection.status]
    assert not ui_context.store.path.exists()


def test_a_reload_shows_the_saved_connection_but_not_the_token(server, tab, ui_context):
    connect(tab, server)

    fresh = build(ui_context)  # a restarted WebUI builds a new tab: nothing in memory
    updates = fresh.connection.on_load(REQUEST)

    c = fresh.connection
    assert f"Signed in as <b>{server.username}</b>" in updates[c.status]
    assert updates[c.api_url] == server.url
    assert updates[c.username] == server.username
    # Only the placeholder: a value update would wipe what the user may be typing.
    assert updates[c.api_token] == gr.update(placeholder=SAVED_TOKEN_PLACEHOLDER)
    assert c.password not in updates
    assert visible(updates[fresh.roles.panel]) is True
    refresh_token = ui_context.store.user_session("").refresh_token
    assert not secrets_shown(updates, server.api_token, server.password, refresh_token)


def test_a_revoked_session_shows_signed_out_with_the_reason(server, tab):
    connect(tab, server)
    server.sign_out_elsewhere(server.login)

    updates = tab.connection.on_load(REQUEST)

    assert "Signed out: Your session has expired" in updates[tab.connection.status]
    assert visible(updates[tab.roles.panel]) is False
    assert visible(updates[tab.users.panel]) is False


def test_panels_follow_the_permissions(server, tab):
    user_admins = server.add_role("user-admins", ["user:all"])
    ops = server.add_user("ops", [user_admins])

    updates = connect(tab, server, username=ops.username, password=ops.password)

    assert f"Signed in as <b>{ops.username}</b>" in updates[tab.connection.status]
    assert visible(updates[tab.roles.panel]) is False
    assert visible(updates[tab.users.panel]) is True
    assert ops.username in names(updates[tab.users.table])
    # Assigning roles needs their names, which GET /roles gives to user:all holders too.
    assert sorted(updates[tab.users.roles]["choices"]) == sorted(["admin", user_admins])


def test_a_user_without_admin_permissions_sees_no_panels(server, tab):
    artists = server.add_role("artists", ["inference:all"])
    ann = server.add_user("ann", [artists])

    updates = connect(tab, server, username=ann.username, password=ann.password)

    assert f"Signed in as <b>{ann.username}</b>" in updates[tab.connection.status]
    assert "inference:all" in updates[tab.connection.status]
    assert visible(updates[tab.roles.panel]) is False
    assert visible(updates[tab.users.panel]) is False
    assert cells(updates[tab.users.table]) == []
    assert cells(updates[tab.roles.table]) == []


def test_sign_out_hides_and_empties_the_panels_and_revokes_the_session(server, tab, ui_context):
    connect(tab, server)
    refresh_token = ui_context.store.user_session("").refresh_token

    updates = tab.connection.on_sign_out(REQUEST)

    assert ">Signed out.<" in updates[tab.connection.status]
    assert visible(updates[tab.roles.panel]) is False
    assert cells(updates[tab.users.table]) == []
    assert ui_context.store.user_session("") is None
    with server.client(refresh_token=refresh_token) as old, pytest.raises(NotAuthenticated):
        old.refresh()


def test_create_role_refreshes_the_table(server, tab):
    connect(tab, server)
    name = "artists-" + server.username  # unique, and sorts after "admin"

    updates = tab.roles.on_create(name, ["inference:all"], PageState(), REQUEST)

    assert updates[tab.roles.status] == (
        f'<span class="sagemaker-success">Created role {name}.</span>'
    )
    assert [row[:2] for row in cells(updates[tab.roles.table])] == [
        ["admin", ", ".join(PERMISSIONS)],
        [name, "inference:all"],
    ]
    assert name in server.role_names()


def test_update_role_changes_its_permissions_on_the_server(server, tab):
    connect(tab, server)
    name = server.add_role("artists", ["inference:all"])

    updates = tab.roles.on_update(name, ["checkpoint:all", "inference:all"], PageState(), REQUEST)

    assert f"Updated the permissions of role {name}." in updates[tab.roles.status]
    row = next(row for row in cells(updates[tab.roles.table]) if row[0] == name)
    # In the contract's order, whatever the order sent.
    assert row[1] == "inference:all, checkpoint:all"
    assert server.admin.get_role(name)["permissions"] == ["inference:all", "checkpoint:all"]


def test_a_refused_change_is_said_in_words(server, tab):
    connect(tab, server)

    updates = tab.roles.on_create("admin", [], PageState(), REQUEST)

    assert set(updates) == {tab.roles.status}
    assert "Error: A role named &#x27;admin&#x27; already exists." in updates[tab.roles.status]


def test_an_empty_name_is_caught_before_calling_the_api(server, tab):
    connect(tab, server)

    updates = tab.roles.on_create("  ", [], PageState(), REQUEST)

    # The tab's own words: the server would have answered with a validation error.
    assert set(updates) == {tab.roles.status}
    assert "Error: Enter the role name." in updates[tab.roles.status]
    assert server.role_names() == ["admin"]


def test_the_tables_page_through_the_server_cursors(server, tab):
    made = [server.add_role(f"r{i:02d}", []) for i in range(PAGE_SIZE)]  # with admin: 21
    connect(tab, server)

    first = tab.roles.on_refresh(PageState(), REQUEST)
    assert names(first[tab.roles.table]) == ["admin", *sorted(made)[: PAGE_SIZE - 1]]
    assert first[tab.roles.next] == gr.update(interactive=True)
    assert first[tab.roles.previous] == gr.update(interactive=False)

    second = tab.roles.on_next(first[tab.roles.state], REQUEST)
    assert names(second[tab.roles.table]) == [sorted(made)[-1]]
    assert second[tab.roles.page_label] == "Page 2"
    assert second[tab.roles.next] == gr.update(interactive=False)
    assert second[tab.roles.previous] == gr.update(interactive=True)

    back = tab.roles.on_previous(second[tab.roles.state], REQUEST)
    assert names(back[tab.roles.table]) == names(first[tab.roles.table])
    assert back[tab.roles.page_label] == "Page 1"

    # Deleting the only row of page 2 there falls back to page 1, which now is all there is.
    emptied = tab.roles.on_confirm_delete(
        sorted(made)[-1], second[tab.roles.state], second[tab.roles.items], REQUEST
    )
    assert f"Deleted role {sorted(made)[-1]}." in emptied[tab.roles.status]
    assert emptied[tab.roles.page_label] == "Page 1"
    assert len(cells(emptied[tab.roles.table])) == PAGE_SIZE
    assert emptied[tab.roles.next] == gr.update(interactive=False)


def test_create_user_clears_the_password_field_and_the_user_can_sign_in(server, tab):
    connect(tab, server)
    name, password = "carol-" + server.username, "carol's pass 1!"

    updates = tab.users.on_create(name, password, ["admin"], PageState(), REQUEST)

    assert updates[tab.users.password] == ""
    assert f"Created user {name}." in updates[tab.users.status]
    assert name in names(updates[tab.users.table])
    assert not secrets_shown(updates, password)
    with server.client() as carol:
        carol.login(name, password)
        assert carol.permissions == list(PERMISSIONS)


def test_a_refused_user_also_clears_the_password_field(server, tab):
    connect(tab, server)

    updates = tab.users.on_create("admin", "another pass 1!", [], PageState(), REQUEST)

    assert updates[tab.users.password] == ""
    assert "Error:" in updates[tab.users.status]


def test_update_roles_and_set_password_reach_the_server(server, tab):
    artists = server.add_role("artists", ["inference:all"])
    dave = server.add_user("dave", [])
    connect(tab, server)

    roles = tab.users.on_update_roles(dave.username, [artists], PageState(), REQUEST)
    assert f"Updated the roles of user {dave.username}." in roles[tab.users.status]
    row = next(row for row in cells(roles[tab.users.table]) if row[0] == dave.username)
    assert row[1:3] == [artists, "inference:all"]

    new_password = "dave's new pass 1!"
    changed = tab.users.on_set_password(dave.username, new_password, PageState(), REQUEST)
    assert f"Set a new password for user {dave.username}." in changed[tab.users.status]
    assert changed[tab.users.password] == ""
    assert not secrets_shown(changed, new_password)
    with server.client() as client:
        client.login(dave.username, new_password)
        assert client.permissions == ["inference:all"]


def test_delete_asks_first_and_cancel_deletes_nothing(server, tab):
    name = server.add_role("artists", [])
    connect(tab, server)

    asked = tab.roles.on_delete(name, [])
    assert visible(asked[tab.roles.confirm_row]) is True
    assert asked[tab.roles.pending] == name
    assert name in asked[tab.roles.confirm_text]

    cancelled = tab.roles.on_cancel()
    assert visible(cancelled[tab.roles.confirm_row]) is False
    assert name in server.role_names()


def test_confirmed_delete_deletes_and_refreshes(server, tab):
    name = server.add_role("artists", [])
    eve = server.add_user("eve", [])
    connect(tab, server)

    roles = tab.roles.on_confirm_delete(name, PageState(), [], REQUEST)
    users = tab.users.on_confirm_delete(eve.username, PageState(), [], REQUEST)

    assert f"Deleted role {name}." in roles[tab.roles.status]
    assert visible(roles[tab.roles.confirm_row]) is False
    assert names(roles[tab.roles.table]) == ["admin"]
    assert server.role_names() == ["admin"]
    assert f"Deleted user {eve.username}." in users[tab.users.status]
    assert eve.username not in names(users[tab.users.table])
    assert eve.username not in server.usernames()


def test_an_expired_session_during_an_action_signs_the_user_out_here(server, tab, ui_context):
    connect(tab, server)
    server.sign_out_elsewhere(server.login)  # access and refresh token are void now

    updates = tab.roles.on_refresh(PageState(), REQUEST)

    assert "sign in again" in updates[tab.roles.status]
    assert ui_context.store.user_session("") is None


def test_selecting_a_row_fills_the_form(tab):
    items = [{"name": "artists", "permissions": ["inference:all", "unknown:perm"]}]
    event = SimpleNamespace(index=[0, 1])

    updates = tab.roles.on_select(items, event)

    assert updates == {tab.roles.name: "artists", tab.roles.permissions: ["inference:all"]}
