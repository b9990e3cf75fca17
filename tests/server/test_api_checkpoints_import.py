"""Model imports: the server downloads a URL in the background, guarded against SSRF.

The files come from a small HTTP server on 127.0.0.1. That address is loopback, so every
test that downloads from it allows it explicitly: either all private addresses
(`allow_private`, as the local stack's --allow-private-import does) or one trusted host name
that an injected resolver points at 127.0.0.1. The second way keeps the check on for every
other hop, which is what the redirect tests need.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from typing import Any

import pytest
import requests

from aws_extension.middleware.checkpoint_policy import CheckpointPolicy
from aws_extension.middleware.security.outbound import (
    OutboundPolicy,
    address_refusal,
    system_resolver,
)
from aws_extension.middleware.services.entities import timestamp
from tests.server.conftest import FakeClock
from tests.server.live import PART_SIZE, POLICY, FileServer, Live, Route, file_server, wait_for

_random = random.Random(7)
MODEL = _random.randbytes(300 * 1024 + 5)
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()
MIRROR = "mirror.test"


@pytest.fixture
def files() -> Iterator[FileServer]:
    with file_server() as server:
        yield server


def mirror_resolver(host: str, port: int) -> Sequence[str]:
    """Resolves the trusted test host to the file server's address, the rest as usual."""
    return ["127.0.0.1"] if host == MIRROR else system_resolver(host, port)


@pytest.fixture
def private_ok(start_live: Callable[..., Live]) -> Live:
    """Imports may reach private addresses, as with the local stack's flag."""
    return start_live(outbound=OutboundPolicy(allow_private=True, read_timeout=5))


@pytest.fixture
def guarded(start_live: Callable[..., Live]) -> Live:
    """Only the trusted mirror host may be private; every other hop is checked."""
    return start_live(
        outbound=OutboundPolicy(trusted_hosts=frozenset({MIRROR}), read_timeout=5),
        resolver=mirror_resolver,
    )


@pytest.fixture
def live(start_live: Callable[..., Live]) -> Live:
    """The default policy: public hosts only."""
    return start_live()


def problem(reply: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    body: dict[str, Any] = reply.json()
    assert body["code"] == code, body
    return body


def begin(live: Live, url: str, **fields: Any) -> dict[str, Any]:
    body = {"url": url, "type": "Lora", **fields}
    reply = live.api.post("/checkpoints/import", token=live.admin, json=body)
    assert reply.status_code == 202, reply.text
    checkpoint: dict[str, Any] = reply.json()
    assert checkpoint["status"] == "Importing"
    return checkpoint


def settled(live: Live, checkpoint_id: str) -> dict[str, Any]:
    """The model once the import has ended, one way or the other."""

    def done() -> dict[str, Any] | None:
        reply = live.api.get(f"/checkpoints/{checkpoint_id}", token=live.admin)
        assert reply.status_code == 200, reply.text
        body: dict[str, Any] = reply.json()
        return None if body["status"] == "Importing" else body

    result: dict[str, Any] = wait_for(done, what="the import to end")
    return result


def stored(live: Live, checkpoint: dict[str, Any]) -> bytes | None:
    key = f"checkpoints/{checkpoint['id']}/{checkpoint['name']}"
    if live.blobs.head(key) is None:
        return None
    with closing(live.blobs.open_read(key)) as stream:
        return stream.read()


# -- the address rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("0.0.0.0", "unspecified"),  # noqa: S104
        ("::", "unspecified"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("10.0.0.1", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd00::1", "private"),
        ("100.64.0.1", "non-public"),
        ("240.0.0.1", "private"),
        ("198.18.0.1", "private"),
        ("2001:db8::1", "private"),
        # IPv4 inside IPv6: mapped, 6to4, NAT64.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("2002:7f00:1::1", "loopback"),
        ("64:ff9b::a00:1", "private"),
        ("not an address", "malformed"),
    ],
)
def test_non_public_addresses_are_refused(address: str, kind: str) -> None:
    assert address_refusal(address) == kind


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert address_refusal(address) is None


# -- refused at once -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://127.0.0.1:9/model.safetensors", "loopback"),
        ("http://[::1]/model.safetensors", "loopback"),
        ("http://[::ffff:127.0.0.1]/model.safetensors", "loopback"),
        ("http://169.254.169.254/latest/meta-data/iam", "link-local"),
        ("http://10.0.0.1/model.safetensors", "private"),
        ("http://0.0.0.0/model.safetensors", "unspecified"),
        ("http://localhost/model.safetensors", "(localhost resolves to"),
        ("http://2130706433/model.safetensors", "loopback"),  # 127.0.0.1 as one number
        ("https://user:pw@127.0.0.1/x.safetensors", "loopback"),
        ("ftp://example.com/model.safetensors", "not ftp:"),
        ("file:///etc/passwd", "not file:"),
        ("example.com/model.safetensors", "without a scheme"),
        ("http:///model.safetensors", "no host"),
        ("http://example.com:99999/model.safetensors", "malformed"),
    ],
)
def test_urls_to_private_places_or_other_schemes_are_400(live: Live, url: str, words: str) -> None:
    reply = live.api.post(
        "/checkpoints/import", token=live.admin, json={"url": url, "type": "Lora"}
    )
    body = problem(reply, 400, "invalid")
    assert words in body["detail"]
    assert live.api.get("/checkpoints", token=live.admin).json()["items"] == []


def test_a_host_that_does_not_resolve_is_400(start_live: Callable[..., Live]) -> None:
    def nowhere(host: str, port: int) -> Sequence[str]:
        return system_resolver("name.invalid", port)

    live = start_live(resolver=nowhere)
    reply = live.api.post(
        "/checkpoints/import",
        token=live.admin,
        json={"url": "http://models.example/x.safetensors", "type": "Lora"},
    )
    assert "cannot be resolved" in problem(reply, 400, "invalid")["detail"]


def test_a_name_from_the_url_must_be_usable(private_ok: Live, files: FileServer) -> None:
    reply = private_ok.api.post(
        "/checkpoints/import",
        token=private_ok.admin,
        json={"url": files.base_url + "/", "type": "Lora"},
    )
    assert "give the model a name" in problem(reply, 400, "invalid")["detail"]


# -- redirects are checked hop by hop --------------------------------------------------------


def test_a_redirect_to_a_private_address_is_refused_on_the_way(
    guarded: Live, files: FileServer
) -> None:
    port = files.port
    files.routes["/model.safetensors"] = Route(body=MODEL)
    files.routes["/to-ip"] = Route(
        status=302, location=f"http://127.0.0.1:{port}/model.safetensors"
    )
    files.routes["/to-name"] = Route(
        status=301, location=f"http://localhost:{port}/model.safetensors"
    )
    files.routes["/to-metadata"] = Route(status=307, location="http://169.254.169.254/latest/")

    for path, words in (
        ("/to-ip", "loopback"),
        ("/to-name", "localhost resolves to"),
        ("/to-metadata", "link-local"),
    ):
        checkpoint = begin(guarded, f"http://{MIRROR}:{port}{path}", name=f"{path[1:]}.safetensors")
        failed = settled(guarded, checkpoint["id"])
        assert failed["status"] == "Failed", path
        assert words in failed["error"], failed["error"]
        assert stored(guarded, failed) is None

    # The first hop was made (the mirror is trusted), the private second hop never.
    assert files.requested == ["/to-ip", "/to-name", "/to-metadata"]


def test_redirects_between_allowed_hosts_are_followed_up_to_five(
    guarded: Live, files: FileServer
) -> None:
    base = f"http://{MIRROR}:{files.port}"
    files.routes["/model.safetensors"] = Route(body=MODEL)
    for hop in range(1, 7):
        files.routes[f"/hop{hop}"] = Route(status=302, location=f"/hop{hop + 1}")
    files.routes["/hop5"] = Route(status=303, location=f"{base}/model.safetensors")

    fine = settled(guarded, begin(guarded, f"{base}/hop1", name="fine.safetensors")["id"])
    assert fine["status"] == "Active", fine["error"]
    assert fine["sha256"] == MODEL_SHA

    files.routes["/hop5"] = Route(status=302, location="/hop6")  # now six redirects
    endless = settled(guarded, begin(guarded, f"{base}/hop1", name="endless.safetensors")["id"])
    assert endless["status"] == "Failed"
    assert "More than 5 redirects" in endless["error"]


# -- downloads -------------------------------------------------------------------------------


def test_an_import_ends_active_with_the_right_size_and_sha256(
    private_ok: Live, files: FileServer
) -> None:
    files.routes["/models/my%20lora.safetensors"] = Route(body=MODEL)
    url = f"http://user:secret@127.0.0.1:{files.port}/models/my%20lora.safetensors?token=abc"

    checkpoint = begin(private_ok, url, allowed_roles=[])

    assert checkpoint["name"] == "my lora.safetensors"  # the URL's file name, decoded
    assert checkpoint["size"] is None
    assert checkpoint["progress"] == {"bytes_done": 0, "bytes_total": None}
    # Shown to everyone who may see the model: no credentials, no query.
    assert checkpoint["source"] == f"http://127.0.0.1:{files.port}/models/my%20lora.safetensors"
    active = settled(private_ok, checkpoint["id"])
    assert active["status"] == "Active", active["error"]
    assert active["size"] == len(MODEL)
    assert active["sha256"] == MODEL_SHA
    assert active["progress"] is None
    assert stored(private_ok, active) == MODEL
    assert files.requested == ["/models/my%20lora.safetensors?token=abc"]
    # Its content now counts for duplicates like an upload's.
    duplicate = private_ok.api.post(
        "/checkpoints",
        token=private_ok.admin,
        json={"name": "x.safetensors", "type": "Lora", "size": 1, "sha256": MODEL_SHA},
    )
    assert problem(duplicate, 409, "duplicate_content")["existing_id"] == active["id"]


def test_spaces_and_unicode_in_the_url_are_encoded_as_browsers_do(
    private_ok: Live, files: FileServer
) -> None:
    files.routes["/my%20mod%C3%A8l.safetensors"] = Route(body=MODEL)
    checkpoint = begin(private_ok, f"{files.base_url}/my modèl.safetensors?v=1 2")
    assert checkpoint["name"] == "my modèl.safetensors"
    assert settled(private_ok, checkpoint["id"])["status"] == "Active"
    assert files.requested == ["/my%20mod%C3%A8l.safetensors?v=1%202"]


def test_an_import_shows_its_progress_while_it_runs(private_ok: Live, files: FileServer) -> None:
    files.routes["/slow.safetensors"] = Route(body=MODEL, chunk_size=16 * 1024, delay=0.05)
    checkpoint = begin(private_ok, f"{files.base_url}/slow.safetensors")

    def moving() -> dict[str, Any] | None:
        body = private_ok.api.get(f"/checkpoints/{checkpoint['id']}", token=private_ok.admin).json()
        progress = body["progress"]
        return progress if progress and 0 < progress["bytes_done"] < len(MODEL) else None

    progress = wait_for(moving, what="progress")
    assert progress["bytes_total"] == len(MODEL)
    assert settled(private_ok, checkpoint["id"])["status"] == "Active"


@pytest.mark.parametrize("chunked", [False, True], ids=["announced", "streamed"])
def test_an_import_over_the_size_limit_fails_and_keeps_the_reason(
    start_live: Callable[..., Live], files: FileServer, chunked: bool
) -> None:
    limit = 100 * PART_SIZE
    live = start_live(
        policy=CheckpointPolicy(max_size=limit, part_size=PART_SIZE, progress_interval=0.05),
        outbound=OutboundPolicy(allow_private=True, read_timeout=5),
    )
    files.routes["/big.safetensors"] = Route(body=MODEL, chunked=chunked)

    failed = settled(live, begin(live, f"{files.base_url}/big.safetensors")["id"])

    assert failed["status"] == "Failed"
    assert failed["error"] == "The file is larger than the 100 KiB allowed."
    assert stored(live, failed) is None


def test_a_wrong_sha256_or_an_http_error_fails_the_import(
    private_ok: Live, files: FileServer
) -> None:
    files.routes["/model.safetensors"] = Route(body=MODEL)
    wrong = begin(private_ok, f"{files.base_url}/model.safetensors", sha256="a" * 64)
    missing = begin(private_ok, f"{files.base_url}/gone.safetensors")

    wrong = settled(private_ok, wrong["id"])
    assert wrong["status"] == "Failed"
    assert f"SHA-256 is {MODEL_SHA}" in wrong["error"]
    assert stored(private_ok, wrong) is None
    missing = settled(private_ok, missing["id"])
    assert missing["status"] == "Failed"
    assert "answered 404 Not Found" in missing["error"]
    # A Failed import gives its name up to the next try.
    assert begin(private_ok, f"{files.base_url}/model.safetensors")["name"] == "model.safetensors"


def test_a_server_that_stops_sending_fails_the_import(
    start_live: Callable[..., Live], files: FileServer
) -> None:
    live = start_live(outbound=OutboundPolicy(allow_private=True, read_timeout=0.5))
    files.routes["/stuck.safetensors"] = Route(body=MODEL, chunk_size=len(MODEL) // 2, delay=3)
    failed = settled(live, begin(live, f"{files.base_url}/stuck.safetensors")["id"])
    assert failed["status"] == "Failed"
    assert "timed out" in failed["error"]


def test_deleting_a_running_import_stops_it(private_ok: Live, files: FileServer) -> None:
    files.routes["/slow.safetensors"] = Route(body=MODEL, chunk_size=8 * 1024, delay=0.05)
    checkpoint = begin(private_ok, f"{files.base_url}/slow.safetensors")
    wait_for(
        lambda: private_ok.api.get(
            f"/checkpoints/{checkpoint['id']}", token=private_ok.admin
        ).json()["progress"]["bytes_done"],
        what="the download to start",
    )

    assert (
        private_ok.api.delete(
            f"/checkpoints/{checkpoint['id']}", token=private_ok.admin
        ).status_code
        == 204
    )

    wait_for(
        lambda: not private_ok.checkpoints.imports.running(checkpoint["id"]),
        what="the import to stop",
    )
    assert stored(private_ok, checkpoint) is None
    assert (
        private_ok.api.get(f"/checkpoints/{checkpoint['id']}", token=private_ok.admin).status_code
        == 404
    )


def test_stopping_the_server_fails_running_imports(private_ok: Live, files: FileServer) -> None:
    files.routes["/slow.safetensors"] = Route(body=MODEL, chunk_size=8 * 1024, delay=0.2)
    checkpoint = begin(private_ok, f"{files.base_url}/slow.safetensors")

    private_ok.services.close()

    failed = private_ok.api.get(f"/checkpoints/{checkpoint['id']}", token=private_ok.admin).json()
    assert failed["status"] == "Failed"
    assert "server stopped" in failed["error"]
    after = private_ok.api.post(
        "/checkpoints/import",
        token=private_ok.admin,
        json={"url": f"{files.base_url}/other.safetensors", "type": "Lora"},
    )
    assert after.status_code == 202
    assert "stopping" in after.json()["error"]


def test_the_sweep_fails_imports_that_no_process_runs(live: Live, clock: FakeClock) -> None:
    """An import whose process died (a restart, a crashed instance) is failed by deadline."""
    now = timestamp(clock)
    orphan = {
        "name": "orphan.safetensors",
        "type": "Lora",
        "size": None,
        "sha256": None,
        "declared_sha256": None,
        "status": "Importing",
        "allowed_roles": [],
        "created_by": "admin",
        "created_at": now,
        "updated_at": now,
        "object_key": "checkpoints/0123456789abcdef01234567/orphan.safetensors",
        "upload_id": None,
        "source": "https://example.com/orphan.safetensors",
        "progress": {"bytes_done": 10, "bytes_total": None},
        "error": None,
    }
    live.records.create("checkpoint", "0123456789abcdef01234567", orphan)
    clock.advance(POLICY.stall_deadline)
    assert live.checkpoints.sweep() == 0
    clock.advance(1)

    assert live.checkpoints.sweep() == 1

    admin = live.api.token("admin", live.admin_password)
    failed = live.api.get("/checkpoints/0123456789abcdef01234567", token=admin).json()
    assert failed["status"] == "Failed"
    assert "stopped while importing" in failed["error"]


def test_outbound_time_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="time limits"):
        OutboundPolicy(read_timeout=0)
