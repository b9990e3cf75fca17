"""Rows of the roles, users and models tables, from the API's records.

Tables are handed to gradio as `{"headers", "data"}`: gradio 3.41 drops the headers of an
empty list-of-rows value, and both 3.41 and 4.x take this shape as is.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aws_extension.contract import CHECKPOINT_FAILED, CHECKPOINT_IMPORTING

ROLE_HEADERS = ["Name", "Permissions", "Created by", "Created at"]
USER_HEADERS = ["Username", "Roles", "Permissions", "Created by", "Created at"]
MODEL_HEADERS = [
    "Name",
    "Type",
    "Size",
    "Hash",
    "Status",
    "Allowed roles",
    "Created by",
    "Created at",
]
#: A1111 shows a model's hash as the first ten hex digits of its SHA-256; so do we.
SHORT_HASH_LENGTH = 10
#: What an empty `allowed_roles` means (docs/architecture.md, "Visibility").
EVERYONE = "everyone"


def table(headers: list[str], rows: list[list[str]]) -> dict[str, Any]:
    return {"headers": headers, "data": rows}


def role_rows(items: list[dict]) -> list[list[str]]:
    return [
        [
            str(item.get("name", "")),
            _names(item.get("permissions")),
            str(item.get("created_by") or ""),
            when(item.get("created_at")),
        ]
        for item in items
    ]


def user_rows(items: list[dict]) -> list[list[str]]:
    return [
        [
            str(item.get("username", "")),
            _names(item.get("roles")),
            _names(item.get("permissions")),
            str(item.get("created_by") or ""),
            when(item.get("created_at")),
        ]
        for item in items
    ]


def model_rows(items: list[dict]) -> list[list[str]]:
    return [
        [
            str(item.get("name", "")),
            str(item.get("type", "")),
            size_words(item.get("size")),
            short_hash(item.get("sha256")),
            model_status(item),
            _names(item.get("allowed_roles")) or EVERYONE,
            str(item.get("created_by") or ""),
            when(item.get("created_at")),
        ]
        for item in items
    ]


def short_hash(sha256: object) -> str:
    return sha256[:SHORT_HASH_LENGTH] if isinstance(sha256, str) else ""


def model_status(item: dict) -> str:
    """The status, with how far an import got and why a model failed."""
    status = str(item.get("status", ""))
    progress = item.get("progress")
    if status == CHECKPOINT_IMPORTING and isinstance(progress, dict):
        done, total = progress.get("bytes_done"), progress.get("bytes_total")
        if isinstance(done, int) and isinstance(total, int) and total > 0:
            return f"{status} {min(done, total) * 100 // total}%"
        if isinstance(done, int):
            return f"{status} ({size_words(done)} so far)"
    error = item.get("error")
    if status == CHECKPOINT_FAILED and error:
        return f"{status}: {error}"
    return status


def size_words(size: object) -> str:
    """Bytes as people read them: `512 B`, `1.5 KiB`, `2.0 GiB`; "" when unknown."""
    if isinstance(size, bool) or not isinstance(size, (int, float)) or size < 0:
        return ""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} TiB"


def when(value: object) -> str:
    """An ISO 8601 timestamp as `YYYY-MM-DD HH:MM UTC`; anything else as it came."""
    if not isinstance(value, str) or not value:
        return ""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _names(values: object) -> str:
    return ", ".join(str(v) for v in values) if isinstance(values, list) else ""
