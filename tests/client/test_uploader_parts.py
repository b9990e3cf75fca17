"""The uploader's small parts on their own: resume states, URL book, rate meter, file plan."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from aws_extension.client.transfer import (
    FilePlan,
    PartFailed,
    RateMeter,
    UrlBook,
    parse_expiry,
    sha256_file,
)
from aws_extension.client.upload_state import UploadState, UploadStates

API = "https://api.test/prod"


def state_for(path: Path, **changes: object) -> UploadState:
    values: dict = {
        "api_url": API,
        "path": str(path.resolve()),
        "size": 2500,
        "mtime_ns": 123,
        "type": "Lora",
        "name": "model.safetensors",
        "checkpoint_id": "ck1",
        "upload_id": "up1",
        "part_size": 1000,
        "part_count": 3,
        "parts": {1: '"aa"', 3: '"cc"'},
    }
    values.update(changes)
    return UploadState(**values)


# -- resume states -----------------------------------------------------------------------


def test_a_state_round_trips_and_knows_what_is_missing(tmp_path: Path) -> None:
    states = UploadStates(tmp_path / "states")
    state = state_for(tmp_path / "model.safetensors")
    file = states.save(state)
    assert file == states.file_for(API, tmp_path / "model.safetensors")
    loaded = states.load(API, tmp_path / "model.safetensors")
    assert loaded == state
    assert loaded.missing() == [2]
    assert loaded.bytes_stored() == 1000 + 500
    assert loaded.matches(2500, 123) and not loaded.matches(2500, 124)
    # Nothing but the state file is left in the folder: no temp files.
    assert [p.name for p in (tmp_path / "states").iterdir()] == [file.name]
    # Never a URL: they are credentials.
    assert "http" not in json.dumps(json.loads(file.read_text())["parts"])


def test_states_are_per_server_and_per_file(tmp_path: Path) -> None:
    states = UploadStates(tmp_path)
    one = states.file_for(API, tmp_path / "a.bin")
    assert one != states.file_for("http://127.0.0.1:8080", tmp_path / "a.bin")
    assert one != states.file_for(API, tmp_path / "b.bin")
    assert one == states.file_for(API, tmp_path / "x" / ".." / "a.bin")


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"\xff\xfe",
        b'{"version": 99}',
        b"[]",
        json.dumps({"version": 1, "api_url": API}).encode(),
    ],
)
def test_an_unusable_state_is_removed_and_ignored(tmp_path: Path, content: bytes) -> None:
    states = UploadStates(tmp_path)
    file = states.file_for(API, tmp_path / "model.bin")
    file.write_bytes(content)
    assert states.load(API, tmp_path / "model.bin") is None
    assert not file.exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"part_count": 4},  # does not add up to the size
        {"parts": {7: '"x"'}},  # a part beyond the end
        {"size": True},  # a bool is not a size
        {"part_size": 0},
    ],
)
def test_an_inconsistent_state_is_refused(tmp_path: Path, changes: dict) -> None:
    data = state_for(tmp_path / "m.bin").to_json()
    data.update({k: v for k, v in changes.items() if k != "parts"})
    if "parts" in changes:
        data["parts"] = {str(k): v for k, v in changes["parts"].items()}
    assert UploadState.from_json(data) is None


def test_a_state_of_another_file_under_the_same_name_is_refused(tmp_path: Path) -> None:
    states = UploadStates(tmp_path)
    state = state_for(tmp_path / "a.bin")
    states.file_for(API, tmp_path / "b.bin").write_text(json.dumps(state.to_json()))
    assert states.load(API, tmp_path / "b.bin") is None


def test_delete_is_quiet_when_there_is_nothing(tmp_path: Path) -> None:
    states = UploadStates(tmp_path / "never-made")
    states.delete(API, tmp_path / "a.bin")
    assert not (tmp_path / "never-made").exists()


# -- file plan and hashing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "part_size", "count", "last"),
    [(1, 10, 1, 1), (10, 10, 1, 10), (11, 10, 2, 1), (25, 10, 3, 5)],
)
def test_a_file_plan_cuts_parts(size: int, part_size: int, count: int, last: int) -> None:
    plan = FilePlan(Path("x"), size, part_size, 0)
    assert plan.part_count == count
    assert plan.part_length(count) == last
    assert all(plan.part_length(n) == part_size for n in range(1, count))


def test_sha256_file_reports_bytes_as_it_goes(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1000)
    seen: list[int] = []
    digest = sha256_file(path, seen.append, chunk=1024)
    assert digest == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert seen == [1024, 2048, 3000]


# -- the URL book ----------------------------------------------------------------------------


class Fetcher:
    def __init__(self, expires_at: float | None = None) -> None:
        self.batches: list[list[int]] = []
        self.expires_at = expires_at
        self.serial = 0

    def __call__(self, numbers: list[int]) -> tuple[dict[int, str], float | None]:
        self.batches.append(numbers)
        self.serial += 1
        return {n: f"u{n}.{self.serial}" for n in numbers}, self.expires_at


def test_missing_urls_are_fetched_in_batches_of_the_parts_still_to_send() -> None:
    fetch = Fetcher()
    book = UrlBook(fetch, [2, 4, 6, 8, 10], batch=3)
    # A worker may ask for a later part first: the earlier ones come along.
    assert book.get(4) == "u4.1"
    assert fetch.batches == [[4, 2, 6]]
    assert book.get(2) == "u2.1" and book.get(6) == "u6.1"
    assert book.get(10) == "u10.2"
    assert fetch.batches[1] == [10, 8]


def test_urls_of_stored_parts_are_never_renewed() -> None:
    now = [0.0]
    fetch = Fetcher(expires_at=100.0)
    book = UrlBook(fetch, [1, 2, 3], margin=10, clock=lambda: now[0])
    book.get(1)
    book.done(1)
    book.done(2)
    now[0] = 95.0  # every URL is stale now
    book.get(3)
    assert fetch.batches == [[1, 2, 3], [3]]


def test_urls_near_expiry_are_renewed_before_use() -> None:
    now = [1000.0]
    fetch = Fetcher(expires_at=2000.0)
    book = UrlBook(fetch, [1, 2], margin=60, clock=lambda: now[0])
    book.add({1: "old1", 2: "old2"}, 1050.0)  # within the margin already
    assert book.get(1) == "u1.1"
    assert fetch.batches == [[1, 2]]
    assert book.get(2) == "u2.1"
    now[0] = 1945.0
    assert book.get(2) == "u2.2"


def test_urls_without_expiry_are_used_until_refused() -> None:
    fetch = Fetcher()
    book = UrlBook(fetch, [1])
    book.add({1: "given"}, None)
    assert book.get(1) == "given"
    book.discard(1, "someone else's")  # a URL another worker already replaced stays
    assert book.get(1) == "given"
    book.discard(1, "given")
    assert book.get(1) == "u1.1"


def test_a_server_that_sends_no_url_for_the_part_fails_in_words() -> None:
    book = UrlBook(lambda numbers: ({}, None), [1])
    with pytest.raises(PartFailed, match="no URL for part 1"):
        book.get(1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-05-01T12:00:00Z", 1714564800.0),
        ("2024-05-01T12:00:00+00:00", 1714564800.0),
        ("2024-05-01T14:00:00+02:00", 1714564800.0),
        ("2024-05-01T12:00:00", 1714564800.0),
        (1714564800, 1714564800.0),
        ("tomorrow", None),
        (None, None),
        (True, None),
    ],
)
def test_expiry_times_are_read_from_iso_text_or_numbers(value: object, expected: object) -> None:
    assert parse_expiry(value) == expected


# -- rate ----------------------------------------------------------------------------------------


def test_the_rate_is_a_moving_average_over_the_window() -> None:
    now = [0.0]
    meter = RateMeter(window=5.0, clock=lambda: now[0])
    assert meter.add(0) is None
    now[0] = 0.2
    assert meter.add(100) is None  # under half a second: no figure yet
    for second in range(1, 11):
        now[0] = float(second)
        rate = meter.add(second * 1000)
    assert rate == pytest.approx(1000.0)
    # The window forgets the old pace.
    for second in range(11, 17):
        now[0] = float(second)
        rate = meter.add(10_000 + (second - 10) * 4000)
    assert rate == pytest.approx(4000.0)
