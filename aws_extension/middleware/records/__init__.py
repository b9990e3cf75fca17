"""Where the middleware keeps its documents: the `Records` interface and its two backends.

`SqliteRecords` serves the embedded local stack, `DynamoRecords` the AWS deployment; one
contract test suite (tests/server/test_records_contract.py) holds them to the same behaviour.
"""

from __future__ import annotations

from aws_extension.middleware.records.base import (
    AlreadyExists,
    Doc,
    Item,
    Page,
    Records,
    VersionConflict,
)

__all__ = ["AlreadyExists", "Doc", "Item", "Page", "Records", "VersionConflict"]
