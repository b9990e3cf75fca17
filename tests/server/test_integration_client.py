"""The extension's real API client against the real local stack, over real HTTP.

The two halves are written apart (client: requests, pydantic-free; middleware: FastAPI);
this is where they must agree on paths, bodies, status codes and error codes.
"""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.contract import API_VERSION, PERMISSIONS
from tests.server.stack import Stack

pytestmark = pytest.mark.integration

OPTIONS = ClientOptions(timeout=10, connect_timeout=5, retries=0)
ANN_PASSWORD = "ann's pass 1!"


def test_connect_sign_in_manage_and_sign_out(
    tmp_path: Path, launch: Callable[[Path], Stack]
) -> None:
    stack = launch(tmp_path / "state")
    admin_password = stack.field("Password:")
    assert admin_password

    with ApiClient(stack.url, "not-the-token", options=OPTIONS) as stranger:
        with pytest.raises(errors.InvalidApiToken) as refused:
            stranger.ping()
        assert refused.value.code == "invalid_api_key"

    sessions: list[dict] = []
    keep = sessions.append
    with ApiClient(stack.url, stack.api_token, options=OPTIONS, on_session=keep) as admin:
        assert admin.ping()["api_version"] == API_VERSION
        with pytest.raises(errors.WrongCredentials):
            admin.login("admin", "not the password")
        admin.login("admin", admin_password)
        assert admin.username == "admin"
        assert admin.permissions == list(PERMISSIONS)
        assert len(sessions) == 1

        role = admin.create_role("artist", ["inference:all"])
        assert role["permissions"] == ["inference:all"]
        user = admin.create_user("ann", ANN_PASSWORD, ["artist"])
        assert user["permissions"] == ["inference:all"]
        with pytest.raises(errors.Conflict):
            admin.create_user("ann", ANN_PASSWORD, [])
        first = admin.list_users(limit=1)
        assert [u["username"] for u in first.items] == ["admin"]
        second = admin.list_users(limit=1, cursor=first.next_cursor)
        assert [u["username"] for u in second.items] == ["ann"]
        assert second.next_cursor is None
        assert [r["name"] for r in admin.list_roles().items] == ["admin", "artist"]

    with ApiClient(stack.url, stack.api_token, options=OPTIONS) as ann:
        ann.login("ann", ANN_PASSWORD)
        assert ann.me()["permissions"] == ["inference:all"]
        with pytest.raises(errors.PermissionDenied) as denied:
            ann.list_users()
        assert (denied.value.status, denied.value.code) == (403, "permission_denied")
        with pytest.raises(errors.PermissionDenied):
            ann.create_role("mine", ["inference:all"])
        refresh_token = ann.refresh_token
        ann.logout()
        assert not ann.signed_in

    # Sign-out revoked the refresh token on the server, not only in that client.
    old = ApiClient(stack.url, stack.api_token, options=OPTIONS, refresh_token=refresh_token)
    with old, pytest.raises(errors.NotAuthenticated):
        old.me()

    assert stack.stop(signal.SIGINT) == 0
    assert "Traceback" not in stack.output
