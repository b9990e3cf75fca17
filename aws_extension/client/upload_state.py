"""What an interrupted upload needs to resume: one small JSON file per file being uploaded.

The file records which checkpoint and multipart upload the bytes go to, the part size the
server chose and every part already stored with its ETag, and it is rewritten (atomically:
temp file, fsync, `os.replace`) after each stored part. A crash, a lost connection or a user's
cancel therefore loses at most the parts on their way.

A state belongs to one file on one server: its name is a hash of the API URL and the file's
absolute path, and it holds the file's size and modification time, so a file that changed
since is never resumed with parts of its old contents. Part URLs are never stored: they are
credentials, and fresh ones are asked for on resume anyway.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


@dataclass
class UploadState:
    api_url: str
    path: str
    size: int
    mtime_ns: int
    type: str
    name: str
    checkpoint_id: str
    upload_id: str
    part_size: int
    part_count: int
    #: Stored parts: part number -> quoted ETag.
    parts: dict[int, str] = field(default_factory=dict)

    def matches(self, size: int, mtime_ns: int) -> bool:
        """True when the file is still the version whose parts were sent."""
        return self.size == size and self.mtime_ns == mtime_ns

    def missing(self) -> list[int]:
        return [n for n in range(1, self.part_count + 1) if n not in self.parts]

    def bytes_stored(self) -> int:
        last = self.part_count
        return sum(
            self.size - (last - 1) * self.part_size if n == last else self.part_size
            for n in self.parts
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": FORMAT_VERSION,
            "api_url": self.api_url,
            "path": self.path,
            "size": self.size,
            "mtime_ns": self.mtime_ns,
            "type": self.type,
            "name": self.name,
            "checkpoint_id": self.checkpoint_id,
            "upload_id": self.upload_id,
            "part_size": self.part_size,
            "part_count": self.part_count,
            "parts": {str(n): etag for n, etag in sorted(self.parts.items())},
        }

    @classmethod
    def from_json(cls, data: Any) -> UploadState | None:
        """The state in `data`, or None when it is not a state this version wrote."""
        if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
            return None
        try:
            state = cls(
                api_url=_typed(data["api_url"], str),
                path=_typed(data["path"], str),
                size=_typed(data["size"], int),
                mtime_ns=_typed(data["mtime_ns"], int),
                type=_typed(data["type"], str),
                name=_typed(data["name"], str),
                checkpoint_id=_typed(data["checkpoint_id"], str),
                upload_id=_typed(data["upload_id"], str),
                part_size=_typed(data["part_size"], int),
                part_count=_typed(data["part_count"], int),
                parts={int(n): _typed(etag, str) for n, etag in data["parts"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            return None
        if (
            state.part_size < 1
            or state.part_count != max(1, -(-state.size // state.part_size))
            or any(not 1 <= n <= state.part_count for n in state.parts)
        ):
            return None
        return state


def _typed(value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"expected {kind.__name__}")
    return value


class UploadStates:
    """The folder of resume states. Creating one touches nothing on disk."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)

    def file_for(self, api_url: str, path: Path | str) -> Path:
        key = hashlib.sha256(f"{api_url}\0{Path(path).resolve()}".encode()).hexdigest()
        return self.folder / f"{key[:32]}.json"

    def load(self, api_url: str, path: Path | str) -> UploadState | None:
        """The state of `path` on `api_url`; None when there is none or it is unusable.

        An unusable file (damaged, or written by another version) is removed: all it could
        do is stand in the way of a fresh start.
        """
        file = self.file_for(api_url, path)
        try:
            raw = file.read_bytes()
        except FileNotFoundError:
            return None
        try:
            state = UploadState.from_json(json.loads(raw.decode("utf-8")))
        except (UnicodeDecodeError, ValueError):
            state = None
        if state is None or state.api_url != api_url or state.path != str(Path(path).resolve()):
            log.warning("Ignoring the unusable upload state %s.", file)
            with contextlib.suppress(OSError):
                file.unlink()
            return None
        return state

    def save(self, state: UploadState) -> Path:
        """Replace the state file whole; return its path."""
        file = self.file_for(state.api_url, state.path)
        self.folder.mkdir(parents=True, exist_ok=True)
        temp = self.folder / f".{file.name}.{secrets.token_hex(6)}.tmp"
        payload = json.dumps(state.to_json(), indent=1).encode("utf-8")
        try:
            with temp.open("wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temp, file)
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return file

    def delete(self, api_url: str, path: Path | str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.file_for(api_url, path).unlink()
