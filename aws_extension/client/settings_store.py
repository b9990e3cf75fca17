"""The extension's settings file: API URL and token, and one session per WebUI user.

The file holds secrets (the API token, refresh tokens), so it is created with mode 0600, any
wider mode found is narrowed, and it is only ever replaced whole (temp file in the same folder,
fsync, `os.replace`): a crash mid-write leaves the old file or the new one, never half of one.

A WebUI must start even when this file is damaged: a file that cannot be read or parsed is
moved aside to `settings.json.corrupt` (the user may want what is in it) with a warning, and
the store behaves as empty. Passwords are never stored; there is no way to pass one in.

Layout::

    {"version": 1, "api_url": "...", "api_token": "...",
     "users": {"<WebUI user, '' without logins>": {"username": "...", "refresh_token": "..."}}}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
_PRIVATE = 0o600


@dataclass(frozen=True)
class Connection:
    """Where the API is and the token every call carries (hidden from repr)."""

    api_url: str
    api_token: str = field(repr=False)


@dataclass(frozen=True)
class UserSession:
    """A WebUI user's middleware sign-in, resumable without the password."""

    username: str
    refresh_token: str = field(repr=False)


class SettingsStore:
    """Reads and atomically rewrites one settings file; safe for the threads of one process.

    Nothing touches the disk until a method is called, so creating a store is free.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        # Reentrant: writers read under it, and reading may move a damaged file aside.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"SettingsStore({str(self.path)!r})"

    # -- reading -------------------------------------------------------------------------

    def connection(self) -> Connection | None:
        data = self._read()
        api_url, api_token = data.get("api_url"), data.get("api_token")
        if isinstance(api_url, str) and api_url and isinstance(api_token, str) and api_token:
            return Connection(api_url=api_url, api_token=api_token)
        return None

    def user_session(self, webui_user: str) -> UserSession | None:
        entry = self._users(self._read()).get(webui_user)
        if not isinstance(entry, dict):
            return None
        username, refresh_token = entry.get("username"), entry.get("refresh_token")
        if (
            isinstance(username, str)
            and isinstance(refresh_token, str)
            and username
            and refresh_token
        ):
            return UserSession(username=username, refresh_token=refresh_token)
        return None

    # -- writing -------------------------------------------------------------------------

    def save_connection(self, api_url: str, api_token: str) -> None:
        """Store the API URL and token.

        Moving to another API URL drops every stored user session: their refresh tokens
        belong to the old server and must not be sent to the new one.
        """
        with self._lock:
            data = self._read()
            if data.get("api_url") != api_url:
                data["users"] = {}
            data["api_url"] = api_url
            data["api_token"] = api_token
            self._write(data)

    def save_user_session(self, webui_user: str, username: str, refresh_token: str) -> None:
        with self._lock:
            data = self._read()
            users = self._users(data)
            users[webui_user] = {"username": username, "refresh_token": refresh_token}
            data["users"] = users
            self._write(data)

    def clear_user_session(self, webui_user: str) -> None:
        with self._lock:
            data = self._read()
            users = self._users(data)
            if webui_user in users:
                del users[webui_user]
                data["users"] = users
                self._write(data)

    def clear_all(self) -> None:
        """Forget everything: the file goes, so no token stays on disk."""
        with self._lock, contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    # -- file handling -------------------------------------------------------------------

    @staticmethod
    def _users(data: dict[str, Any]) -> dict[str, Any]:
        users = data.get("users")
        return dict(users) if isinstance(users, dict) else {}

    def _read(self) -> dict[str, Any]:
        """The file's contents, or {} when it is missing, unreadable or not ours."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self._quarantine(f"it cannot be read ({type(exc).__name__})", None)
            return {}
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            self._quarantine("it is not valid JSON", raw)
            return {}
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            self._quarantine(f"it is not a version {FORMAT_VERSION} settings file", raw)
            return {}
        self._narrow_mode()
        return data

    def _quarantine(self, why: str, raw: bytes | None) -> None:
        """Move a damaged file aside instead of overwriting it on the next save.

        `raw` is what was found damaged: when the file no longer holds it, a writer replaced
        it meanwhile and the new file must stay.
        """
        corrupt = self.path.with_name(self.path.name + ".corrupt")
        with self._lock:
            try:
                if raw is not None and self.path.read_bytes() != raw:
                    return
                os.replace(self.path, corrupt)
            except FileNotFoundError:
                return  # another thread moved it aside first
            except OSError as exc:
                log.warning(
                    "Ignoring the settings file %s because %s; it could not be moved aside (%s).",
                    self.path,
                    why,
                    type(exc).__name__,
                )
                return
        log.warning(
            "Ignoring the settings file %s because %s; it was kept as %s. "
            "Enter the connection settings again.",
            self.path,
            why,
            corrupt,
        )

    def _narrow_mode(self) -> None:
        if os.name != "posix":
            return
        try:
            mode = self.path.stat().st_mode & 0o777
            if mode & 0o077:
                os.chmod(self.path, _PRIVATE)
                log.warning(
                    "The settings file %s was readable by others (mode %o); it is now 0600.",
                    self.path,
                    mode,
                )
        except OSError as exc:
            log.warning("Could not make %s private (%s).", self.path, type(exc).__name__)

    def _write(self, data: dict[str, Any]) -> None:
        """Replace the file atomically with `data`; the temp file is private from birth."""
        data = {**data, "version": FORMAT_VERSION}
        payload = json.dumps(data, indent=2, sort_keys=True).encode("utf-8")
        folder = self.path.parent
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        temp = folder / f".{self.path.name}.{secrets.token_hex(8)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        fd = os.open(temp, flags, _PRIVATE)
        try:
            with os.fdopen(fd, "wb") as handle:
                if hasattr(os, "fchmod"):
                    # os.open's mode passes through the umask; make it exactly 0600.
                    os.fchmod(handle.fileno(), _PRIVATE)
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        self._sync_folder(folder)

    @staticmethod
    def _sync_folder(folder: Path) -> None:
        """Make the rename itself durable (POSIX); best effort elsewhere."""
        if os.name != "posix":
            return
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
