"""The signed-in API client of a WebUI user for code outside the tab (the txt2img script).

The tab keeps its clients in its own `UserSessions`; the script cannot reach them, so it
keeps its own, resumed from the same settings file, and checks that file on every use: a
user who signed out in the tab is signed out here too, and one who signed in again (maybe
as another middleware user) gets a client for the new session. Refresh tokens are not
rotated by the server, so two clients of one session do not disturb each other.
"""

from __future__ import annotations

from aws_extension.client.api import ApiClient
from aws_extension.ui.context import UiContext
from aws_extension.ui.sessions import CONNECT_HINT, SignedOut, UserSessions


class ScriptSessions:
    """Clients per WebUI user, for the life of one script object (one UI build)."""

    def __init__(self, context: UiContext) -> None:
        self._store = context.store
        self._sessions = UserSessions(context)

    def client(self, user: str) -> ApiClient:
        """The client of `user` (the gradio login name, "" without logins).

        Raises `SignedOut` when the tab holds no session for the user, `NotAuthenticated`
        when the server no longer honours it, and the client's errors when it cannot be
        reached.
        """
        saved = self._store.user_session(user)
        if self._store.connection() is None or saved is None:
            raise SignedOut(
                "Not signed in to Amazon SageMaker: open the Amazon SageMaker tab and "
                + CONNECT_HINT
            )
        client = self._sessions.client(user)
        if client.refresh_token != saved.refresh_token:
            client = self._sessions.resume(user)
        return client

    def note_failure(self, user: str, exc: Exception) -> None:
        """Forget the user's session when `exc` says the server ended it."""
        self._sessions.note_failure(user, exc)
