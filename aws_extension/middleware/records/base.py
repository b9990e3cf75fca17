"""The `Records` interface: versioned JSON documents grouped by kind, listed in key order.

Every write is conditional, because the middleware runs in many Lambda instances at once:
`create` fails when the key exists, `update` and `delete` take the version the caller read
and fail when someone else wrote in between. That is enough to make "two admins create the
same user" or "two failed sign-ins race on one counter" come out right without locks.
"""

from __future__ import annotations

import base64
import binascii
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from aws_extension.middleware.errors import Conflict, Invalid

Doc = dict[str, Any]


@dataclass(frozen=True)
class Item:
    """One stored document; `version` is 1 after `create` and grows by one per `update`."""

    key: str
    version: int
    doc: Doc


@dataclass(frozen=True)
class Page:
    items: list[Item]
    #: Opaque; pass it back to `list` for the next page. None on the last page.
    next_cursor: str | None


class AlreadyExists(Conflict):
    """`create` found the key taken."""


class VersionConflict(Conflict):
    """`update`/`delete` found a newer version than the one the caller read."""


MALFORMED_CURSOR = "The cursor is malformed; pass next_cursor from the previous page unchanged."


def encode_cursor(kind: str, last_key: str, *, descending: bool = False) -> str:
    """A cursor is the last key returned, tied to its kind and direction so it cannot page
    another list."""
    fields: dict[str, Any] = {"kind": kind, "after": last_key}
    if descending:
        fields["desc"] = True
    raw = json.dumps(fields, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str, *, descending: bool = False) -> str:
    """The key to continue after; raises `Invalid` for anything `encode_cursor` did not make."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError):
        raise Invalid(MALFORMED_CURSOR) from None
    if (
        not isinstance(data, dict)
        or data.get("kind") != kind
        or not isinstance(data.get("after"), str)
        or data.get("desc", False) is not descending
    ):
        raise Invalid(MALFORMED_CURSOR)
    return data["after"]


class Records(ABC):
    """Documents addressed by (kind, key). Keys of one kind sort by their UTF-8 bytes."""

    @abstractmethod
    def get(self, kind: str, key: str) -> Item | None:
        """The current document, read consistently; None when absent."""

    @abstractmethod
    def create(self, kind: str, key: str, doc: Doc) -> Item:
        """Store a new document at version 1; raises `AlreadyExists` if the key is taken."""

    @abstractmethod
    def update(self, kind: str, key: str, doc: Doc, *, expected_version: int) -> Item:
        """Replace the document if it is still at `expected_version`.

        Raises `NotFound` when the key is absent and `VersionConflict` when it has moved on.
        """

    @abstractmethod
    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> None:
        """Remove the document (only at `expected_version`, if given).

        Raises `NotFound` when the key is absent and `VersionConflict` when it has moved on.
        """

    @abstractmethod
    def _after(self, kind: str, after: str | None, limit: int, descending: bool) -> list[Item]:
        """Up to `limit` items of `kind` that come after the key `after` in key order (or,
        when `descending`, before it, in reverse key order)."""

    def list(
        self, kind: str, *, limit: int = 50, cursor: str | None = None, descending: bool = False
    ) -> Page:
        """One page of `kind` in key order, or reverse key order when `descending` (newest
        first for time-prefixed keys); a malformed cursor or one of the other direction
        raises `Invalid`."""
        if limit < 1:
            raise ValueError("limit must be at least 1")
        after = decode_cursor(kind, cursor, descending=descending) if cursor is not None else None
        # One extra item tells whether another page exists without a second round trip.
        items = self._after(kind, after, limit + 1, descending)
        if len(items) <= limit:
            return Page(items, None)
        last = items[limit - 1].key
        return Page(items[:limit], encode_cursor(kind, last, descending=descending))

    def scan(self, kind: str, *, page_size: int = 200) -> Iterator[Item]:
        """Every item of `kind`, page by page, for the few checks that need them all."""
        cursor: str | None = None
        while True:
            page = self.list(kind, limit=page_size, cursor=cursor)
            yield from page.items
            if page.next_cursor is None:
                return
            cursor = page.next_cursor


def not_found(kind: str, key: str) -> str:
    """The detail of a record-level NotFound; services usually say it better themselves."""
    return f"No {kind} named {key!r}."
