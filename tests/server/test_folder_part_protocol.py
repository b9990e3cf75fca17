"""`part_put_protocol`: part PUTs received on threads, everything else handed to uvicorn.

The contract suite (test_blobs_contract.py) runs the folder backend's routes through both
paths; these tests cover what only this protocol does: reading request heads, sharing a
connection with the API, pipelined requests, and leaving odd requests to uvicorn.
"""

from __future__ import annotations

import hashlib
import io
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from aws_extension.middleware.blobs.folder import FolderBlobs
from aws_extension.middleware.blobs.folder_part_protocol import PartPut, parse_part_put
from tests.server.test_blobs_contract import FakeClock, folder_server

KEY = "checkpoints/proto/model.safetensors"


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[FolderBlobs]:
    with folder_server(tmp_path / "blobs", FakeClock(), min_part_size=1024) as blobs:
        yield blobs


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


def put_request(url: str, body: bytes, *headers: str) -> bytes:
    parts = urlsplit(url)
    lines = [f"PUT {parts.path}?{parts.query} HTTP/1.1", "Host: test", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def get_request(url: str) -> bytes:
    parts = urlsplit(url)
    return f"GET {parts.path}?{parts.query} HTTP/1.1\r\nHost: test\r\n\r\n".encode()


class Replies:
    """Reads HTTP/1.1 replies (with a Content-Length) off a socket, one after the other."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed")
        self.buffer += chunk

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        self.sock.settimeout(5)
        return self.sock.recv(1) == b""


def connect(folder: FolderBlobs) -> socket.socket:
    url = urlsplit(folder.part_url(KEY, folder.create_multipart(KEY), 1, expires_in=60))
    return socket.create_connection((url.hostname, url.port), timeout=10)


def test_parts_and_other_requests_share_a_kept_alive_connection(folder: FolderBlobs) -> None:
    folder.put_stream("other/object", io.BytesIO(b"stored"), size_limit=10)
    upload_id = folder.create_multipart(KEY, part_size=4096)
    first, second = b"a" * 4096, b"b" * 10
    with connect(folder) as sock:
        replies = Replies(sock)
        sock.sendall(put_request(folder.part_url(KEY, upload_id, 1, expires_in=60), first))
        assert replies.next()[1]["etag"] == md5_etag(first)
        # Not a part PUT: uvicorn's protocol takes the connection from here on.
        sock.sendall(get_request(folder.download_url("other/object", expires_in=60)))
        status, _, body = replies.next()
        assert (status, body) == (200, b"stored")
        # A part PUT after the hand-over goes to the route, on the same connection.
        sock.sendall(put_request(folder.part_url(KEY, upload_id, 2, expires_in=60), second))
        assert replies.next()[1]["etag"] == md5_etag(second)
    assert [part.etag for part in folder.list_parts(KEY, upload_id)] == [
        md5_etag(first),
        md5_etag(second),
    ]


def test_pipelined_part_puts_are_answered_in_order(folder: FolderBlobs) -> None:
    upload_id = folder.create_multipart(KEY, part_size=4096)
    bodies = [b"one" * 1000, b"", b"three"]
    requests = [
        put_request(folder.part_url(KEY, upload_id, n, expires_in=60), body)
        for n, body in enumerate(bodies, start=1)
    ]
    with connect(folder) as sock:
        replies = Replies(sock)
        sock.sendall(b"".join(requests))
        etags = [replies.next()[1]["etag"] for _ in bodies]
    assert etags == [md5_etag(body) for body in bodies]


def test_a_client_that_asks_to_close_is_answered_then_closed(folder: FolderBlobs) -> None:
    upload_id = folder.create_multipart(KEY)
    url = folder.part_url(KEY, upload_id, 1, expires_in=60)
    with connect(folder) as sock:
        replies = Replies(sock)
        sock.sendall(put_request(url, b"bytes", "Connection: close"))
        status, headers, _ = replies.next()
        assert status == 200 and headers["connection"] == "close"
        assert replies.closed()


def test_refusals_drain_the_body_and_keep_the_connection(folder: FolderBlobs) -> None:
    upload_id = folder.create_multipart(KEY)
    url = folder.part_url(KEY, upload_id, 1, expires_in=60)
    tampered = url.replace("sig=", "sig=0")
    with connect(folder) as sock:
        replies = Replies(sock)
        sock.sendall(put_request(tampered, b"x" * 300_000))
        status, headers, body = replies.next()
        assert status == 403 and b"invalid_signature" in body
        assert headers["content-type"] == "application/problem+json"
        sock.sendall(put_request(url, b"fine"))
        assert replies.next()[1]["etag"] == md5_etag(b"fine")


def test_chunked_and_http_1_0_puts_are_left_to_the_route(folder: FolderBlobs) -> None:
    upload_id = folder.create_multipart(KEY)
    with connect(folder) as sock:
        replies = Replies(sock)
        url = folder.part_url(KEY, upload_id, 1, expires_in=60)
        chunked = b"5\r\nhello\r\n0\r\n\r\n"
        sock.sendall(put_request(url, chunked, "Transfer-Encoding: chunked"))
        assert replies.next()[1]["etag"] == md5_etag(b"hello")
    with connect(folder) as sock:
        replies = Replies(sock)
        url = folder.part_url(KEY, upload_id, 2, expires_in=60)
        head = put_request(url, b"old").replace(b"HTTP/1.1", b"HTTP/1.0", 1)
        sock.sendall(head)
        assert replies.next()[1]["etag"] == md5_etag(b"old")


def test_an_idle_connection_is_closed_after_the_keep_alive_time(folder: FolderBlobs) -> None:
    with connect(folder) as sock:
        started = time.monotonic()
        sock.settimeout(30)
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 20


def test_the_head_is_read_as_starlette_would_route_it() -> None:
    upload = "0123456789abcdef0123456789abcdef"
    key = "checkpoints/x/my model ✓.safetensors"
    target = f"/blobs/parts/{upload}/7?key={quote(key)}&expires=99&sig=aa&sig=bb"
    head = f"PUT {target} HTTP/1.1\r\nHost: x\r\ncontent-length:  12 \r\nConnection: keep-alive"
    assert parse_part_put(head.encode("ascii")) == PartPut(
        upload_id=upload,
        part_number="7",
        key=key,
        expires="99",
        sig="bb",  # the last of repeated parameters, as Starlette's QueryParams
        length=12,
        close=False,
    )
    # The path is decoded before it is cut into segments, as uvicorn and Starlette do.
    encoded = parse_part_put(b"PUT /blobs/parts/%2E%2E/1?key=k HTTP/1.1\r\nContent-Length: 1")
    assert encoded is not None and encoded.upload_id == ".."


@pytest.mark.parametrize(
    "head",
    [
        b"PUT /blobs/parts/u/1 HTTP/1.0\r\nContent-Length: 1",
        b"PUT /blobs/parts/u/1 HTTP/1.1\r\nTransfer-Encoding: chunked",
        b"PUT /blobs/parts/u/1 HTTP/1.1",
        b"PUT /blobs/parts/u/1 HTTP/1.1\r\nContent-Length: 1\r\nExpect: 100-continue",
        b"PUT /blobs/parts/u/1 HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1",
        b"PUT /blobs/parts/u/1 HTTP/1.1\r\nContent-Length: -1",
        b"PUT /blobs/parts/u/1 HTTP/1.1\r\nContent-Length: 1\r\n folded",
        b"PUT /blobs/parts/u/1/extra HTTP/1.1\r\nContent-Length: 1",
        b"PUT /blobs/parts/%2F/1 HTTP/1.1\r\nContent-Length: 1",
        b"POST /blobs/parts/u/1 HTTP/1.1\r\nContent-Length: 1",
        b"PUT /checkpoints HTTP/1.1\r\nContent-Length: 1",
    ],
)
def test_anything_but_a_plain_part_put_goes_to_uvicorn(head: bytes) -> None:
    assert parse_part_put(head) is None


def test_stopping_the_server_cuts_a_stalled_part_short(tmp_path: Path) -> None:
    with folder_server(tmp_path / "blobs", FakeClock(), min_part_size=1024) as blobs:
        upload_id = blobs.create_multipart(KEY, part_size=4096)
        url = blobs.part_url(KEY, upload_id, 1, expires_in=60)
        address = urlsplit(url)
        stalled = socket.create_connection((address.hostname, address.port), timeout=10)
        # 100 bytes of the 4000 announced, and then nothing.
        stalled.sendall(put_request(url, b"x" * 100, "Content-Length: 4000"))
        time.sleep(0.2)  # the part's thread is waiting for the rest
        started = time.monotonic()
    with stalled:
        assert time.monotonic() - started < 5, "the server waited for the stalled part"
        assert Replies(stalled).closed()
    stored = FolderBlobs(tmp_path / "blobs", base_url="http://unused", secret=b"s")
    assert stored.list_parts(KEY, upload_id) == []
