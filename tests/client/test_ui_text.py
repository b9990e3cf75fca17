"""What the tab writes: escaped status lines and readable table cells."""

from __future__ import annotations

from aws_extension.ui.feedback import escape, failure, permission_words
from aws_extension.ui.tables import ROLE_HEADERS, USER_HEADERS, role_rows, table, user_rows, when


def test_text_from_outside_cannot_become_html():
    shown = escape('<img src=x onerror=alert(1)> & "quoted"')

    assert shown == "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;"


def test_a_failure_shows_the_errors_own_sentence_escaped():
    assert failure(ValueError("No role named '<x>'.")) == (
        '<span class="sagemaker-error">Error: No role named &#x27;&lt;x&gt;&#x27;.</span>'
    )


def test_permissions_are_named_in_the_contracts_order():
    assert permission_words(["inference:all", "role:all", "custom:x"]) == (
        "role:all (manage roles), inference:all (run inference), custom:x"
    )
    assert permission_words([]) == "none"


def test_rows_of_roles_and_users():
    role = {
        "name": "artists",
        "permissions": ["inference:all"],
        "created_by": "admin",
        "created_at": "2024-05-01T12:30:00+00:00",
    }
    user = {
        "username": "carol",
        "roles": ["artists", "trainers"],
        "permissions": ["inference:all", "train:all"],
        "created_by": "admin",
        "created_at": "2024-05-01T14:30:00+02:00",
    }

    assert role_rows([role]) == [["artists", "inference:all", "admin", "2024-05-01 12:30 UTC"]]
    assert user_rows([user]) == [
        [
            "carol",
            "artists, trainers",
            "inference:all, train:all",
            "admin",
            "2024-05-01 12:30 UTC",
        ]
    ]
    assert len(ROLE_HEADERS) == len(role_rows([role])[0])
    assert len(USER_HEADERS) == len(user_rows([user])[0])


def test_odd_timestamps_are_shown_as_they_came():
    assert when("yesterday") == "yesterday"
    assert when(None) == ""


def test_an_empty_table_keeps_its_headers():
    assert table(ROLE_HEADERS, []) == {"headers": ROLE_HEADERS, "data": []}
