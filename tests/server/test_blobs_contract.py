"""One behaviour, two blob backends, used over real HTTP as the client will use them.

`S3Blobs` talks to moto's `ThreadedMotoServer` and `FolderBlobs` is served by uvicorn, both on
127.0.0.1; parts are PUT to the signed URLs with `requests`, like the extension's uploader
does. S3 refuses parts under 5 MiB except the last, so the shared tests use 5 MiB parts.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
import uvicorn
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from fastapi import FastAPI

from aws_extension.middleware.blobs import (
    MIN_PART_SIZE,
    BlobInfo,
    BlobNotFound,
    Blobs,
    BlobTooLarge,
    InvalidKey,
    InvalidPart,
    PartInfo,
    UploadNotFound,
)
from aws_extension.middleware.blobs.folder import FolderBlobs
from aws_extension.middleware.blobs.folder_part_protocol import part_put_protocol
from aws_extension.middleware.blobs.folder_routes import make_blob_router
from aws_extension.middleware.blobs.s3 import S3Blobs
from aws_extension.middleware.errors import Invalid, NotFound
from tests.server.conftest import s3_client

MIB = 1024 * 1024
PART = MIN_PART_SIZE
SECRET = b"blob-test-secret"
KEY = "checkpoints/0123abcd/model.safetensors"
_random = random.Random(20240601)
FIRST = _random.randbytes(PART)
SECOND = _random.randbytes(PART)
LAST = _random.randbytes(1000)


def etag_of(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


class FakeClock:
    """Starts at the real time (moto dates uploads by it) and moves only when told."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Backend:
    blobs: Blobs
    clock: FakeClock


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.trust_env = False  # a proxy from the environment must not see 127.0.0.1
        yield session


@contextmanager
def folder_server(
    root: Path, clock: FakeClock, *, min_part_size: int = MIN_PART_SIZE, threads: bool = True
) -> Iterator[FolderBlobs]:
    """FolderBlobs behind a real uvicorn on a free port, with the router as the lead mounts it.

    With `threads` (the default, as in the local stack) uvicorn runs `part_put_protocol`, so
    part PUTs with a length are received on its threads; without, all go to the route.
    """
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    blobs = FolderBlobs(
        root,
        base_url=f"http://127.0.0.1:{sock.getsockname()[1]}",
        secret=SECRET,
        min_part_size=min_part_size,
        clock=clock,
    )
    app = FastAPI()
    app.include_router(make_blob_router(blobs))
    http = part_put_protocol(blobs) if threads else "auto"
    server = uvicorn.Server(uvicorn.Config(app, http=http, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield blobs
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture(params=["s3", "folder"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = FakeClock()
    if request.param == "s3":
        client = s3_client(request.getfixturevalue("moto_endpoint"))
        bucket = f"blobs-{uuid.uuid4().hex[:16]}"
        client.create_bucket(Bucket=bucket)
        yield Backend(S3Blobs(client, bucket, clock=clock), clock)
        return
    with folder_server(tmp_path / "blobs", clock) as blobs:
        yield Backend(blobs, clock)


def put_part(
    http: requests.Session, blobs: Blobs, key: str, upload_id: str, number: int, data: bytes
) -> str:
    reply = http.put(blobs.part_url(key, upload_id, number, expires_in=300), data=data, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.headers["ETag"]


def download(http: requests.Session, blobs: Blobs, key: str, **kwargs: Any) -> requests.Response:
    return http.get(blobs.download_url(key, expires_in=300), timeout=30, **kwargs)


def read_all(blobs: Blobs, key: str) -> bytes:
    with closing(blobs.open_read(key)) as stream:
        return stream.read()


# -- the contract: both backends -------------------------------------------------------------


def test_multipart_round_trip_joins_the_parts_in_order(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    etags = [
        put_part(http, blobs, KEY, upload_id, number, data)
        for number, data in ((1, FIRST), (2, SECOND), (3, LAST))
    ]
    assert etags == [etag_of(FIRST), etag_of(SECOND), etag_of(LAST)]
    assert blobs.head(KEY) is None

    size = blobs.complete_multipart(KEY, upload_id, list(enumerate(etags, start=1)))

    whole = FIRST + SECOND + LAST
    assert size == len(whole)
    assert blobs.head(KEY) == BlobInfo(len(whole))
    reply = download(http, blobs, KEY)
    assert reply.status_code == 200
    assert reply.content == whole
    assert read_all(blobs, KEY) == whole
    with pytest.raises(UploadNotFound):
        blobs.list_parts(KEY, upload_id)


def test_list_parts_shows_what_is_stored_so_an_upload_can_resume(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    assert blobs.list_parts(KEY, upload_id) == []
    put_part(http, blobs, KEY, upload_id, 1, FIRST)
    put_part(http, blobs, KEY, upload_id, 3, LAST)

    assert blobs.list_parts(KEY, upload_id) == [
        PartInfo(1, etag_of(FIRST), len(FIRST)),
        PartInfo(3, etag_of(LAST), len(LAST)),
    ]

    put_part(http, blobs, KEY, upload_id, 2, SECOND)
    parts = [(part.part_number, part.etag) for part in blobs.list_parts(KEY, upload_id)]
    assert blobs.complete_multipart(KEY, upload_id, parts) == len(FIRST + SECOND + LAST)
    assert read_all(blobs, KEY) == FIRST + SECOND + LAST


def test_a_part_put_again_replaces_the_earlier_bytes(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    put_part(http, blobs, KEY, upload_id, 1, b"first try")
    assert put_part(http, blobs, KEY, upload_id, 1, b"second") == etag_of(b"second")

    assert blobs.list_parts(KEY, upload_id) == [PartInfo(1, etag_of(b"second"), 6)]
    with pytest.raises(InvalidPart):
        blobs.complete_multipart(KEY, upload_id, [(1, etag_of(b"first try"))])
    # ETags are accepted with or without their quotes, as S3 does.
    assert blobs.complete_multipart(KEY, upload_id, [(1, etag_of(b"second").strip('"'))]) == 6
    assert read_all(blobs, KEY) == b"second"


def test_complete_refuses_what_the_stored_parts_do_not_support(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    first = put_part(http, blobs, KEY, upload_id, 1, FIRST)
    small = put_part(http, blobs, KEY, upload_id, 2, LAST)
    last = put_part(http, blobs, KEY, upload_id, 3, LAST)
    refused = {
        "wrong etag": [(1, etag_of(b"something else")), (3, last)],
        "missing part": [(1, first), (3, last), (4, last)],
        "descending": [(3, last), (1, first)],
        "repeated": [(1, first), (1, first), (3, last)],
        "no parts": [],
        "part number 0": [(0, first)],
        "small part before the last": [(2, small), (3, last)],
    }
    for case, parts in refused.items():
        with pytest.raises(InvalidPart) as caught:
            blobs.complete_multipart(KEY, upload_id, parts)
        assert isinstance(caught.value, Invalid), case
        assert blobs.head(KEY) is None, case

    # The failures left the upload open; parts left out of the list are dropped.
    assert blobs.complete_multipart(KEY, upload_id, [(1, first), (3, last)]) == PART + len(LAST)
    assert read_all(blobs, KEY) == FIRST + LAST


def test_completing_twice_raises_upload_not_found(backend: Backend, http: requests.Session) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    etag = put_part(http, blobs, KEY, upload_id, 1, LAST)
    assert blobs.complete_multipart(KEY, upload_id, [(1, etag)]) == len(LAST)
    with pytest.raises(UploadNotFound) as caught:
        blobs.complete_multipart(KEY, upload_id, [(1, etag)])
    assert isinstance(caught.value, NotFound)


def test_abort_drops_the_upload_and_is_idempotent(backend: Backend, http: requests.Session) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    etag = put_part(http, blobs, KEY, upload_id, 1, LAST)

    blobs.abort_multipart(KEY, upload_id)

    with pytest.raises(UploadNotFound):
        blobs.complete_multipart(KEY, upload_id, [(1, etag)])
    with pytest.raises(UploadNotFound):
        blobs.list_parts(KEY, upload_id)
    blobs.abort_multipart(KEY, upload_id)
    assert blobs.head(KEY) is None


def test_head_delete_and_downloads_of_missing_objects(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    assert blobs.put_stream(KEY, io.BytesIO(b"weights"), size_limit=100) == 7
    assert blobs.head(KEY) == BlobInfo(7)

    blobs.delete(KEY)

    assert blobs.head(KEY) is None
    blobs.delete(KEY)
    with pytest.raises(BlobNotFound):
        blobs.open_read(KEY)
    assert download(http, blobs, KEY).status_code == 404
    assert blobs.head("checkpoints/never/stored") is None


def test_download_url_serves_byte_ranges(backend: Backend, http: requests.Session) -> None:
    blobs = backend.blobs
    blobs.put_stream(KEY, io.BytesIO(b"0123456789"), size_limit=100)
    reply = download(http, blobs, KEY, headers={"Range": "bytes=2-5"})
    assert reply.status_code == 206
    assert reply.content == b"2345"


def test_keys_with_spaces_and_unicode_survive_the_urls(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    key = "checkpoints/x1/my model (v2) ✓ 100%+&=.safetensors"
    upload_id = blobs.create_multipart(key)
    etag = put_part(http, blobs, key, upload_id, 1, b"abc")
    assert blobs.complete_multipart(key, upload_id, [(1, etag)]) == 3
    assert download(http, blobs, key).content == b"abc"


def test_put_stream_stores_small_and_multi_part_streams(backend: Backend) -> None:
    blobs = backend.blobs
    assert blobs.put_stream(KEY, io.BytesIO(b"old"), size_limit=10) == 3
    big = FIRST + SECOND + LAST  # over one S3 streaming part: a multipart upload there

    assert blobs.put_stream(KEY, io.BytesIO(big), size_limit=len(big)) == len(big)

    assert read_all(blobs, KEY) == big
    backend.clock.advance(3600)
    assert blobs.sweep_abandoned(0) == 0  # the multipart upload of put_stream was completed


@pytest.mark.parametrize("size", [11, 3 * PART])
def test_put_stream_over_the_limit_leaves_nothing_behind(backend: Backend, size: int) -> None:
    blobs = backend.blobs
    blobs.put_stream(KEY, io.BytesIO(b"old"), size_limit=10)

    with pytest.raises(BlobTooLarge):
        blobs.put_stream(KEY, io.BytesIO(bytes(size)), size_limit=size - 1)

    assert read_all(blobs, KEY) == b"old"
    with pytest.raises(BlobTooLarge):
        blobs.put_stream("checkpoints/new/file", io.BytesIO(bytes(size)), size_limit=size - 1)
    assert blobs.head("checkpoints/new/file") is None
    backend.clock.advance(3600)
    assert blobs.sweep_abandoned(0) == 0  # no multipart upload was left open


def test_sweep_aborts_uploads_older_than_the_limit(
    backend: Backend, http: requests.Session
) -> None:
    blobs = backend.blobs
    upload_id = blobs.create_multipart(KEY)
    put_part(http, blobs, KEY, upload_id, 1, LAST)
    backend.clock.advance(2 * 3600)

    assert blobs.sweep_abandoned(3600) == 1

    with pytest.raises(UploadNotFound):
        blobs.list_parts(KEY, upload_id)
    assert blobs.sweep_abandoned(3600) == 0


@pytest.mark.parametrize(
    "key",
    [
        "",
        "../escape",
        "a/../../b",
        "/etc/passwd",
        "a\\b",
        "a\x00b",
        "a//b",
        "a/./b",
        "a/",
        "k" * 1025,
    ],
)
def test_unsafe_keys_are_refused_everywhere(backend: Backend, key: str) -> None:
    blobs = backend.blobs
    calls: list[Callable[[], object]] = [
        lambda: blobs.create_multipart(key),
        lambda: blobs.head(key),
        lambda: blobs.delete(key),
        lambda: blobs.open_read(key),
        lambda: blobs.download_url(key, expires_in=60),
        lambda: blobs.put_stream(key, io.BytesIO(b"x"), size_limit=10),
    ]
    for call in calls:
        with pytest.raises(InvalidKey):
            call()


@pytest.mark.parametrize("number", [0, 10_001])
def test_part_numbers_run_from_1_to_10000(backend: Backend, number: int) -> None:
    upload_id = backend.blobs.create_multipart(KEY)
    with pytest.raises(InvalidPart):
        backend.blobs.part_url(KEY, upload_id, number, expires_in=60)


# -- S3 only -----------------------------------------------------------------------------------


def test_s3_sweep_compares_each_uploads_initiated_time() -> None:
    """moto reports one fixed Initiated time for every upload, so the ages are stubbed here."""
    client = s3_client(None)
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    # A key `validate_key` refuses, written by some other tool: swept all the same.
    old = {"Key": "a//old", "UploadId": "u-old", "Initiated": now - timedelta(hours=2)}
    young = {"Key": "a/young", "UploadId": "u-young", "Initiated": now - timedelta(minutes=5)}
    with Stubber(client) as stub:
        stub.add_response("list_multipart_uploads", {"Uploads": [old, young]}, {"Bucket": "bucket"})
        stub.add_response(
            "abort_multipart_upload", {}, {"Bucket": "bucket", "Key": "a//old", "UploadId": "u-old"}
        )
        assert S3Blobs(client, "bucket", clock=now.timestamp).sweep_abandoned(3600) == 1
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "raised"),
    [
        ("InvalidPart", InvalidPart),
        ("InvalidPartOrder", InvalidPart),
        ("EntityTooSmall", InvalidPart),
        ("NoSuchUpload", UploadNotFound),
        ("AccessDenied", ClientError),
    ],
)
def test_s3_errors_at_completion_become_domain_errors(code: str, raised: type[Exception]) -> None:
    """S3 re-checks the ETags; a part replaced after `list_parts` fails there, not before."""
    client = s3_client(None)
    etag = etag_of(b"part")
    with Stubber(client) as stub:
        stub.add_response(
            "list_parts",
            {"Parts": [{"PartNumber": 1, "ETag": etag, "Size": 4}], "IsTruncated": False},
            {"Bucket": "bucket", "Key": KEY, "UploadId": "u"},
        )
        stub.add_client_error("complete_multipart_upload", service_error_code=code)
        with pytest.raises(raised):
            S3Blobs(client, "bucket").complete_multipart(KEY, "u", [(1, etag)])


# -- the folder backend and its routes ------------------------------------------------------


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["threads", "route"])
def folder(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[FolderBlobs]:
    """A folder backend with 1 KiB minimum parts, so these tests can use small parts; its
    part PUTs received by `part_put_protocol`'s threads (as in the local stack) or by the
    route in `folder_routes`, which must answer alike."""
    threads = request.param == "threads"
    with folder_server(tmp_path / "blobs", clock, min_part_size=1024, threads=threads) as blobs:
        yield blobs


def problem(reply: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert body["code"] == code
    assert body["detail"]
    return body


def with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    query.update(changes)
    return parts._replace(query=urlencode(query)).geturl()


def forge(method: str, key: str, upload_id: str | None, number: int | None, expires: int) -> str:
    """The documented signature: HMAC-SHA256 over a JSON array of the signed fields."""
    message = json.dumps(
        [method, key, upload_id, number, expires], ensure_ascii=False, separators=(",", ":")
    )
    return hmac.new(SECRET, message.encode(), hashlib.sha256).hexdigest()


def test_tampered_part_urls_are_refused_with_403(
    folder: FolderBlobs, http: requests.Session
) -> None:
    upload_id = folder.create_multipart(KEY)
    url = folder.part_url(KEY, upload_id, 1, expires_in=300)
    query = parse_qs(urlsplit(url).query)
    sig, expires = query["sig"][0], int(query["expires"][0])
    download_sig = parse_qs(urlsplit(folder.download_url(KEY, expires_in=300)).query)["sig"][0]
    forged = {
        "altered signature": with_query(url, sig=("0" if sig[0] != "0" else "1") + sig[1:]),
        "no signature": with_query(url, sig=""),
        "other key": with_query(url, key="checkpoints/other/file"),
        "later expiry": with_query(url, expires=str(expires + 10**6)),
        "other part": url.replace(f"/{upload_id}/1?", f"/{upload_id}/2?"),
        "signature of the download": with_query(url, sig=download_sig),
    }
    for case, bad_url in forged.items():
        # A body larger than the socket buffers: the 403 must still reach the client.
        reply = http.put(bad_url, data=FIRST + SECOND, timeout=30)
        assert reply.status_code == 403, case
        problem(reply, 403, "invalid_signature")

    assert folder.list_parts(KEY, upload_id) == []
    assert http.put(url, data=b"fine", timeout=30).status_code == 200


def test_expired_urls_are_refused_with_url_expired(
    folder: FolderBlobs, clock: FakeClock, http: requests.Session
) -> None:
    folder.put_stream(KEY, io.BytesIO(b"data"), size_limit=10)
    upload_id = folder.create_multipart(KEY)
    part_url = folder.part_url(KEY, upload_id, 1, expires_in=60)
    download_url = folder.download_url(KEY, expires_in=60)
    clock.advance(59)
    assert http.get(download_url, timeout=10).content == b"data"

    clock.advance(2)

    problem(http.put(part_url, data=b"late", timeout=10), 403, "url_expired")
    problem(http.get(download_url, timeout=10), 403, "url_expired")
    tampered = with_query(download_url, sig="f" * 64)
    problem(http.get(tampered, timeout=10), 403, "invalid_signature")


def test_a_signed_url_cannot_reach_outside_the_folder(
    folder: FolderBlobs, clock: FakeClock, http: requests.Session, tmp_path: Path
) -> None:
    (tmp_path / "blobs" / "secret.txt").write_text("do not serve")
    folder.put_stream("inside/file", io.BytesIO(b"served"), size_limit=10)
    expires = int(clock()) + 60
    base = folder.download_url("inside/file", expires_in=60).split("?")[0]

    def get(key: str) -> requests.Response:
        query = urlencode(
            {"key": key, "expires": expires, "sig": forge("GET", key, None, None, expires)}
        )
        return http.get(f"{base}?{query}", timeout=10)

    assert get("inside/file").content == b"served"  # the forged signature is the real one
    for key in ("../secret.txt", "inside/../../secret.txt", "/etc/passwd"):
        reply = get(key)
        problem(reply, 400, "invalid")
        assert b"do not serve" not in reply.content

    # An upload id is a folder name too: ".." (sent encoded, so no client folds it away).
    put_url = f"{base.rsplit('/objects', 1)[0]}/parts/%2E%2E/1?" + urlencode(
        {"key": KEY, "expires": expires, "sig": forge("PUT", KEY, "..", 1, expires)}
    )
    problem(http.put(put_url, data=b"x", timeout=10), 404, "not_found")
    assert not list((tmp_path / "blobs").glob("*.part"))
    with pytest.raises(InvalidKey):
        folder.create_multipart("../escape")


def test_parts_of_an_unknown_or_aborted_upload_get_404(
    folder: FolderBlobs, http: requests.Session
) -> None:
    problem(
        http.put(folder.part_url(KEY, uuid.uuid4().hex, 1, expires_in=60), data=b"x", timeout=10),
        404,
        "not_found",
    )
    upload_id = folder.create_multipart(KEY)
    url = folder.part_url(KEY, upload_id, 1, expires_in=60)
    folder.abort_multipart(KEY, upload_id)
    problem(http.put(url, data=b"x", timeout=10), 404, "not_found")
    # The upload belongs to its key: a URL signed for another key cannot add parts to it.
    upload_id = folder.create_multipart(KEY)
    problem(
        http.put(folder.part_url("other/key", upload_id, 1, expires_in=60), data=b"x", timeout=10),
        404,
        "not_found",
    )
    with pytest.raises(UploadNotFound):
        folder.part_url(KEY, "../../etc", 1, expires_in=60)


def run_together(count: int, work: Callable[[int], object]) -> list[object]:
    """Run `work(i)` in `count` threads released at once; return results or raised errors."""
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count

    def start(i: int) -> None:
        barrier.wait(timeout=10)
        try:
            results[i] = work(i)
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=start, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_parts_put_from_many_threads_at_once_are_all_stored(
    folder: FolderBlobs, tmp_path: Path
) -> None:
    upload_id = folder.create_multipart(KEY)
    chunks = [_random.randbytes(256 * 1024) for _ in range(12)]

    def put(i: int) -> str:
        with requests.Session() as session:  # one session per thread: they are not thread-safe
            session.trust_env = False
            return put_part(session, folder, KEY, upload_id, i + 1, chunks[i])

    etags = run_together(len(chunks), put)

    assert etags == [etag_of(chunk) for chunk in chunks]
    assert [part.part_number for part in folder.list_parts(KEY, upload_id)] == list(range(1, 13))
    parts = [(i + 1, str(etag)) for i, etag in enumerate(etags)]
    assert folder.complete_multipart(KEY, upload_id, parts) == 12 * 256 * 1024
    assert read_all(folder, KEY) == b"".join(chunks)
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_of_concurrent_completes_exactly_one_wins(
    folder: FolderBlobs, http: requests.Session, tmp_path: Path
) -> None:
    upload_id = folder.create_multipart(KEY)
    chunks = [FIRST, SECOND, LAST]
    parts = [
        (i + 1, put_part(http, folder, KEY, upload_id, i + 1, c)) for i, c in enumerate(chunks)
    ]

    results = run_together(8, lambda _: folder.complete_multipart(KEY, upload_id, parts))

    assert results.count(len(FIRST + SECOND + LAST)) == 1
    assert sum(isinstance(result, UploadNotFound) for result in results) == 7
    assert read_all(folder, KEY) == FIRST + SECOND + LAST
    assert list((tmp_path / "blobs" / "uploads").iterdir()) == []
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_sweep_keeps_uploads_younger_than_the_limit(folder: FolderBlobs, clock: FakeClock) -> None:
    old = folder.create_multipart(KEY)
    clock.advance(100)
    young = folder.create_multipart(KEY)

    assert folder.sweep_abandoned(50) == 1

    assert folder.list_parts(KEY, young) == []
    with pytest.raises(UploadNotFound):
        folder.list_parts(KEY, old)


def test_a_client_that_hangs_up_mid_part_leaves_no_part_and_no_file(
    folder: FolderBlobs, tmp_path: Path
) -> None:
    upload_id = folder.create_multipart(KEY)
    url = urlsplit(folder.part_url(KEY, upload_id, 1, expires_in=60))
    with socket.create_connection((url.hostname, url.port), timeout=10) as conn:
        head = f"PUT {url.path}?{url.query} HTTP/1.1\r\nHost: x\r\nContent-Length: {MIB}\r\n\r\n"
        conn.sendall(head.encode() + bytes(64 * 1024))
        time.sleep(0.2)  # let the server start writing the part

    deadline = time.monotonic() + 10
    while any((tmp_path / "blobs" / "tmp").iterdir()):
        assert time.monotonic() < deadline, "the partial part was not discarded"
        time.sleep(0.02)
    assert folder.list_parts(KEY, upload_id) == []


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
def test_a_64_mib_part_is_streamed_to_disk_not_held_in_memory(
    folder: FolderBlobs, http: requests.Session
) -> None:
    """Client and server share this process; both stream, so its RSS must stay flat."""
    upload_id = folder.create_multipart(KEY)
    block = os.urandom(MIB)
    expected = hashlib.md5(usedforsecurity=False)
    for _ in range(64):
        expected.update(block)

    def body() -> Iterator[bytes]:
        for _ in range(64):
            yield block

    peak = baseline = rss_bytes()
    sampling = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not sampling.is_set():
            peak = max(peak, rss_bytes())
            time.sleep(0.005)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        reply = http.put(folder.part_url(KEY, upload_id, 1, expires_in=60), data=body(), timeout=60)
    finally:
        sampling.set()
        sampler.join()

    assert reply.status_code == 200, reply.text
    assert reply.headers["ETag"] == f'"{expected.hexdigest()}"'
    assert folder.list_parts(KEY, upload_id) == [PartInfo(1, reply.headers["ETag"], 64 * MIB)]
    assert peak - baseline < 30 * MIB, f"RSS grew by {(peak - baseline) / MIB:.1f} MiB"


# -- parts laid out in place ("slots") -------------------------------------------------------

SLOT = 4096


def upload_folder(tmp_path: Path, upload_id: str) -> Path:
    return tmp_path / "blobs" / "uploads" / upload_id


def test_parts_of_the_planned_size_complete_in_place_without_a_copy(
    folder: FolderBlobs, http: requests.Session, tmp_path: Path
) -> None:
    upload_id = folder.create_multipart(KEY, part_size=SLOT)
    chunks = [_random.randbytes(SLOT), _random.randbytes(SLOT), _random.randbytes(100)]
    # Out of order, as parallel workers deliver them.
    etags = {n: put_part(http, folder, KEY, upload_id, n, chunks[n - 1]) for n in (3, 1, 2)}
    stored = upload_folder(tmp_path, upload_id)
    assert not list(stored.glob("*.part"))  # every part went to its slot
    slots_inode = (stored / "parts.bin").stat().st_ino

    assert folder.complete_multipart(KEY, upload_id, sorted(etags.items())) == 2 * SLOT + 100

    assert read_all(folder, KEY) == b"".join(chunks)
    # The object is the slot file itself, cut to size: no byte was copied.
    obj = tmp_path / "blobs" / "objects" / KEY
    assert obj.stat().st_ino == slots_inode
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_parts_that_do_not_fit_the_plan_keep_s3_semantics(
    folder: FolderBlobs, http: requests.Session, tmp_path: Path
) -> None:
    upload_id = folder.create_multipart(KEY, part_size=SLOT)
    first = _random.randbytes(SLOT)
    put_part(http, folder, KEY, upload_id, 1, first)
    # Part 1 again, other bytes: the stored part's slot is never written over, yet the new
    # part replaces it, as on S3.
    again = _random.randbytes(SLOT)
    assert put_part(http, folder, KEY, upload_id, 1, again) == etag_of(again)
    # Part 2 larger than the slot: a file of its own.
    big = _random.randbytes(SLOT + 10)
    put_part(http, folder, KEY, upload_id, 2, big)
    last = _random.randbytes(7)
    put_part(http, folder, KEY, upload_id, 3, last)
    assert [p.etag for p in folder.list_parts(KEY, upload_id)] == [
        etag_of(again),
        etag_of(big),
        etag_of(last),
    ]

    parts = [(p.part_number, p.etag) for p in folder.list_parts(KEY, upload_id)]
    assert folder.complete_multipart(KEY, upload_id, parts) == len(again + big + last)
    assert read_all(folder, KEY) == again + big + last
    assert list((tmp_path / "blobs" / "tmp").iterdir()) == []


def test_a_completion_that_leaves_out_stored_parts_copies_only_the_named_ones(
    folder: FolderBlobs, http: requests.Session
) -> None:
    upload_id = folder.create_multipart(KEY, part_size=SLOT)
    first = _random.randbytes(SLOT)
    one = put_part(http, folder, KEY, upload_id, 1, first)
    put_part(http, folder, KEY, upload_id, 2, _random.randbytes(SLOT))
    put_part(http, folder, KEY, upload_id, 4, b"tail")
    # Part 4 is not named: the slot file, which holds it, must not simply be cut to part 1.
    assert folder.complete_multipart(KEY, upload_id, [(1, one)]) == SLOT
    assert read_all(folder, KEY) == first


def test_a_part_still_streaming_when_the_upload_completes_never_reaches_the_object(
    folder: FolderBlobs,
) -> None:
    upload_id = folder.create_multipart(KEY, part_size=SLOT)
    first = _random.randbytes(SLOT)
    writer = folder.open_part_writer(KEY, upload_id, 1, size=SLOT)
    writer.write(first)
    etag = writer.commit()
    late = folder.open_part_writer(KEY, upload_id, 2, size=SLOT)
    late.write(b"x" * 100)

    assert folder.complete_multipart(KEY, upload_id, [(1, etag)]) == SLOT

    with pytest.raises(UploadNotFound):
        late.write(b"y" * 100)
    late.discard()
    assert read_all(folder, KEY) == first


def test_slotted_parts_survive_a_restart_of_the_server(
    folder: FolderBlobs, http: requests.Session, tmp_path: Path, clock: FakeClock
) -> None:
    upload_id = folder.create_multipart(KEY, part_size=SLOT)
    chunks = [_random.randbytes(SLOT), _random.randbytes(50)]
    etags = [put_part(http, folder, KEY, upload_id, n, c) for n, c in enumerate(chunks, 1)]
    # Another process on the same folder (the local stack started again) knows them all.
    restarted = FolderBlobs(
        tmp_path / "blobs", base_url="http://unused", secret=SECRET, min_part_size=1024
    )
    assert [p.etag for p in restarted.list_parts(KEY, upload_id)] == etags
    writer = restarted.open_part_writer(KEY, upload_id, 2, size=50)
    writer.write(chunks[1])
    assert writer.commit() == etags[1]
    assert restarted.complete_multipart(KEY, upload_id, list(enumerate(etags, 1))) == SLOT + 50
    assert read_all(restarted, KEY) == b"".join(chunks)


def test_a_disk_that_fails_mid_part_answers_500_and_keeps_nothing(
    tmp_path: Path, clock: FakeClock, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the part threads (the route's answer comes from the app's error handlers)."""
    with folder_server(tmp_path / "blobs", clock, min_part_size=1024) as folder:
        upload_id = folder.create_multipart(KEY, part_size=SLOT)
        url = folder.part_url(KEY, upload_id, 1, expires_in=60)

        def disk_full(*args: object) -> None:
            raise OSError(28, "No space left on device")

        with monkeypatch.context() as patched:
            patched.setattr(FolderBlobs, "_write_at", staticmethod(disk_full))
            problem(http.put(url, data=b"x" * SLOT, timeout=30), 500, "internal")
        assert folder.list_parts(KEY, upload_id) == []
        assert put_part(http, folder, KEY, upload_id, 1, b"fine") == etag_of(b"fine")
