"""Typed REST client of the sd-webui-sagemaker API (contract v1, docs/architecture.md).

Runs inside the WebUI's process, so it needs only `requests` and the standard library. What it
takes care of so that the tab does not have to:

- one `requests.Session` (connection reuse to API Gateway matters: TLS handshakes are slow);
- the `x-api-key` header on every call, `Authorization: Bearer` once signed in;
- a `(connect, read)` timeout on every call, because a WebUI thread must never hang forever;
- retries with exponential backoff and jitter, only where repeating cannot do harm (idempotent
  methods) and only for failures that may pass (connection errors, 429/502/503/504);
- one silent token refresh when the access token expired (they live 15 minutes), so a user
  who signed in yesterday is not asked for a password again;
- turning every failure into an `errors.ApiError` subclass whose message a user can act on,
  without ever showing a secret.
"""

from __future__ import annotations

import email.utils
import errno
import logging
import random
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from ipaddress import ip_address
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from aws_extension import __version__, contract
from aws_extension.client import errors

log = logging.getLogger(__name__)

#: Methods that may be repeated without changing the outcome (RFC 9110 section 9.2.2).
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE"})
#: Statuses that say "try again later" rather than "this request is wrong".
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: Longest Retry-After the client waits for by itself, in seconds. A longer wait is the user's
#: call: the error (TooManyAttempts.retry_after) tells the tab how long.
MAX_RETRY_AFTER = 10.0
#: Largest image `download_image` accepts: far above any generated PNG, so only a wrong URL
#: (or a hostile server) reaches it, and memory stays bounded.
MAX_IMAGE_BYTES = 256 * 1024 * 1024
#: How much of the server's detail goes into a message; details are meant to be short.
_MAX_DETAIL = 500

_HOST_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST_RE = re.compile(rf"^{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?$")
# An API token travels in a header: printable ASCII, no spaces.
_TOKEN_RE = re.compile(r"^[\x21-\x7e]+$")


@dataclass(frozen=True)
class ClientOptions:
    """Network behaviour; the tab fills `timeout` from the WebUI's settings."""

    timeout: float = 30.0
    connect_timeout: float = 5.0
    retries: int = 3
    backoff: float = 0.5


@dataclass(frozen=True)
class _CallExtras:
    """What one call adds to the client's defaults: headers, a longer read timeout."""

    headers: dict[str, str]
    read_timeout: float | None


@dataclass
class Page:
    """One page of a list; pass `next_cursor` back to get the next one (None: last page)."""

    items: list[dict]
    next_cursor: str | None


def normalise_api_url(url: str) -> str:
    """Check an API URL as a user pasted it and return it without trailing slashes.

    Exposed so the tab can validate the field before saving. The path is kept, because API
    Gateway URLs carry their stage there (`https://x.execute-api.region.amazonaws.com/prod`).
    Raises `errors.InvalidUrl` with a message that says how to fix the URL.
    """
    text = url.strip() if isinstance(url, str) else ""
    if not text:
        raise errors.InvalidUrl(
            "The API URL is empty: paste the API URL from the stack's outputs "
            "(or the one the local stack printed at start)."
        )
    shown = text if len(text) <= 200 else text[:200] + "..."
    if any(ch.isspace() for ch in text):
        raise errors.InvalidUrl(
            f"The API URL {shown!r} contains spaces: paste it again without them."
        )
    if "://" not in text:
        raise errors.InvalidUrl(
            f"The API URL {shown!r} has no scheme: it must start with https:// "
            f"(or http:// for the local stack), for example https://{shown}"
        )
    parts = urlsplit(text)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise errors.InvalidUrl(
            f"The API URL must start with https:// or http://, not {parts.scheme}://."
        )
    if "@" in parts.netloc:
        # Not echoed: whatever precedes the @ may be a password.
        raise errors.InvalidUrl(
            "The API URL must not contain a user name or password (the part before '@'): "
            "the API token goes in its own field."
        )
    host = parts.hostname or ""
    if not host:
        raise errors.InvalidUrl(f"The API URL {shown!r} has no host name after {scheme}://.")
    if not _valid_host(host):
        raise errors.InvalidUrl(f"The API URL {shown!r} has an invalid host name {host!r}.")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise errors.InvalidUrl(
            f"The API URL {shown!r} has an invalid port: use a number from 1 to 65535."
        )
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise errors.InvalidUrl(
            f"The API URL {shown!r} must not contain '?' or '#': use only the base URL."
        )
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _valid_host(host: str) -> bool:
    if ":" in host:  # IPv6 literal, written in brackets in the URL
        try:
            ip_address(host.split("%", 1)[0])
        except ValueError:
            return False
        return True
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    return bool(_HOST_RE.match(ascii_host))


def _check_api_token(api_token: str) -> str:
    token = api_token.strip() if isinstance(api_token, str) else ""
    # The token is never echoed, not even in part.
    if not token:
        raise errors.InvalidApiToken(
            "The API token is empty: paste the API token from the stack's outputs "
            "(or the one the local stack printed at its first start)."
        )
    if not _TOKEN_RE.match(token):
        raise errors.InvalidApiToken(
            "The API token contains spaces, line breaks or non-ASCII characters, which an "
            "API token never has: paste it again."
        )
    return token


def _segment(value: str, what: str) -> str:
    """URL-quote one path segment; refuse names that would change the path's meaning."""
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise errors.InvalidRequest(f"{value!r} is not a valid {what}: choose or type one first.")
    return quote(value, safe="")


class ApiClient:
    """Client of one sd-webui-sagemaker API for one (possibly not yet signed-in) user.

    Give `refresh_token` (kept by the settings store) to resume a session without asking for
    the password: the first call that needs it refreshes silently. `on_session` receives each
    new Session (login, refresh, password change) so the caller can persist its refresh token;
    when a call raises `NotAuthenticated` the session is over and the stored refresh token
    should be forgotten. `session` lets the caller bring its own `requests.Session` (proxies,
    a CA bundle); the client then leaves it open on `close()`. `sleep` waits between retries
    (tests pass a recorder).

    An instance may be shared by the threads of the WebUI; token refreshes are serialised.
    """

    def __init__(
        self,
        api_url: str,
        api_token: str,
        *,
        options: ClientOptions | None = None,
        refresh_token: str | None = None,
        on_session: Callable[[dict], None] | None = None,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        try:
            self._api_url = normalise_api_url(api_url)
        except errors.InvalidUrl as exc:
            # The user may have pasted the token into the URL field.
            raise exc.redacted([api_token, refresh_token]) from None
        self._api_token = _check_api_token(api_token)
        self._options = options or ClientOptions()
        self._refresh_token = refresh_token or None
        self._access_token: str | None = None
        self._user: dict = {}
        self._on_session = on_session
        self._owns_session = session is None
        self._session = session if session is not None else requests.Session()
        self._sleep = sleep
        self._refresh_lock = threading.Lock()
        parts = urlsplit(self._api_url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname or ""
        self._where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self._user_agent = f"sd-webui-sagemaker/{__version__} requests/{requests.__version__}"

    # -- state -----------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self._api_url

    @property
    def username(self) -> str | None:
        """Name of the signed-in user, from the last Session or `me()` reply."""
        return self._user.get("username")

    @property
    def permissions(self) -> list[str]:
        return list(self._user.get("permissions") or [])

    @property
    def refresh_token(self) -> str | None:
        return self._refresh_token

    @property
    def signed_in(self) -> bool:
        """True while the client holds a token that may still sign its calls."""
        return bool(self._access_token or self._refresh_token)

    def __repr__(self) -> str:
        return f"ApiClient(api_url={self._api_url!r}, username={self.username!r})"

    def close(self) -> None:
        """Release the connections (only when the client created its own session)."""
        if self._owns_session:
            self._session.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- service -------------------------------------------------------------------------

    def ping(self) -> dict:
        """Check that the URL is this API, with a compatible version, and the API token works."""
        data = self._call("GET", "/ping", auth=False)
        version = data.get("api_version") if isinstance(data, dict) else None
        if (
            not isinstance(data, dict)
            or data.get("message") != "pong"
            or not isinstance(version, str)
        ):
            raise errors.IncompatibleServer(
                f"{self._api_url} answered /ping, but not like the sd-webui-sagemaker API. "
                "Check the API URL (copy it from the stack's outputs, with its stage such as "
                "/prod)."
            )
        ours = contract.api_major(contract.API_VERSION)
        try:
            theirs = contract.api_major(version)
        except ValueError:
            theirs = None
        if theirs != ours:
            advice = (
                "update this extension"
                if theirs is not None and theirs > ours
                else "update the middleware (redeploy the stack, or restart the local stack "
                "from this version)"
            )
            raise errors.IncompatibleServer(
                f"The server at {self._api_url} speaks API version {version}, but this extension "
                f"speaks {contract.API_VERSION}: {advice}."
            )
        return data

    # -- sessions ------------------------------------------------------------------------

    def login(self, username: str, password: str) -> dict:
        """Sign in; returns the Session (tokens, user). Never retried: sign-ins are counted."""
        data = self._call(
            "POST",
            "/auth/login",
            body={"username": username, "password": password},
            auth=False,
            secrets=(password,),
        )
        return self._accept_session(data)

    def refresh(self) -> dict:
        """Trade the refresh token for a new access token; returns the Session."""
        if not self._refresh_token:
            raise errors.NotAuthenticated("You are not signed in: sign in first.")
        try:
            data = self._call(
                "POST", "/auth/refresh", body={"refresh_token": self._refresh_token}, auth=False
            )
        except (errors.NotAuthenticated, errors.InvalidRequest) as exc:
            # The refresh token itself is expired, revoked or malformed: the session is over.
            self._forget_tokens()
            raise errors.NotAuthenticated(
                "Your session has expired or was revoked: sign in again.",
                status=exc.status,
                code=exc.code,
            ) from None
        return self._accept_session(data)

    def logout(self) -> None:
        """Revoke every token of the user on the server and forget them here.

        The local tokens are forgotten whatever happens, because the user asked to be signed
        out. A 401 means the server no longer honours them anyway, so it is not an error;
        other failures are raised so the tab can say the server could not be told.
        """
        if not self.signed_in:
            return
        try:
            self._call("POST", "/auth/logout")
        except errors.NotAuthenticated:
            pass
        finally:
            self._forget_tokens()

    def me(self) -> dict:
        """The signed-in user's profile; also refreshes `username` and `permissions`."""
        user = self._call("GET", "/me")
        self._user = self._expect_dict(user, "GET /me")
        return user

    def change_password(self, current_password: str, new_password: str) -> dict:
        """Change one's own password; the server revokes the old tokens and sends a Session.

        Not retried although PUT: if a first attempt went through and only its answer was
        lost, the repeat would fail on the revoked token or the now wrong current password.
        """
        data = self._call(
            "PUT",
            "/me/password",
            body={"current_password": current_password, "new_password": new_password},
            secrets=(current_password, new_password),
            retry=False,
        )
        return self._accept_session(data)

    # -- roles ---------------------------------------------------------------------------

    def list_roles(self, limit: int = 50, cursor: str | None = None) -> Page:
        return self._page("/roles", limit, cursor)

    def get_role(self, name: str) -> dict:
        return self._call("GET", f"/roles/{_segment(name, 'role name')}")

    def create_role(self, name: str, permissions: Iterable[str]) -> dict:
        return self._call("POST", "/roles", body={"name": name, "permissions": list(permissions)})

    def update_role(self, name: str, permissions: Iterable[str]) -> dict:
        return self._call(
            "PUT",
            f"/roles/{_segment(name, 'role name')}",
            body={"permissions": list(permissions)},
        )

    def delete_role(self, name: str) -> None:
        self._call("DELETE", f"/roles/{_segment(name, 'role name')}")

    # -- users ---------------------------------------------------------------------------

    def list_users(self, limit: int = 50, cursor: str | None = None) -> Page:
        return self._page("/users", limit, cursor)

    def get_user(self, username: str) -> dict:
        return self._call("GET", f"/users/{_segment(username, 'username')}")

    def create_user(self, username: str, password: str, roles: Iterable[str]) -> dict:
        return self._call(
            "POST",
            "/users",
            body={"username": username, "password": password, "roles": list(roles)},
            secrets=(password,),
        )

    def update_user(
        self,
        username: str,
        *,
        roles: Iterable[str] | None = None,
        password: str | None = None,
    ) -> dict:
        """Change a user's roles and/or password; what is left None stays as it is."""
        body: dict[str, Any] = {}
        if roles is not None:
            body["roles"] = list(roles)
        if password is not None:
            body["password"] = password
        if not body:
            raise ValueError("update_user needs roles or password")
        return self._call(
            "PUT",
            f"/users/{_segment(username, 'username')}",
            body=body,
            secrets=(password,),
        )

    def delete_user(self, username: str) -> None:
        self._call("DELETE", f"/users/{_segment(username, 'username')}")

    # -- checkpoints (models) --------------------------------------------------------------

    def create_checkpoint(
        self,
        name: str,
        type: str,
        size: int,
        sha256: str | None = None,
        allowed_roles: Iterable[str] | None = None,
    ) -> dict:
        """Start uploading a model; returns `{"checkpoint", "upload"}` with the part URLs.

        Not retried: a repeat after a lost answer would find the name taken by the first
        attempt. With `sha256`, a model of that type and content already `Active` raises
        `DuplicateContent` naming it, so the caller can skip the upload.
        """
        body: dict[str, Any] = {"name": name, "type": type, "size": size}
        if sha256 is not None:
            body["sha256"] = sha256
        if allowed_roles is not None:
            body["allowed_roles"] = list(allowed_roles)
        data = self._call("POST", "/checkpoints", body=body)
        return self._expect_dict(data, "POST /checkpoints")

    def checkpoint_parts(self, checkpoint_id: str, part_numbers: Iterable[int]) -> dict:
        """Fresh URLs for some parts of an upload: `{"parts": [...], "expires_at"}`.

        Retried like a GET: signing URLs changes nothing on the server.
        """
        path = f"/checkpoints/{_segment(checkpoint_id, 'model id')}/parts"
        data = self._call("POST", path, body={"part_numbers": list(part_numbers)}, idempotent=True)
        return self._expect_dict(data, f"POST {path}")

    def complete_checkpoint(
        self, checkpoint_id: str, parts: Iterable[tuple[int, str]], sha256: str | None = None
    ) -> dict:
        """Join the uploaded parts `(part_number, etag)`; returns the `Active` checkpoint.

        Not retried: a second completion is refused once the first went through. After a
        lost answer, `get_checkpoint` tells whether it did.
        """
        body: dict[str, Any] = {
            "parts": [{"part_number": n, "etag": etag} for n, etag in sorted(parts)]
        }
        if sha256 is not None:
            body["sha256"] = sha256
        path = f"/checkpoints/{_segment(checkpoint_id, 'model id')}/complete"
        return self._expect_dict(self._call("POST", path, body=body), f"POST {path}")

    def abort_checkpoint(self, checkpoint_id: str) -> None:
        """Give up an upload and drop its parts. Retried: aborting twice aborts once."""
        path = f"/checkpoints/{_segment(checkpoint_id, 'model id')}/abort"
        self._call("POST", path, idempotent=True)

    def list_checkpoints(
        self,
        type: str | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page:
        filters = {"type": type, "status": status, "name": name}
        return self._page("/checkpoints", limit, cursor, filters)

    def get_checkpoint(self, checkpoint_id: str) -> dict:
        return self._call("GET", f"/checkpoints/{_segment(checkpoint_id, 'model id')}")

    def update_checkpoint(
        self,
        checkpoint_id: str,
        *,
        name: str | None = None,
        allowed_roles: Iterable[str] | None = None,
    ) -> dict:
        """Rename a model and/or change who may use it; what is left None stays as it is."""
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if allowed_roles is not None:
            body["allowed_roles"] = list(allowed_roles)
        if not body:
            raise ValueError("update_checkpoint needs name or allowed_roles")
        return self._call("PATCH", f"/checkpoints/{_segment(checkpoint_id, 'model id')}", body=body)

    def delete_checkpoint(self, checkpoint_id: str) -> None:
        self._call("DELETE", f"/checkpoints/{_segment(checkpoint_id, 'model id')}")

    def import_checkpoint(
        self,
        url: str,
        type: str,
        name: str | None = None,
        allowed_roles: Iterable[str] | None = None,
    ) -> dict:
        """Have the server download a model from `url`; returns the `Importing` checkpoint.

        Not retried: each call starts a download.
        """
        body: dict[str, Any] = {"url": url, "type": type}
        if name is not None:
            body["name"] = name
        if allowed_roles is not None:
            body["allowed_roles"] = list(allowed_roles)
        return self._expect_dict(
            self._call("POST", "/checkpoints/import", body=body), "POST /checkpoints/import"
        )

    # -- endpoints -------------------------------------------------------------------------

    def list_endpoints(self, limit: int = 50, cursor: str | None = None) -> Page:
        """The endpoints the user may see (their allowed roles), by name."""
        return self._page("/endpoints", limit, cursor)

    def get_endpoint(self, name: str) -> dict:
        """One endpoint, its status refreshed by the server."""
        data = self._call("GET", f"/endpoints/{_segment(name, 'endpoint name')}")
        return self._expect_dict(data, "GET /endpoints/{name}")

    def create_endpoint(
        self,
        *,
        instance_type: str,
        name: str | None = None,
        type: str | None = None,
        initial_instance_count: int | None = None,
        autoscaling: dict[str, int] | None = None,
        concurrency_per_instance: int | None = None,
        allowed_roles: Iterable[str] | None = None,
        engine: str | None = None,
        webui_url: str | None = None,
        webui_models_dir: str | None = None,
    ) -> dict:
        """Deploy an endpoint; returns it `Creating`. What is left None takes the server's
        default (a generated name, async, one instance, no autoscaling, diffusers).

        Not retried: a repeat after a lost answer would find the name taken by the first
        attempt (or deploy a second endpoint, when the server picked the name).
        """
        given: dict[str, Any] = {
            "name": name,
            "type": type,
            "instance_type": instance_type,
            "initial_instance_count": initial_instance_count,
            "autoscaling": autoscaling,
            "concurrency_per_instance": concurrency_per_instance,
            "allowed_roles": list(allowed_roles) if allowed_roles is not None else None,
            "engine": engine,
            "webui_url": webui_url,
            "webui_models_dir": webui_models_dir,
        }
        body = {key: value for key, value in given.items() if value is not None}
        return self._expect_dict(self._call("POST", "/endpoints", body=body), "POST /endpoints")

    def delete_endpoint(self, name: str) -> None:
        """Remove an endpoint and what runs it; its queued and running jobs fail."""
        self._call("DELETE", f"/endpoints/{_segment(name, 'endpoint name')}")

    def instance_types(self) -> list[str]:
        """The instance types the deployment offers for new endpoints (the deploy form's)."""
        data = self._call("GET", "/endpoints/instance-types")
        items = data.get("items") if isinstance(data, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            raise errors.IncompatibleServer(
                f"{self._api_url} answered GET /endpoints/instance-types with something that "
                "is not a list of names: is the server the sd-webui-sagemaker API?"
            )
        return items

    # -- inferences --------------------------------------------------------------------------

    def create_inference(self, body: dict[str, Any], *, idempotency_key: str) -> dict:
        """Submit a job (`{task, endpoint?, models, payload}`); returns it `queued`.

        A POST makes a job each time, so it is retried only because it carries
        `idempotency_key`: the server answers a repeat with the same key and body with the job
        the first attempt made. Use one key per submission (`jobs.new_idempotency_key()`),
        never one per attempt.
        """
        data = self._call(
            "POST",
            "/inferences",
            body=body,
            headers={"Idempotency-Key": idempotency_key},
            idempotent=True,
        )
        return self._expect_dict(data, "POST /inferences")

    def get_inference(self, inference_id: str, wait: float = 0) -> dict:
        """The job; with `wait` seconds (0 to `contract.MAX_WAIT_SECONDS`) the server holds
        the answer until the job is final or the time is up (long poll).

        The read timeout is the wait plus the usual timeout, so a long poll is never cut
        short by the client.
        """
        wait = max(0, min(int(wait), contract.MAX_WAIT_SECONDS))
        path = f"/inferences/{_segment(inference_id, 'job id')}"
        params = {"wait": wait} if wait else None
        data = self._call(
            "GET", path, params=params, read_timeout=self._options.timeout + wait if wait else None
        )
        return self._expect_dict(data, f"GET {path}")

    def list_inferences(
        self, limit: int = 50, cursor: str | None = None, user: str | None = None
    ) -> Page:
        """The caller's jobs, newest first; `user` asks for another user's (`user:all`)."""
        return self._page("/inferences", limit, cursor, {"user": user})

    def cancel_inference(self, inference_id: str) -> dict:
        """Cancel a queued or running job; returns it `cancelled`. A final job: `Conflict`.

        Not retried: after a lost answer the repeat would be refused as the job is final.
        """
        path = f"/inferences/{_segment(inference_id, 'job id')}/cancel"
        return self._expect_dict(self._call("POST", path), f"POST {path}")

    def delete_inference(self, inference_id: str) -> None:
        """Delete a job and its images (a running job is cancelled first)."""
        self._call("DELETE", f"/inferences/{_segment(inference_id, 'job id')}")

    def download_image(self, url: str) -> bytes:
        """The bytes behind an image's download URL (a job's `images[].url`).

        The URL is signed, so it is a credential: it goes to its own host without the API
        token or the bearer token, and no log line or error message contains it. A refusal
        keeps its status on the error: 403 means the URL expired, and reading the job again
        gives fresh ones. Retried like a GET on transient failures.
        """
        options = self._options
        retries = max(0, options.retries)
        attempt = 0
        while True:
            try:
                response = self._session.get(
                    url,
                    headers={"User-Agent": self._user_agent},
                    timeout=(options.connect_timeout, options.timeout),
                    allow_redirects=False,
                    stream=True,
                )
            except requests.RequestException as exc:
                if attempt >= retries or not _transient(exc):
                    raise self._download_error(exc) from None
                what = type(exc).__name__
            else:
                with response:
                    if 200 <= response.status_code < 300:
                        return self._read_image(response)
                    if response.status_code not in RETRY_STATUSES or attempt >= retries:
                        status = response.status_code
                        why = " (the link expired: open the job again)" if status == 403 else ""
                        raise errors.ApiError(
                            f"The image could not be downloaded: the storage answered {status}"
                            f"{why}.",
                            status=status,
                        )
                what = f"status {response.status_code}"
            delay = self._backoff(attempt)
            attempt += 1
            log.info("An image download failed (%s); retry %d of %d", what, attempt, retries)
            self._sleep(delay)

    def _read_image(self, response: requests.Response) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_content(chunk_size=256 * 1024):
                size += len(chunk)
                if size > MAX_IMAGE_BYTES:
                    raise errors.ApiError(
                        f"An image is larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MiB: "
                        "refused, since no generated image is that large."
                    )
                chunks.append(chunk)
        except requests.RequestException as exc:
            raise self._download_error(exc) from None
        return b"".join(chunks)

    def _download_error(self, exc: requests.RequestException) -> errors.ApiError:
        """Words for a failed download; never `str(exc)`, which quotes the signed URL."""
        if isinstance(exc, requests.exceptions.Timeout):
            return errors.RequestTimeout(
                f"The image download did not finish within {self._options.timeout:g} s: "
                "try again, or raise the request timeout in Settings > Amazon SageMaker."
            )
        if isinstance(exc, requests.exceptions.SSLError):
            return errors.TlsFailed(
                "The secure connection (TLS) to the image storage failed: check this "
                "machine's certificates and proxy settings."
            )
        if isinstance(exc, requests.ConnectionError):
            return errors.ConnectionFailed(
                f"The image storage could not be reached: {_connection_reason(exc)}."
            )
        return errors.ApiError(f"The image download failed ({type(exc).__name__}).")

    # -- plumbing ------------------------------------------------------------------------

    def _page(
        self,
        path: str,
        limit: int,
        cursor: str | None,
        filters: dict[str, str | None] | None = None,
    ) -> Page:
        params: dict[str, Any] = {k: v for k, v in (filters or {}).items() if v is not None}
        params["limit"] = limit
        if cursor:
            params["cursor"] = cursor
        data = self._call("GET", path, params=params)
        items = data.get("items") if isinstance(data, dict) else None
        next_cursor = data.get("next_cursor") if isinstance(data, dict) else None
        if not isinstance(items, list) or not isinstance(next_cursor, (str, type(None))):
            raise errors.IncompatibleServer(
                f"{self._api_url} answered GET {path} with something that is not a list "
                "(items, next_cursor): is the server the sd-webui-sagemaker API?"
            )
        return Page(items=items, next_cursor=next_cursor)

    def _accept_session(self, data: Any) -> dict:
        session = self._expect_dict(data, "a sign-in")
        access = session.get("access_token")
        user = session.get("user")
        if not isinstance(access, str) or not access or not isinstance(user, dict):
            raise errors.IncompatibleServer(
                f"{self._api_url} answered a sign-in without a usable session: "
                "is the server the sd-webui-sagemaker API?"
            )
        self._access_token = access
        # /auth/refresh may keep the refresh token as it is.
        self._refresh_token = session.get("refresh_token") or self._refresh_token
        self._user = user
        if self._on_session is not None:
            try:
                self._on_session(session)
            except Exception as exc:
                # Failing to persist must not fail the call that got the session.
                log.warning(
                    "Could not keep the new session of %s: %s", self.username, type(exc).__name__
                )
        return session

    def _expect_dict(self, data: Any, what: str) -> dict:
        if not isinstance(data, dict):
            raise errors.IncompatibleServer(
                f"{self._api_url} answered {what} with something other than a JSON object: "
                "is the server the sd-webui-sagemaker API?"
            )
        return data

    def _forget_tokens(self) -> None:
        self._access_token = None
        self._refresh_token = None
        self._user = {}

    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        auth: bool = True,
        secrets: Iterable[str | None] = (),
        retry: bool = True,
        idempotent: bool = False,
        headers: dict[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> Any:
        """Send one API call and decode its reply; every failure becomes a redacted ApiError.

        `idempotent` marks a POST whose repetition cannot do harm, so it is retried like a GET
        (a POST made safe by an `Idempotency-Key` in `headers` is one). `read_timeout` replaces
        the configured one for a call the server may hold open on purpose (a long poll).
        """
        known = [*secrets, self._api_token, self._access_token, self._refresh_token]
        retry = retry and (method in IDEMPOTENT_METHODS or idempotent)
        extra = _CallExtras(headers or {}, read_timeout)
        try:
            return self._call_unredacted(method, path, params, body, auth, retry, extra)
        except errors.ApiError as exc:
            known += [self._access_token, self._refresh_token]
            raise exc.redacted(known) from None

    def _call_unredacted(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        auth: bool,
        retry: bool,
        extra: _CallExtras,
    ) -> Any:
        if auth and self._access_token is None and self._refresh_token:
            self._refresh_silently(None)
        token = self._access_token if auth else None
        response = self._send(method, path, params, body, token, retry, extra)
        if (
            auth
            and response.status_code == 401
            and self._refresh_token
            and _problem(response)[1] == contract.ERROR_INVALID_TOKEN
        ):
            response.close()
            self._refresh_silently(token)
            response = self._send(method, path, params, body, self._access_token, retry, extra)
        if auth and response.status_code == 401:
            self._forget_tokens()
        return self._decode(response, method, path)

    def _refresh_silently(self, failed_token: str | None) -> None:
        """Refresh once for a call whose access token was refused (or missing).

        Under a lock, and skipped when another thread already replaced the token, so a burst
        of parallel calls after expiry costs one refresh, not one each.
        """
        with self._refresh_lock:
            if self._access_token is not None and self._access_token != failed_token:
                return
            self.refresh()

    def _send(
        self,
        method: str,
        path: str,
        params: dict[str, Any] | None,
        body: dict[str, Any] | None,
        bearer: str | None,
        retry: bool,
        extra: _CallExtras,
    ) -> requests.Response:
        """One HTTP exchange, repeated on transient failures when the call is idempotent."""
        headers = {
            **extra.headers,
            "x-api-key": self._api_token,
            "Accept": "application/json",
            "User-Agent": self._user_agent,
        }
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        options = self._options
        read_timeout = extra.read_timeout or options.timeout
        retries = max(0, options.retries) if retry else 0
        attempt = 0
        while True:
            try:
                response = self._session.request(
                    method,
                    self._api_url + path,
                    params=params,
                    json=body,
                    headers=headers,
                    timeout=(options.connect_timeout, read_timeout),
                    # A redirect would carry the API token to wherever it points, and turn a
                    # POST into a GET; the URL should be fixed instead (see _decode).
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                delay = self._backoff(attempt) if _transient(exc) and attempt < retries else None
                if delay is None:
                    raise self._transport_error(exc, method, path, read_timeout) from None
                what = type(exc).__name__
            else:
                if response.status_code not in RETRY_STATUSES or attempt >= retries:
                    return response
                retry_after = _retry_after(response)
                if retry_after is None:
                    delay = self._backoff(attempt)
                elif retry_after <= MAX_RETRY_AFTER:
                    delay = retry_after
                else:
                    return response
                response.close()
                what = f"status {response.status_code}"
            attempt += 1
            log.info(
                "%s %s failed (%s); retry %d of %d in %.1f s",
                method,
                path,
                what,
                attempt,
                retries,
                delay,
            )
            self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        """Exponential delay with jitter, so clients that failed together do not retry together."""
        base = self._options.backoff * (2**attempt)
        return base + random.uniform(0, base / 2)  # noqa: S311 - jitter, not cryptography

    def _transport_error(
        self,
        exc: requests.RequestException,
        method: str,
        path: str,
        read_timeout: float | None = None,
    ) -> errors.ApiError:
        where = self._where
        if isinstance(exc, requests.exceptions.SSLError):
            verify = next(
                (e for e in _chain(exc) if isinstance(e, ssl.SSLCertVerificationError)), None
            )
            if verify is not None or "CERTIFICATE_VERIFY_FAILED" in str(exc):
                reason = getattr(verify, "verify_message", None) or "untrusted certificate"
                return errors.TlsFailed(
                    f"The TLS certificate of {where} could not be verified ({reason}). Check "
                    "the API URL; a server with a self-signed certificate needs an http:// "
                    "URL on a trusted network or a certificate this machine trusts."
                )
            return errors.TlsFailed(
                f"The secure connection (TLS) to {where} failed. If the server speaks plain "
                "HTTP (the local stack does), use an http:// URL."
            )
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return errors.ConnectionFailed(
                f"Cannot reach {where}: no connection within {self._options.connect_timeout:g} s. "
                "Check the API URL and that the server is running and reachable from here."
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return errors.RequestTimeout(
                f"{where} did not answer {method} {path} within "
                f"{read_timeout or self._options.timeout:g} s. "
                "Try again; if it keeps happening, raise the request timeout in "
                "Settings > Amazon SageMaker."
            )
        if isinstance(exc, requests.ConnectionError):
            return errors.ConnectionFailed(
                f"Cannot reach {where}: {_connection_reason(exc)}. Check the API URL and that "
                "the server is running."
            )
        return errors.ApiError(
            f"The request {method} {path} to {where} failed ({type(exc).__name__})."
        )

    def _decode(self, response: requests.Response, method: str, path: str) -> Any:
        status = response.status_code
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            data = _json_or_none(response)
            if data is None:
                raise errors.IncompatibleServer(self._not_this_api(response, method, path))
            return data
        if 300 <= status < 400:
            location = response.headers.get("Location", "")
            raise errors.IncompatibleServer(
                f"{self._api_url} redirects {method} {path} to {location or 'another address'}: "
                "set the API URL to the address the server expects (https:// instead of "
                "http://?).",
                status=status,
            )
        raise self._http_error(response, method, path)

    def _http_error(self, response: requests.Response, method: str, path: str) -> errors.ApiError:
        status = response.status_code
        detail, code = _problem(response)
        kw: dict[str, Any] = {"status": status, "code": code}
        if status == 401:
            if code == contract.ERROR_WRONG_CREDENTIALS:
                return errors.WrongCredentials(
                    _sentence(detail) or "Wrong username or password.", **kw
                )
            if code == contract.ERROR_INVALID_TOKEN:
                text = "Your session has expired or was revoked: sign in again."
            else:
                text = "You are not signed in: sign in first."
            return errors.NotAuthenticated(text, **kw)
        if status == 403:
            if code == contract.ERROR_INVALID_API_KEY or (code is None and detail == "Forbidden"):
                # API Gateway itself answers {"message": "Forbidden"} to a wrong API key.
                return errors.InvalidApiToken(
                    f"The API token was refused by {self._where}: check the API token in the "
                    "connection settings (copy it from the stack's outputs).",
                    **kw,
                )
            if code is None and detail == "Missing Authentication Token":
                # What API Gateway says for a path it has no route for.
                return errors.IncompatibleServer(
                    f"{self._api_url} has no route {method} {path}: check that the API URL "
                    "ends with the stage, for example /prod.",
                    **kw,
                )
            return errors.PermissionDenied(
                _sentence(detail) or "You do not have the permission for this: ask an admin.",
                **kw,
            )
        if status in (404, 405) and code is None:
            return errors.IncompatibleServer(self._not_this_api(response, method, path), **kw)
        if status == 404:
            return errors.NotFound(_sentence(detail) or f"{path} was not found.", **kw)
        if status == 409 and code == contract.ERROR_DUPLICATE_CONTENT:
            data = _json_or_none(response)
            existing = data.get("existing_id") if isinstance(data, dict) else None
            return errors.DuplicateContent(
                _sentence(detail) or "A model with the same content exists already.",
                existing_id=existing if isinstance(existing, str) else None,
                **kw,
            )
        if status == 409:
            return errors.Conflict(
                _sentence(detail) or "The change conflicts with the current state.", **kw
            )
        if status in (400, 422):
            return errors.InvalidRequest(
                _sentence(detail) or "The server rejected the request.", **kw
            )
        if status == 429:
            retry_after = _retry_after(response)
            wait = f" Try again in {retry_after:.0f} s." if retry_after is not None else ""
            return errors.TooManyAttempts(
                (_sentence(detail) or "Too many requests.") + wait,
                retry_after=retry_after,
                **kw,
            )
        reason = f"{status} {response.reason or ''}".strip()
        if status >= 500:
            words = f": {_sentence(detail)}" if detail else "."
            return errors.ServerError(
                f"The server failed ({reason}){words} Try again later; if it persists, "
                "check the middleware's logs.",
                **kw,
            )
        return errors.ApiError(
            f"{method} {path} was refused ({reason}){': ' + _sentence(detail) if detail else '.'}",
            **kw,
        )

    def _not_this_api(self, response: requests.Response, method: str, path: str) -> str:
        content_type = response.headers.get("Content-Type", "")
        if "html" in content_type or response.content[:200].lstrip().startswith(b"<"):
            kind = "an HTML page"
        elif _json_or_none(response) is not None:
            kind = "JSON of another kind"
        else:
            kind = "something other than JSON"
        return (
            f"{self._api_url} does not look like the sd-webui-sagemaker API: {method} {path} "
            f"answered {response.status_code} with {kind}. Check the API URL (copy it from the "
            "stack's outputs, with its stage such as /prod)."
        )


def _transient(exc: requests.RequestException) -> bool:
    """Whether a failed exchange may succeed when repeated: the connection failed, but not
    on TLS (a certificate stays untrusted) nor after sending (a read timeout)."""
    return isinstance(exc, requests.ConnectionError) and not isinstance(
        exc, (requests.exceptions.SSLError, requests.exceptions.ReadTimeout)
    )


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _problem(response: requests.Response) -> tuple[str | None, str | None]:
    """(detail, code) of an error reply; tolerant of API Gateway's and FastAPI's own shapes."""
    data = _json_or_none(response)
    if not isinstance(data, dict):
        return None, None
    code = data.get("code") if isinstance(data.get("code"), str) else None
    detail = data.get("detail")
    if isinstance(detail, list):  # FastAPI's default validation error shape
        detail = "; ".join(
            str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail
        )
    if not isinstance(detail, str) or not detail:
        detail = data.get("message") if isinstance(data.get("message"), str) else None
    if detail and len(detail) > _MAX_DETAIL:
        detail = detail[:_MAX_DETAIL] + "..."
    return detail or None, code


def _sentence(detail: str | None) -> str:
    """The server's detail as a sentence (details such as "Forbidden" lack the full stop)."""
    if not detail:
        return ""
    detail = detail.strip()
    return detail if detail.endswith((".", "!", "?")) else detail + "."


def _retry_after(response: requests.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), None when absent/bad."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception and everything it wraps: causes, contexts, urllib3's `reason`, args."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        stack += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        stack += list(current.args)


def _connection_reason(exc: BaseException) -> str:
    """Short words for why a connection failed, from the wrapped OS error when there is one."""
    for inner in _chain(exc):
        if isinstance(inner, socket.gaierror):
            return "the host name could not be resolved (DNS)"
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused (nothing listens on that port)"
        if isinstance(inner, OSError) and inner.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return "the network or host is unreachable"
    text = str(exc)
    if re.search(
        r"Name or service not known|nodename nor servname|getaddrinfo failed|"
        r"name resolution|Failed to resolve",
        text,
    ):
        return "the host name could not be resolved (DNS)"
    if "refused" in text:
        return "connection refused (nothing listens on that port)"
    if re.search(r"unreachable|No route to host", text):
        return "the network or host is unreachable"
    if re.search(r"aborted|reset|RemoteDisconnected", text):
        return "the server closed the connection"
    return "the connection failed"
