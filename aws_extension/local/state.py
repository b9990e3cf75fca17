"""The local stack's state folder: its secrets and its records, private to the user.

```
<state dir>/config.json       API token, signing secret, blob URL secret (mode 0600)
<state dir>/records.sqlite3   users, roles, ... (mode 0600: it holds password hashes)
<state dir>/blobs/            model files and uploads in progress (mode 0700)
```

The folder outlives restarts, so the API token pasted into the tab and the users created
stay valid. Files are created private from the start (never chmod-ed after the fact) and
`config.json` is written atomically, so a crash cannot leave half a secret behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_NAME = "sd-webui-sagemaker"
CONFIG_FILE = "config.json"
RECORDS_FILE = "records.sqlite3"
BLOBS_FOLDER = "blobs"
_FORMAT = 1


class StateError(Exception):
    """The state folder cannot be used; the message says which file and why."""


@dataclass(frozen=True)
class LocalState:
    directory: Path
    api_token: str = field(repr=False)
    signing_secret: str = field(repr=False)
    #: Signs the blob URLs; a secret of its own, so neither key can forge the other's output.
    blob_secret: str = field(repr=False)

    @property
    def records_path(self) -> Path:
        return self.directory / RECORDS_FILE

    def blobs_folder(self) -> Path:
        """The folder of the model files, created private on first use."""
        folder = self.directory / BLOBS_FOLDER
        folder.mkdir(mode=0o700, exist_ok=True)
        return folder


def default_state_dir(environ: dict[str, str] | None = None) -> Path:
    """The per-user data directory: $XDG_DATA_HOME (or ~/.local/share), %LOCALAPPDATA% on
    Windows, plus the application's name."""
    env = dict(os.environ) if environ is None else environ
    if os.name == "nt" and env.get("LOCALAPPDATA"):
        return Path(env["LOCALAPPDATA"]) / APP_NAME
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def open_state(directory: Path) -> LocalState:
    """Load the state folder, creating it and its secrets on first use."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    config_path = directory / CONFIG_FILE
    if config_path.exists():
        data = _read_config(config_path)
    else:
        data = {
            "format": _FORMAT,
            "api_token": secrets.token_urlsafe(32),
            "signing_secret": secrets.token_urlsafe(48),
        }
    if not isinstance(data.get("blob_secret"), str):
        # Also for state folders made before models existed: they gain the secret now.
        data["blob_secret"] = secrets.token_urlsafe(48)
        write_private_json(config_path, data)
    _create_private(directory / RECORDS_FILE)
    return LocalState(directory, data["api_token"], data["signing_secret"], data["blob_secret"])


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write `path` atomically with mode 0600: a temporary file in the same folder (which
    `mkstemp` creates as 0600), flushed to disk, then renamed over the target."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise StateError(f"cannot read {path}: {error.__class__.__name__}") from None
    if not (
        isinstance(data, dict)
        and isinstance(data.get("api_token"), str)
        and isinstance(data.get("signing_secret"), str)
    ):
        raise StateError(f"{path} lacks api_token or signing_secret; move it away to start afresh")
    return data


def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600 unless it exists (SQLite fills it later and gives
    its -wal/-shm companions the same mode)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
