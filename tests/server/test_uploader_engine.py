"""The uploader's part engine against real part URLs: `FolderBlobs` served by uvicorn.

No API is involved: the URLs come straight from `FolderBlobs.part_url`, as the checkpoints
service would hand them out, and the upload is completed with `complete_multipart`. Faults
come from a real proxy in front of the part server (tests/server/part_proxy.py), so the
engine runs unchanged over real sockets.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from aws_extension.client.transfer import (
    FileChanged,
    FilePlan,
    PartEngine,
    PartFailed,
    UrlBook,
    make_session,
)
from aws_extension.middleware.blobs.folder import FolderBlobs
from tests.server.part_proxy import PartProxy, running_proxy
from tests.server.test_blobs_contract import FakeClock, folder_server

ROOT = Path(__file__).resolve().parents[2]
KEY = "checkpoints/engine/model.safetensors"
PART = 64 * 1024


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def blobs(tmp_path: Path, clock: FakeClock) -> Iterator[FolderBlobs]:
    with folder_server(tmp_path / "blobs", clock, min_part_size=PART) as served:
        yield served


@pytest.fixture
def proxy() -> Iterator[PartProxy]:
    with running_proxy() as running:
        yield running


def make_file(path: Path, size: int, seed: int = 7) -> bytes:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


def plan_of(path: Path, part_size: int = PART) -> FilePlan:
    status = path.stat()
    return FilePlan(path, status.st_size, part_size, status.st_mtime_ns)


class Urls:
    """Signs part URLs like the service would, and counts the batches asked for."""

    def __init__(self, blobs: FolderBlobs, upload_id: str, expires_in: int = 3600) -> None:
        self.blobs = blobs
        self.upload_id = upload_id
        self.expires_in = expires_in
        self.batches: list[list[int]] = []

    def __call__(self, numbers: list[int]) -> tuple[dict[int, str], float | None]:
        self.batches.append(list(numbers))
        urls = {
            n: self.blobs.part_url(KEY, self.upload_id, n, expires_in=self.expires_in)
            for n in numbers
        }
        return urls, None

    def book(self, plan: FilePlan) -> UrlBook:
        return UrlBook(self, range(1, plan.part_count + 1))


def proxied_session(proxy: PartProxy, workers: int) -> requests.Session:
    session = make_session(workers)
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    return session


def complete(blobs: FolderBlobs, upload_id: str, etags: dict[int, str]) -> bytes:
    blobs.complete_multipart(KEY, upload_id, sorted(etags.items()))
    with blobs.open_read(KEY) as stream:
        return stream.read()


def test_sends_every_part_in_parallel_and_hashes_the_file(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    data = make_file(tmp_path / "model.bin", 10 * PART + 123)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    urls = Urls(blobs, upload_id)
    etags: dict[int, str] = {}
    ticks: list[tuple[int, int, int]] = []
    with PartEngine(workers=4, session=proxied_session(proxy, 4)) as engine:
        digest = engine.run(
            plan,
            range(1, 12),
            urls.book(plan),
            on_part=etags.__setitem__,
            on_tick=lambda *t: ticks.append(t),
            tick_seconds=0.01,
        )
    assert digest == hashlib.sha256(data).hexdigest()
    assert sorted(etags) == list(range(1, 12))
    assert complete(blobs, upload_id, etags) == data
    assert dict(proxy.puts) == {n: 1 for n in range(1, 12)}
    assert ticks[-1] == (len(data), len(data), 11)
    # One batch of URLs served all parts.
    assert [sorted(batch) for batch in urls.batches] == [list(range(1, 12))]


def test_resume_sends_only_the_missing_parts_but_hashes_all(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    data = make_file(tmp_path / "model.bin", 6 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    etags: dict[int, str] = {}
    with PartEngine(workers=2, session=proxied_session(proxy, 2)) as engine:
        engine.run(plan, [1, 2, 4], Urls(blobs, upload_id).book(plan), on_part=etags.__setitem__)
        first = dict(proxy.puts)
        digest = engine.run(
            plan, [3, 5, 6], Urls(blobs, upload_id).book(plan), on_part=etags.__setitem__
        )
    assert first == {1: 1, 2: 1, 4: 1}
    assert dict(proxy.puts) == {n: 1 for n in range(1, 7)}
    assert digest == hashlib.sha256(data).hexdigest()
    assert complete(blobs, upload_id, etags) == data


def test_a_part_that_fails_twice_then_succeeds_completes_the_upload(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    data = make_file(tmp_path / "model.bin", 4 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    proxy.fail(2, 500, 503)
    etags: dict[int, str] = {}
    with PartEngine(workers=2, backoff=0.01, session=proxied_session(proxy, 2)) as engine:
        engine.run(plan, range(1, 5), Urls(blobs, upload_id).book(plan), on_part=etags.__setitem__)
    assert proxy.puts[2] == 3
    assert proxy.forwarded[2] == 1
    assert complete(blobs, upload_id, etags) == data


def test_a_part_failing_every_attempt_fails_in_words_without_the_url(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    make_file(tmp_path / "model.bin", 3 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    proxy.fail(3, *[502] * 10)
    with (
        PartEngine(workers=2, attempts=3, backoff=0.01, session=proxied_session(proxy, 2)) as e,
        pytest.raises(PartFailed) as failed,
    ):
        e.run(plan, range(1, 4), Urls(blobs, upload_id).book(plan))
    assert proxy.puts[3] == 3
    message = str(failed.value)
    last = "the server answered 502 Bad Gateway"
    assert message == f"Part 3 could not be stored after 3 attempts (last: {last})."
    assert "sig=" not in message and upload_id not in message


def test_a_part_of_an_upload_the_server_forgot_fails_at_once(
    tmp_path: Path, blobs: FolderBlobs
) -> None:
    make_file(tmp_path / "model.bin", 2 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    urls = Urls(blobs, upload_id)
    book = urls.book(plan)
    book.add(*urls([1, 2]))
    blobs.abort_multipart(KEY, upload_id)
    with PartEngine(workers=1, backoff=0.01) as engine, pytest.raises(PartFailed) as failed:
        engine.run(plan, [1, 2], book)
    assert failed.value.status == 404
    assert "no longer knows this upload" in str(failed.value)


def test_expired_urls_are_replaced_without_counting_as_failures(
    tmp_path: Path, blobs: FolderBlobs, clock: FakeClock, proxy: PartProxy
) -> None:
    data = make_file(tmp_path / "model.bin", 3 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    urls = Urls(blobs, upload_id, expires_in=60)
    book = urls.book(plan)
    # URLs signed now, used after they expired: the part server itself refuses them.
    book.add(*urls([1, 2, 3]))
    clock.advance(120)
    etags: dict[int, str] = {}
    with PartEngine(workers=1, attempts=1, session=proxied_session(proxy, 1)) as engine:
        engine.run(plan, [1, 2, 3], book, on_part=etags.__setitem__)
    assert complete(blobs, upload_id, etags) == data
    # Each part: one PUT refused as expired, one with a fresh URL.
    assert dict(proxy.puts) == {1: 2, 2: 2, 3: 2}
    assert len(urls.batches) == 4  # the first signing, then a renewal per refused URL


def test_urls_about_to_expire_are_renewed_in_one_batch_before_use(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    make_file(tmp_path / "model.bin", 5 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    urls = Urls(blobs, upload_id)
    book = urls.book(plan)
    urls_now, _ = urls([1, 2, 3, 4, 5])
    book.add(urls_now, time.time() + 30)  # within the 60 s margin
    with PartEngine(workers=1, session=proxied_session(proxy, 1)) as engine:
        engine.run(plan, range(1, 6), book)
    assert urls.batches[1:] == [[1, 2, 3, 4, 5]]
    assert dict(proxy.puts) == {n: 1 for n in range(1, 6)}


def test_a_wrong_etag_is_retried_and_then_refused(tmp_path: Path, blobs: FolderBlobs) -> None:
    make_file(tmp_path / "model.bin", PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    session = make_session(1)
    session.trust_env = False
    # A hook stands in for a part server that stores other bytes than those sent.
    session.hooks["response"].append(lambda r, *a, **k: r.headers.__setitem__("ETag", '"0"'))
    with (
        PartEngine(workers=1, attempts=2, backoff=0.01, session=session) as engine,
        pytest.raises(PartFailed, match="checksum"),
    ):
        engine.run(plan, [1], Urls(blobs, upload_id).book(plan))


def test_a_raising_callback_stops_the_workers_and_propagates(
    tmp_path: Path, blobs: FolderBlobs, proxy: PartProxy
) -> None:
    make_file(tmp_path / "model.bin", 20 * PART)
    plan = plan_of(tmp_path / "model.bin")
    upload_id = blobs.create_multipart(KEY)
    stored: list[int] = []

    def on_part(number: int, etag: str) -> None:
        stored.append(number)
        if len(stored) == 3:
            raise KeyboardInterrupt

    with (
        PartEngine(workers=3, session=proxied_session(proxy, 3)) as engine,
        pytest.raises(KeyboardInterrupt),
    ):
        engine.run(plan, range(1, 21), Urls(blobs, upload_id).book(plan), on_part=on_part)
    assert len(stored) == 3
    assert not [t for t in threading.enumerate() if t.name.startswith("upload-")]
    # At most the parts on their way when it stopped went out after the third.
    assert sum(proxy.puts.values()) <= 3 + 3 + 1


def test_a_file_changed_while_reading_is_refused(tmp_path: Path, blobs: FolderBlobs) -> None:
    path = tmp_path / "model.bin"
    make_file(path, 3 * PART)
    plan = plan_of(path)
    os.utime(path, ns=(plan.mtime_ns + 10**9, plan.mtime_ns + 10**9))
    upload_id = blobs.create_multipart(KEY)
    with PartEngine(workers=1) as engine, pytest.raises(FileChanged):
        engine.run(plan, [1, 2, 3], Urls(blobs, upload_id).book(plan))


_CHILD = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from aws_extension.client.transfer import FilePlan, PartEngine, UrlBook

    path, part_size, urls = Path(sys.argv[1]), int(sys.argv[2]), json.load(sys.stdin)
    status = path.stat()
    plan = FilePlan(path, status.st_size, part_size, status.st_mtime_ns)
    book = UrlBook(lambda numbers: ({}, None), [])
    book.add({int(n): url for n, url in urls.items()}, None)
    etags = {}
    with PartEngine(workers=4) as engine:
        engine.run(plan, range(1, plan.part_count + 1), book, on_part=etags.__setitem__)
    print(json.dumps({"etags": etags, "status": Path("/proc/self/status").read_text()}))
    """
)


def peak_rss(proc_status: str) -> int:
    """VmHWM in bytes: the peak RSS of this process image alone.

    Not `ru_maxrss`: the kernel carries the forking parent's peak into a child over exec,
    so a child of a big pytest process would report the parent's size.
    """
    line = next(line for line in proc_status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def test_memory_stays_bounded_by_workers_and_part_size(tmp_path: Path, blobs: FolderBlobs) -> None:
    """256 MiB in 8 MiB parts with 4 workers: about 5 parts in memory, never the file."""
    path = tmp_path / "big.bin"
    size = 256 * 1024 * 1024
    part = 8 * 1024 * 1024
    with path.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(size)
    upload_id = blobs.create_multipart(KEY)
    count = size // part
    urls = {n: blobs.part_url(KEY, upload_id, n, expires_in=600) for n in range(1, count + 1)}
    child = subprocess.run(
        [sys.executable, "-c", _CHILD, str(path), str(part)],
        input=json.dumps(urls),
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "NO_PROXY": "*"},
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(child.stdout)
    zero_part = hashlib.md5(bytes(part), usedforsecurity=False).hexdigest()
    assert set(result["etags"].values()) == {f'"{zero_part}"'}
    peak = peak_rss(result["status"])
    # About 30 MiB of interpreter and requests plus 5 buffers of 8 MiB.
    assert peak < 100 * 1024 * 1024, f"peak RSS {peak / 2**20:.0f} MiB"
    etags = {int(n): etag for n, etag in result["etags"].items()}
    assert blobs.complete_multipart(KEY, upload_id, sorted(etags.items())) == size
