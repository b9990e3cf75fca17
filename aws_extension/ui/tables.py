"""Rows of the roles and users tables, from the API's records.

Tables are handed to gradio as `{"headers", "data"}`: gradio 3.41 drops the headers of an
empty list-of-rows value, and both 3.41 and 4.x take this shape as is.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

ROLE_HEADERS = ["Name", "Permissions", "Created by", "Created at"]
USER_HEADERS = ["Username", "Roles", "Permissions", "Created by", "Created at"]


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
