"""The signed-in API client of each WebUI user, and how it is made, resumed and ended.

Only what survives a restart goes to the settings store: the API URL and token for the
whole WebUI, and per WebUI user the middleware username and refresh token. The password is
used for one sign-in and dropped; the access token lives only in the client in memory.
"""

from __future__ import annotations

import threading

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError, NotAuthenticated
from aws_extension.contract import ERROR_INVALID_TOKEN, ERROR_NOT_AUTHENTICATED
from aws_extension.ui.context import UiContext
from aws_extension.ui.feedback import UiError

CONNECT_HINT = (
    "enter the API URL, API token, username and password, "
    "then click Test Connection & Update Setting."
)


class SignedOut(UiError):
    """The WebUI user has no usable session; the message says how to get one."""


def session_ended(exc: Exception) -> bool:
    """Whether `exc` says the server no longer honours the session: a `NotAuthenticated`, or
    an error that carries its code (the uploader's `UploadFailed` wraps the cause's code)."""
    return isinstance(exc, NotAuthenticated) or (
        isinstance(exc, ApiError) and exc.code in (ERROR_NOT_AUTHENTICATED, ERROR_INVALID_TOKEN)
    )


class UserSessions:
    """Clients per WebUI user, for the life of one built tab.

    One object per tab rather than a module global, so a UI reload starts clean and tests
    stay apart. Gradio runs handlers in worker threads, hence the lock around the dict.
    """

    def __init__(self, context: UiContext) -> None:
        self._context = context
        self._clients: dict[str, ApiClient] = {}
        self._lock = threading.Lock()

    def client(self, user: str) -> ApiClient:
        """The user's client; after a restart it is resumed from the stored refresh token."""
        with self._lock:
            client = self._clients.get(user)
        return client if client is not None else self.resume(user)

    def check(self, user: str) -> ApiClient:
        """The user's client, confirmed with the server now (when a page loads).

        A client kept from earlier asks for the profile, which also brings its permissions up
        to date; otherwise the stored session is resumed.
        """
        with self._lock:
            client = self._clients.get(user)
        if client is None:
            return self.resume(user)
        try:
            client.me()
        except NotAuthenticated:
            self.forget(user)
            raise
        return client

    def resume(self, user: str) -> ApiClient:
        """Sign in again without the password by refreshing the stored session.

        A refused refresh token is forgotten, so the next page load does not try it again;
        other failures (server down) keep it for when the server is back.
        """
        store = self._context.store
        connection = store.connection()
        if connection is None:
            raise SignedOut(f"No API is configured yet: {CONNECT_HINT}")
        saved = store.user_session(user)
        if saved is None:
            raise SignedOut(f"Not signed in: {CONNECT_HINT}")
        client = self._new_client(
            user, connection.api_url, connection.api_token, refresh_token=saved.refresh_token
        )
        try:
            client.refresh()
        except NotAuthenticated:
            client.close()
            store.clear_user_session(user)
            raise
        self._install(user, client)
        return client

    def connect(
        self, user: str, api_url: str, api_token: str, username: str, password: str
    ) -> ApiClient:
        """Check the API and sign in; save the connection and session only if both work.

        An empty token means "keep the saved one", so the token never has to travel back to
        the page to be edited.
        """
        if not username.strip():
            raise UiError("Enter the username to sign in with.")
        if not password:
            raise UiError("Enter the password of that user.")
        store = self._context.store
        saved = store.connection()
        token = api_token.strip() or (saved.api_token if saved else "")
        client = self._new_client(user, api_url, token)
        try:
            client.ping()
            client.login(username.strip(), password)
        except Exception:
            client.close()
            raise
        changed = saved is None or (saved.api_url, saved.api_token) != (client.api_url, token)
        store.save_connection(client.api_url, token)
        store.save_user_session(user, client.username or username.strip(), client.refresh_token)
        if changed:
            # Other users' clients carry the old URL or token: let them resume from the store.
            self._drop_all()
        self._install(user, client)
        return client

    def sign_out(self, user: str) -> None:
        """Forget the user's session here, then revoke it on the server.

        Forgetting comes first so that a server that cannot be reached still leaves the user
        signed out on this WebUI; the ApiError of the failed revocation is raised after.
        """
        with self._lock:
            client = self._clients.pop(user, None)
        store = self._context.store
        saved = store.user_session(user)
        connection = store.connection()
        store.clear_user_session(user)
        if client is None and saved is not None and connection is not None:
            client = self._new_client(
                user, connection.api_url, connection.api_token, refresh_token=saved.refresh_token
            )
        if client is None:
            return
        try:
            client.logout()
        finally:
            client.close()

    def note_failure(self, user: str, exc: Exception) -> None:
        """Forget the user's session when a call failed because the server ended it.

        Every handler calls this with what it caught, so the next page load says "signed
        out" instead of trying the dead session again.
        """
        if session_ended(exc):
            self.forget(user)

    def forget(self, user: str) -> None:
        """Drop a session the server no longer honours (a call raised NotAuthenticated)."""
        with self._lock:
            client = self._clients.pop(user, None)
        if client is not None:
            client.close()
        self._context.store.clear_user_session(user)

    def _new_client(
        self, user: str, api_url: str, api_token: str, refresh_token: str | None = None
    ) -> ApiClient:
        client: ApiClient | None = None

        def remember(_session: dict) -> None:
            if client is not None:
                self._remember(user, client)

        client = ApiClient(
            api_url,
            api_token,
            options=self._context.client_options(),
            refresh_token=refresh_token,
            on_session=remember,
        )
        return client

    def _remember(self, user: str, client: ApiClient) -> None:
        """Persist a refresh token the server replaced (a password change issues a new one).

        Only for the client in use: the one being tried in `connect` saves when it succeeded.
        """
        with self._lock:
            if self._clients.get(user) is not client:
                return
        store = self._context.store
        saved = store.user_session(user)
        username, refresh_token = client.username, client.refresh_token
        if not (username and refresh_token):
            return
        if saved is None or (saved.username, saved.refresh_token) != (username, refresh_token):
            store.save_user_session(user, username, refresh_token)

    def _install(self, user: str, client: ApiClient) -> None:
        with self._lock:
            old = self._clients.get(user)
            self._clients[user] = client
        if old is not None and old is not client:
            old.close()

    def _drop_all(self) -> None:
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()
