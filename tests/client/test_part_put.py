"""One part PUT (`client.part_put.PartSender`) and when the engine checks the ETags.

Against small servers on 127.0.0.1 that record what reaches them, in the client
environment, where the uploader runs.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from aws_extension.client.part_put import PartSender, PutFailed, TransferCancelled
from aws_extension.client.transfer import FilePlan, PartEngine, PartFailed, UrlBook
from tests.support.part_proxy import running_proxy

TIMEOUT = (5.0, 5.0)


def md5_etag(data: bytes) -> str:
    return f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'


@dataclass
class PartServer:
    """Answers each PUT with the MD5 of its body as ETag (or `etag`, when set)."""

    port: int = 0
    etag: str | None = None
    #: Close each connection after answering, without saying so (an idle timeout).
    close_silently: bool = False
    seen: list[tuple[str, tuple[str, int]]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/blobs/parts/up/1?sig=secret"


class _Quiet(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


@contextmanager
def part_server(**options: Any) -> Iterator[PartServer]:
    state = PartServer(**options)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.seen.append((self.requestline, self.client_address))
            self.send_response(200)
            self.send_header("ETag", state.etag or md5_etag(body))
            self.send_header("Content-Length", "0")
            self.end_headers()
            if state.close_silently:
                self.wfile.flush()
                self.close_connection = True

    server = _Quiet(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def direct_session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


def put(sender: PartSender, url: str, data: bytes) -> Any:
    sent: list[int] = []
    reply = sender.put(url, memoryview(data), sent.append, threading.Event())
    assert sum(sent) == len(data)
    return reply


def test_parts_to_plain_http_share_one_kept_alive_connection() -> None:
    with part_server() as server, direct_session() as session:
        sender = PartSender(session, TIMEOUT)
        data = b"x" * (3 * 1024 * 1024 + 5)
        replies = [put(sender, server.url, data) for _ in range(3)]
        sender.close()
    assert [(r.status, r.etag) for r in replies] == [(200, md5_etag(data))] * 3
    assert len({address for _, address in server.seen}) == 1
    assert server.seen[0][0] == "PUT /blobs/parts/up/1?sig=secret HTTP/1.1"


def test_a_connection_the_server_closed_meanwhile_is_replaced_without_a_failure() -> None:
    with part_server(close_silently=True) as server, direct_session() as session:
        sender = PartSender(session, TIMEOUT)
        for _ in range(3):
            assert put(sender, server.url, b"part").status == 200
            time.sleep(0.1)  # the server's close reaches this side
        sender.close()
    assert len({address for _, address in server.seen}) == 3


def test_through_a_plain_proxy_the_request_names_the_whole_url() -> None:
    with part_server() as server, running_proxy() as proxy, direct_session() as session:
        session.proxies = {"http": proxy.url}
        sender = PartSender(session, TIMEOUT)
        assert put(sender, server.url, b"via proxy").etag == md5_etag(b"via proxy")
        sender.close()
    assert proxy.paths("PUT") == ["/blobs/parts/up/1"]


def test_a_server_that_never_answers_fails_in_words_without_the_url() -> None:
    with socket.socket() as silent, direct_session() as session:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/blobs/parts/up/1?sig=secret"
        sender = PartSender(session, (5.0, 0.3))
        with pytest.raises(PutFailed) as failed:
            put(sender, url, b"data")
        sender.close()
    assert failed.value.why == "no answer in time"
    assert "secret" not in str(failed.value)


def test_nothing_listening_is_a_refused_connection() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    with direct_session() as session:
        sender = PartSender(session, TIMEOUT)
        with pytest.raises(PutFailed, match="connection refused"):
            put(sender, f"http://127.0.0.1:{port}/x", b"data")


def test_a_stop_cuts_the_put_short() -> None:
    with part_server() as server, direct_session() as session:
        sender = PartSender(session, TIMEOUT)
        stop = threading.Event()
        stop.set()
        with pytest.raises(TransferCancelled):
            sender.put(server.url, memoryview(b"data"), lambda _: None, stop)
        sender.close()
    assert server.seen == []


# -- when the engine compares ETags with the bytes' MD5 ----------------------------------------


def send_file(tmp_path: Path, url: str, session: requests.Session, **options: Any) -> str:
    path = tmp_path / "model.bin"
    path.write_bytes(b"model bytes" * 100)
    status = path.stat()
    plan = FilePlan(path, status.st_size, status.st_size, status.st_mtime_ns)
    book = UrlBook(lambda numbers: ({}, None), [1])
    book.add({1: url}, None)
    with PartEngine(workers=1, attempts=1, session=session, **options) as engine:
        return engine.run(plan, [1], book)


def test_a_direct_loopback_part_takes_the_server_s_etag(tmp_path: Path) -> None:
    """On a direct connection to this machine nothing can change the bytes on the way, so
    the engine does not spend a second MD5 on them."""
    wrong = md5_etag(b"other bytes")
    with part_server(etag=wrong) as server, direct_session() as session:
        send_file(tmp_path, server.url, session)


def test_an_etag_that_is_not_an_md5_is_refused_even_on_loopback(tmp_path: Path) -> None:
    with (
        part_server(etag='"not-an-md5"') as server,
        direct_session() as session,
        pytest.raises(PartFailed, match="carries no checksum"),
    ):
        send_file(tmp_path, server.url, session)


def test_through_a_proxy_or_when_asked_the_etag_must_match_the_bytes(tmp_path: Path) -> None:
    wrong = md5_etag(b"other bytes")
    words = "the stored part's checksum \\(ETag\\) differs from the bytes sent"
    with part_server(etag=wrong) as server, running_proxy() as proxy, direct_session() as session:
        with pytest.raises(PartFailed, match=words):
            send_file(tmp_path, server.url, session, verify_etags=True)
        session.proxies = {"http": proxy.url}
        with pytest.raises(PartFailed, match=words):
            send_file(tmp_path, server.url, session)
