"""The uploader's part engine against URLs that really expire: `FolderBlobs` on a fake clock.

The uploader's behaviour is tested where it runs in production, in the client environment
against the real local stack (tests/client/test_uploader*.py). The one thing that needs the
server's insides is an expiry refusal from the part server itself: the stack's clock is real
and its URLs live an hour, so the client tests have a proxy answer "expired" in the stack's
words instead. Here the URLs are signed by `FolderBlobs` (served by uvicorn) on a clock the
test moves, and a real proxy (tests/support/part_proxy.py) counts the PUTs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_extension.client.transfer import FilePlan, PartEngine, UrlBook, make_session
from aws_extension.middleware.blobs.folder import FolderBlobs
from tests.server.test_blobs_contract import FakeClock, folder_server
from tests.support.part_proxy import PartProxy, running_proxy

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


class Urls:
    """Signs part URLs like the service would, and counts the batches asked for."""

    def __init__(self, blobs: FolderBlobs, upload_id: str, expires_in: int) -> None:
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


def test_urls_the_part_server_finds_expired_are_replaced_without_counting_as_failures(
    tmp_path: Path, blobs: FolderBlobs, clock: FakeClock, proxy: PartProxy
) -> None:
    path = tmp_path / "model.bin"
    data = random.Random(7).randbytes(3 * PART)
    path.write_bytes(data)
    plan = FilePlan(path, len(data), PART, path.stat().st_mtime_ns)
    upload_id = blobs.create_multipart(KEY)
    urls = Urls(blobs, upload_id, expires_in=60)
    book = UrlBook(urls, range(1, 4))
    # URLs signed now, used after they expired: the part server itself refuses them.
    book.add(*urls([1, 2, 3]))
    clock.advance(120)
    session = make_session(1)
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    etags: dict[int, str] = {}
    with session, PartEngine(workers=1, attempts=1, session=session) as engine:
        engine.run(plan, [1, 2, 3], book, on_part=etags.__setitem__)
    blobs.complete_multipart(KEY, upload_id, sorted(etags.items()))
    with blobs.open_read(KEY) as stream:
        assert stream.read() == data
    # Each part: one PUT refused as expired, one with a fresh URL.
    assert dict(proxy.puts) == {1: 2, 2: 2, 3: 2}
    assert proxy.forwarded == proxy.puts  # the refusals came from the part server
    assert len(urls.batches) == 4  # the first signing, then a renewal per refused URL
