"""The model cache against a real HTTP file server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from aws_extension.endpoint.errors import ChecksumMismatch, FetchFailed, FetchRefused
from aws_extension.endpoint.invocation import ModelRef
from aws_extension.endpoint.model_cache import ModelCache
from tests.endpoint.file_server import FileServer, file_server

MIB = 1024 * 1024


@pytest.fixture
def server() -> FileServer:
    with file_server() as running:
        yield running


def model(server: FileServer, folder: Path, name: str, size: int, fill: int) -> ModelRef:
    path = folder / name
    path.write_bytes(bytes([fill]) * size)
    url = server.publish(path)
    return ModelRef("Lora", name, hashlib.sha256(path.read_bytes()).hexdigest(), url)


def cached(cache: ModelCache) -> set[str]:
    return {entry.name for entry in cache.root.iterdir() if entry.is_file()}


def test_concurrent_jobs_share_one_download(server: FileServer, tmp_path: Path) -> None:
    ref = model(server, tmp_path, "a.safetensors", 3 * MIB, 1)
    server.chunk_delay = 0.05  # slow enough that all eight overlap
    cache = ModelCache(tmp_path / "cache")
    barrier = threading.Barrier(8)

    def use() -> bytes:
        barrier.wait()
        with cache.lease([ref]) as (path,):
            return path.read_bytes()

    with ThreadPoolExecutor(8) as pool:
        contents = list(pool.map(lambda _: use(), range(8)))
    assert server.requests["/a.safetensors"] == 1
    assert all(content == contents[0] and len(content) == 3 * MIB for content in contents)
    assert cached(cache) == {f"{ref.sha256}.safetensors"}
    with cache.lease([ref]):
        pass
    assert server.requests["/a.safetensors"] == 1  # a later job finds it on disk


def test_checksum_mismatch_is_refused_for_every_waiter_and_leaves_nothing(
    server: FileServer, tmp_path: Path
) -> None:
    ref = model(server, tmp_path, "b.safetensors", MIB, 2)
    wrong = ModelRef("Lora", ref.name, "f" * 64, ref.url)
    cache = ModelCache(tmp_path / "cache")
    server.chunk_delay = 0.05
    errors: list[BaseException] = []

    def use() -> None:
        try:
            with cache.lease([wrong]):
                pass
        except ChecksumMismatch as error:
            errors.append(error)

    threads = [threading.Thread(target=use) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 3
    assert "the job says ffffffffffffffff" in errors[0].detail
    assert cached(cache) == set()
    assert list((cache.root / ".partial").iterdir()) == []


def test_refused_and_failed_downloads_say_which(server: FileServer, tmp_path: Path) -> None:
    ref = model(server, tmp_path, "c.safetensors", 10, 3)
    cache = ModelCache(tmp_path / "cache")
    server.statuses["/c.safetensors"] = 404
    with pytest.raises(FetchRefused, match="answered 404") as refused, cache.lease([ref]):
        pass
    assert ref.url not in refused.value.detail  # a presigned URL is a credential
    server.statuses["/c.safetensors"] = 500
    with pytest.raises(FetchFailed, match="answered 500"), cache.lease([ref]):
        pass
    del server.statuses["/c.safetensors"]
    with cache.lease([ref]) as (path,):
        assert path.read_bytes() == bytes([3]) * 10


def test_a_stalled_download_times_out(server: FileServer, tmp_path: Path) -> None:
    ref = model(server, tmp_path, "d.safetensors", 10, 4)
    server.stalls["/d.safetensors"] = 3.0
    cache = ModelCache(tmp_path / "cache", read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(FetchFailed, match=r"ConnectionError|Timeout"), cache.lease([ref]):
        pass
    assert time.monotonic() - started < 2.5


def test_least_recently_used_files_are_evicted_to_fit_the_budget(
    server: FileServer, tmp_path: Path
) -> None:
    refs = [model(server, tmp_path, f"m{i}.safetensors", MIB, i) for i in range(4)]
    cache = ModelCache(tmp_path / "cache", budget_bytes=int(2.5 * MIB))
    for ref in refs[:2]:
        with cache.lease([ref]):
            pass
        time.sleep(0.02)  # distinct mtimes
    with cache.lease([refs[0]]):  # m0 is now more recently used than m1
        pass
    time.sleep(0.02)
    with cache.lease([refs[2]]):
        pass
    assert cached(cache) == {f"{refs[0].sha256}.safetensors", f"{refs[2].sha256}.safetensors"}


def test_models_in_use_are_never_evicted(server: FileServer, tmp_path: Path) -> None:
    refs = [model(server, tmp_path, f"u{i}.safetensors", MIB, 10 + i) for i in range(3)]
    cache = ModelCache(tmp_path / "cache", budget_bytes=int(1.5 * MIB))
    with cache.lease(refs[:2]) as paths:  # one job holding two models, over the budget
        with cache.lease([refs[2]]) as (third,):
            assert all(path.exists() for path in [*paths, third])
        assert all(path.exists() for path in paths)
    with cache.lease([refs[2]]):
        pass
    assert len(cached(cache)) == 1


def test_leftover_partials_of_a_dead_process_are_removed(tmp_path: Path) -> None:
    partial = tmp_path / "cache" / ".partial"
    partial.mkdir(parents=True)
    (partial / "x.safetensors.0123").write_bytes(b"half")
    ModelCache(tmp_path / "cache")
    assert os.listdir(partial) == []
