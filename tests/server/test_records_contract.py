"""One behaviour, two backends: SQLite (local stack) and DynamoDB (AWS, through moto)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from aws_extension.middleware.errors import Conflict, Invalid, NotFound
from aws_extension.middleware.records import AlreadyExists, Item, Records, VersionConflict
from aws_extension.middleware.records.dynamodb import DynamoRecords, create_records_table
from aws_extension.middleware.records.sqlite import SqliteRecords

THREADS = 16


@pytest.fixture(scope="module")
def dynamodb_client() -> Iterator[Any]:
    """One moto-backed client for the module; each test gets a table of its own.

    DynamoDB applies each conditional write atomically; moto checks the condition and stores
    the item in two steps without a lock, so under threads it sometimes lets two creates of
    one key through. Serializing moto's request handling restores DynamoDB's atomicity, so
    the concurrency tests judge our conditions rather than moto's thread safety.
    """
    emulate = BotocoreStubber.process_request
    lock = threading.Lock()

    def atomic(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return emulate(self, request)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(BotocoreStubber, "process_request", atomic)
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            mp.setenv(name, "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        with mock_aws():
            yield boto3.client("dynamodb", region_name="us-east-1")


@pytest.fixture(params=["sqlite", "dynamodb"])
def records(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Records]:
    if request.param == "sqlite":
        store = SqliteRecords(tmp_path / "records.sqlite3")
        yield store
        store.close()
        return
    client = request.getfixturevalue("dynamodb_client")
    table = f"records-{uuid.uuid4().hex}"
    create_records_table(client, table)
    yield DynamoRecords(client, table)
    client.delete_table(TableName=table)


def run_together(count: int, work: Callable[[int], None]) -> None:
    """Start `count` threads that call `work(i)` at the same moment; wait for all of them."""
    barrier = threading.Barrier(count)

    def start(i: int) -> None:
        barrier.wait(timeout=10)
        work(i)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)


def test_get_of_an_absent_key_is_none(records: Records) -> None:
    assert records.get("user", "nobody") is None


def test_create_stores_version_one_and_get_reads_it_back(records: Records) -> None:
    doc = {"roles": ["admin"], "n": 3, "ok": True, "none": None, "name": "Zoë ✓"}
    assert records.create("user", "alice", doc) == Item("alice", 1, doc)
    assert records.get("user", "alice") == Item("alice", 1, doc)


def test_create_of_an_existing_key_raises_already_exists(records: Records) -> None:
    records.create("user", "alice", {"n": 1})
    with pytest.raises(AlreadyExists) as caught:
        records.create("user", "alice", {"n": 2})
    assert isinstance(caught.value, Conflict)
    assert records.get("user", "alice") == Item("alice", 1, {"n": 1})


def test_kinds_are_separate_namespaces(records: Records) -> None:
    records.create("user", "same", {"kind": "user"})
    records.create("role", "same", {"kind": "role"})
    assert records.get("user", "same").doc == {"kind": "user"}
    assert records.get("role", "same").doc == {"kind": "role"}
    assert [item.key for item in records.list("role").items] == ["same"]


def test_update_at_the_read_version_replaces_the_doc_and_bumps_the_version(
    records: Records,
) -> None:
    records.create("role", "r", {"permissions": []})
    updated = records.update("role", "r", {"permissions": ["x"]}, expected_version=1)
    assert updated == Item("r", 2, {"permissions": ["x"]})
    assert records.get("role", "r") == updated
    assert records.update("role", "r", {"permissions": []}, expected_version=2).version == 3


def test_update_at_a_stale_version_raises_version_conflict(records: Records) -> None:
    records.create("role", "r", {"n": 1})
    records.update("role", "r", {"n": 2}, expected_version=1)
    with pytest.raises(VersionConflict):
        records.update("role", "r", {"n": 3}, expected_version=1)
    assert records.get("role", "r") == Item("r", 2, {"n": 2})


def test_update_of_an_absent_key_raises_not_found(records: Records) -> None:
    with pytest.raises(NotFound):
        records.update("role", "ghost", {}, expected_version=1)
    assert records.get("role", "ghost") is None


def test_delete_removes_the_item(records: Records) -> None:
    records.create("user", "a", {})
    records.delete("user", "a")
    assert records.get("user", "a") is None
    records.create("user", "a", {"again": True})
    assert records.get("user", "a") == Item("a", 1, {"again": True})


def test_delete_of_an_absent_key_raises_not_found(records: Records) -> None:
    with pytest.raises(NotFound):
        records.delete("user", "ghost")
    with pytest.raises(NotFound):
        records.delete("user", "ghost", expected_version=1)


def test_delete_checks_the_expected_version(records: Records) -> None:
    records.create("user", "a", {})
    records.update("user", "a", {"n": 1}, expected_version=1)
    with pytest.raises(VersionConflict):
        records.delete("user", "a", expected_version=1)
    assert records.get("user", "a") is not None
    records.delete("user", "a", expected_version=2)
    assert records.get("user", "a") is None


def test_list_of_an_empty_kind_is_one_empty_page(records: Records) -> None:
    page = records.list("user")
    assert page.items == []
    assert page.next_cursor is None


def test_list_returns_keys_in_utf8_byte_order(records: Records) -> None:
    keys = ["bob", "Zed", "alice", "émile", "a.b", "a-b", "A", "bob2", "0"]
    for key in keys:
        records.create("user", key, {"key": key})
    listed = records.list("user").items
    assert [item.key for item in listed] == sorted(keys, key=lambda k: k.encode())
    assert all(item.doc == {"key": item.key} and item.version == 1 for item in listed)


def test_paging_walks_every_item_once(records: Records) -> None:
    keys = [f"user{i:02d}" for i in range(8)]
    for key in reversed(keys):
        records.create("user", key, {})
    seen, cursor, pages = [], None, 0
    while True:
        page = records.list("user", limit=3, cursor=cursor)
        pages += 1
        assert len(page.items) <= 3
        seen += [item.key for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
        assert isinstance(cursor, str)
    assert pages == 3
    assert seen == keys


def test_a_full_last_page_has_no_cursor(records: Records) -> None:
    for i in range(4):
        records.create("role", f"r{i}", {})
    first = records.list("role", limit=2)
    second = records.list("role", limit=2, cursor=first.next_cursor)
    assert [item.key for item in second.items] == ["r2", "r3"]
    assert second.next_cursor is None


def test_descending_paging_walks_every_item_once_in_reverse_byte_order(
    records: Records,
) -> None:
    keys = ["bob", "Zed", "alice", "émile", "a.b", "A", "bob2", "0"]
    for key in keys:
        records.create("model", key, {})
    other = records.create("other", "zzz", {})
    seen, cursor, pages = [], None, 0
    while True:
        page = records.list("model", limit=3, cursor=cursor, descending=True)
        pages += 1
        seen += [item.key for item in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert pages == 3
    assert seen == sorted(keys, key=lambda k: k.encode(), reverse=True)
    assert other.key not in seen


def test_a_cursor_only_pages_the_direction_it_came_from(records: Records) -> None:
    for key in ("a", "b", "c"):
        records.create("user", key, {})
    forward = records.list("user", limit=1).next_cursor
    backward = records.list("user", limit=1, descending=True).next_cursor
    assert forward is not None and backward is not None
    assert [item.key for item in records.list("user", cursor=backward, descending=True).items] == [
        "b",
        "a",
    ]
    with pytest.raises(Invalid):
        records.list("user", cursor=forward, descending=True)
    with pytest.raises(Invalid):
        records.list("user", cursor=backward)


def test_scan_yields_everything_across_pages(records: Records) -> None:
    for i in range(5):
        records.create("role", f"r{i}", {"i": i})
    assert [item.doc["i"] for item in records.scan("role", page_size=2)] == list(range(5))


@pytest.mark.parametrize(
    "cursor",
    ["", "garbage!", "bm90IGpzb24", "eyJraW5kIjoidXNlciJ9", "W10", "eyJ4IjoxfQ"],
    ids=["empty", "not-base64", "not-json", "no-after", "json-list", "other-shape"],
)
def test_a_malformed_cursor_raises_invalid(records: Records, cursor: str) -> None:
    records.create("user", "a", {})
    with pytest.raises(Invalid):
        records.list("user", cursor=cursor)


def test_a_cursor_of_another_kind_is_rejected(records: Records) -> None:
    for key in ("a", "b"):
        records.create("user", key, {})
    cursor = records.list("user", limit=1).next_cursor
    assert cursor is not None
    with pytest.raises(Invalid):
        records.list("role", cursor=cursor)


def test_concurrent_creates_of_one_key_have_exactly_one_winner(records: Records) -> None:
    winners: list[int] = []
    losers: list[int] = []

    def create(i: int) -> None:
        try:
            records.create("user", "contested", {"by": i})
            winners.append(i)
        except AlreadyExists:
            losers.append(i)

    run_together(THREADS, create)
    assert len(winners) == 1
    assert len(losers) == THREADS - 1
    assert records.get("user", "contested") == Item("contested", 1, {"by": winners[0]})


def test_concurrent_updates_from_one_version_have_exactly_one_winner(
    records: Records,
) -> None:
    records.create("login_throttle", "x", {"failures": 0})
    winners: list[int] = []

    def update(i: int) -> None:
        try:
            records.update("login_throttle", "x", {"failures": i}, expected_version=1)
            winners.append(i)
        except VersionConflict:
            pass

    run_together(THREADS, update)
    assert len(winners) == 1
    assert records.get("login_throttle", "x") == Item("x", 2, {"failures": winners[0]})


def test_sqlite_keeps_records_across_reopening_and_connections(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite3"
    first = SqliteRecords(path)
    first.create("user", "a", {"n": 1})
    second = SqliteRecords(path)
    with pytest.raises(AlreadyExists):
        second.create("user", "a", {"n": 2})
    first.close()
    second.close()
    assert SqliteRecords(path).get("user", "a") == Item("a", 1, {"n": 1})
