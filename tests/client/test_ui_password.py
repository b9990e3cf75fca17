"""Change my password, in the API and User Settings sub-tab, against the real middleware.

The local stack tells its admin to change the printed password here: the change must reach
the server, keep this WebUI signed in across a restart (the new refresh token is saved),
end the old sessions, and never leave a password on the page.
"""

from __future__ import annotations

import pytest

from aws_extension.client.errors import NotAuthenticated, WrongCredentials
from tests.client.tab_support import REQUEST, build, connect, secrets_shown, visible

NEW_PASSWORD = "a new pass phrase 42"


def test_every_signed_in_user_gets_the_form(server, tab):
    artists = server.add_role("artists", ["inference:all"])
    ann = server.add_user("ann", [artists])

    updates = connect(tab, server, username=ann.username, password=ann.password)

    assert visible(updates[tab.password.panel]) is True
    assert visible(tab.connection.on_sign_out(REQUEST)[tab.password.panel]) is False


def test_the_password_is_changed_and_this_webui_stays_signed_in(server, tab, ui_context):
    connect(tab, server)
    old_refresh = ui_context.store.user_session("").refresh_token

    updates = tab.password.on_change(server.password, NEW_PASSWORD, NEW_PASSWORD, REQUEST)

    p = tab.password
    assert "Your password was changed." in updates[p.status]
    assert (updates[p.current], updates[p.new], updates[p.repeat]) == ("", "", "")
    assert not secrets_shown(updates, server.password, NEW_PASSWORD)
    saved = ui_context.store.user_session("")
    assert saved.refresh_token != old_refresh
    with server.client(refresh_token=old_refresh) as old, pytest.raises(NotAuthenticated):
        old.refresh()
    with server.client() as client:
        client.login(server.username, NEW_PASSWORD)
        with pytest.raises(WrongCredentials):
            client.login(server.username, server.password)
    # A restarted WebUI resumes from the saved session.
    fresh = build(ui_context)
    restarted = fresh.connection.on_load(REQUEST)
    assert f"Signed in as <b>{server.username}</b>" in restarted[fresh.connection.status]
    # The same tab keeps working with the new tokens.
    assert "Error" not in tab.roles.on_refresh(tab.roles.state.value, REQUEST)[tab.roles.status]


@pytest.mark.parametrize(
    ("current", "new", "repeat", "words"),
    [
        ("", NEW_PASSWORD, NEW_PASSWORD, "Enter your current password."),
        ("x", "", "", "Enter the new password."),
        ("x", NEW_PASSWORD, NEW_PASSWORD + "!", "its repetition differ"),
        ("x", "short", "short", "must have 8 to 256 characters"),
    ],
)
def test_mistakes_are_said_before_asking_the_server(server, tab, current, new, repeat, words):
    connect(tab, server)

    updates = tab.password.on_change(current, new, repeat, REQUEST)

    assert words in updates[tab.password.status]
    assert updates[tab.password.new] == ""
    with server.client() as client:
        client.login(server.username, server.password)  # unchanged


def test_a_wrong_current_password_is_refused_in_words(server, tab):
    connect(tab, server)

    updates = tab.password.on_change("not my password", NEW_PASSWORD, NEW_PASSWORD, REQUEST)

    assert "Error:" in updates[tab.password.status]
    assert "current password" in updates[tab.password.status].lower()
    assert (updates[tab.password.current], updates[tab.password.new]) == ("", "")
    with server.client() as client:
        client.login(server.username, server.password)
