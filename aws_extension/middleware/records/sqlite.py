"""`Records` on one SQLite file, for the embedded local stack.

FastAPI runs our synchronous routes in a thread pool, so one connection is shared under a
lock. The conditions live in the SQL itself (primary key, `WHERE version = ?`), so two
processes on the same file still cannot both create one key.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import NoReturn

from aws_extension.middleware.errors import NotFound
from aws_extension.middleware.records.base import (
    AlreadyExists,
    Doc,
    Item,
    Records,
    VersionConflict,
    not_found,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID
"""


def _dump(doc: Doc) -> str:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True)


class SqliteRecords(Records):
    def __init__(self, path: str | Path) -> None:
        self._lock = threading.Lock()
        # Autocommit: every method is a single statement, atomic on its own.
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=10
        )
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, kind: str, key: str) -> Item | None:
        with self._lock:
            row = self._db.execute(
                "SELECT version, doc FROM records WHERE kind = ? AND key = ?", (kind, key)
            ).fetchone()
        return None if row is None else Item(key, row[0], json.loads(row[1]))

    def create(self, kind: str, key: str, doc: Doc) -> Item:
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO records (kind, key, version, doc) VALUES (?, ?, 1, ?)",
                    (kind, key, _dump(doc)),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"A {kind} named {key!r} already exists.") from None
        return Item(key, 1, doc)

    def update(self, kind: str, key: str, doc: Doc, *, expected_version: int) -> Item:
        with self._lock:
            changed = self._db.execute(
                "UPDATE records SET version = version + 1, doc = ?"
                " WHERE kind = ? AND key = ? AND version = ?",
                (_dump(doc), kind, key, expected_version),
            ).rowcount
            exists = changed or self._exists(kind, key)
        if not changed:
            self._raise_missing_or_moved(kind, key, exists)
        return Item(key, expected_version + 1, doc)

    def delete(self, kind: str, key: str, *, expected_version: int | None = None) -> None:
        sql = "DELETE FROM records WHERE kind = ? AND key = ?"
        params: tuple[object, ...] = (kind, key)
        if expected_version is not None:
            sql += " AND version = ?"
            params += (expected_version,)
        with self._lock:
            deleted = self._db.execute(sql, params).rowcount
            exists = deleted or self._exists(kind, key)
        if not deleted:
            self._raise_missing_or_moved(kind, key, exists)

    def _after(self, kind: str, after: str | None, limit: int, descending: bool) -> list[Item]:
        # TEXT compares with memcmp (the BINARY collation): UTF-8 byte order, as DynamoDB.
        sql = "SELECT key, version, doc FROM records WHERE kind = ?"
        params: tuple[object, ...] = (kind,)
        if after is not None:
            sql += " AND key < ?" if descending else " AND key > ?"
            params += (after,)
        sql += " ORDER BY key DESC LIMIT ?" if descending else " ORDER BY key LIMIT ?"
        with self._lock:
            rows = self._db.execute(sql, (*params, limit)).fetchall()
        return [Item(key, version, json.loads(doc)) for key, version, doc in rows]

    def _exists(self, kind: str, key: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM records WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return row is not None

    @staticmethod
    def _raise_missing_or_moved(kind: str, key: str, exists: bool) -> NoReturn:
        if not exists:
            raise NotFound(not_found(kind, key))
        raise VersionConflict(
            f"The {kind} {key!r} was changed by someone else; read it again and retry."
        )
