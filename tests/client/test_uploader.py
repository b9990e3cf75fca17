"""The uploader against the real middleware: the local stack as a process, over real HTTP.

The stack (conftest.py) keeps models in its folder blobs, so part URLs are its own signed
`/blobs/...` routes, in 8 MiB parts. The API calls and the part PUTs both go through a real
forward proxy on 127.0.0.1 (tests/support/part_proxy.py) that records the requests and their
JSON bodies, counts the part PUTs, and injects the faults a test plans (a part that fails,
breaks off, arrives damaged or finds its URL expired; an answer lost on the way). What the
server made of it is read back from the server: the model's record, and the stored file.
The uploader is the shipped code, unmocked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.transfer import UploadProgress, make_session
from aws_extension.client.upload_state import UploadState
from aws_extension.client.uploader import SKIPPED, UPLOADED, Uploader, UploadFailed
from tests.support.part_proxy import CORRUPT, EXPIRED, RESET, PartProxy, running_proxy

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: The stack's part size (CheckpointPolicy.part_size).
PART = 8 * MIB
#: Progress reports this often, so a callback that stops an upload stops it early.
TICK = 0.02
OPTIONS = ClientOptions(timeout=30, connect_timeout=5, retries=2, backoff=0)


@pytest.fixture
def proxy() -> Iterator[PartProxy]:
    with running_proxy() as running:
        yield running


def proxied(proxy: PartProxy, session: requests.Session) -> requests.Session:
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    return session


@pytest.fixture
def client(server: Any, proxy: PartProxy) -> Iterator[ApiClient]:
    """The test's user signed in, its API calls through the proxy."""
    with (
        proxied(proxy, requests.Session()) as session,
        ApiClient(server.url, server.api_token, options=OPTIONS, session=session) as api,
    ):
        api.login(server.username, server.password)
        yield api


@pytest.fixture
def make_uploader(
    client: ApiClient, proxy: PartProxy, tmp_path: Path
) -> Iterator[Callable[..., Uploader]]:
    """Uploaders sharing one state folder (as runs of the WebUI do), parts through the proxy."""
    made: list[tuple[Uploader, requests.Session]] = []

    def make(**options: Any) -> Uploader:
        workers = options.setdefault("workers", 2)
        options.setdefault("backoff", 0)
        options.setdefault("tick_seconds", TICK)
        session = proxied(proxy, make_session(workers))
        uploader = Uploader(client, tmp_path / "states", session=session, **options)
        made.append((uploader, session))
        return uploader

    yield make
    for uploader, session in made:
        uploader.close()
        session.close()


@pytest.fixture
def uploader(make_uploader: Callable[..., Uploader]) -> Uploader:
    return make_uploader()


def model_file(tmp_path: Path, size: int, name: str = "model.safetensors", seed: int = 0) -> Path:
    path = tmp_path / name
    path.write_bytes(random.Random(seed * 1_000_003 + size).randbytes(size))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stored_sha256(server: Any, checkpoint_id: str, first_name: str) -> str:
    """The SHA-256 of the file the stack stored (`checkpoints/<id>/<name at creation>`)."""
    assert server.stack.state_dir is not None
    stored = server.stack.state_dir / "blobs" / "objects" / "checkpoints" / checkpoint_id
    return sha256_of(stored / first_name)


def stop_after(parts: int) -> Callable[[UploadProgress], None]:
    """A progress callback that stops the upload (as Ctrl-C would) once `parts` are stored."""

    def stop(progress: UploadProgress) -> None:
        if progress.parts_done >= parts:
            raise KeyboardInterrupt

    return stop


def interrupted(up: Uploader, path: Path, proxy: PartProxy, parts: int = 1) -> UploadState:
    """Upload `path` slowly, stop it after `parts` parts, return what is left to resume."""
    proxy.delay = 0.2
    with pytest.raises(KeyboardInterrupt):
        up.upload(path, "Lora", on_progress=stop_after(parts))
    proxy.delay = 0.0
    state = up.resume_state(path)
    assert state is not None, "the stopped upload left no resume state"
    return state


def put_part(admin: ApiClient, checkpoint_id: str, number: int, data: bytes) -> str:
    """PUT a part straight to a fresh URL, as another client would; return its ETag."""
    [part] = admin.checkpoint_parts(checkpoint_id, [number])["parts"]
    with requests.Session() as direct:
        direct.trust_env = False
        response = direct.put(part["url"], data=data, timeout=30)
    response.raise_for_status()
    return response.headers["ETag"]


def active(client: ApiClient, checkpoint_id: str | None, path: Path) -> dict:
    assert checkpoint_id is not None
    checkpoint = client.get_checkpoint(checkpoint_id)
    assert (checkpoint["status"], checkpoint["size"], checkpoint["sha256"]) == (
        "Active",
        path.stat().st_size,
        sha256_of(path),
    )
    return checkpoint


def test_upload_sends_each_part_once_and_completes_with_the_sha256(
    server: Any, client: ApiClient, proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    role = server.add_role("artist", [])
    path = model_file(tmp_path, 2 * PART + 100)
    size = path.stat().st_size
    reports: list[UploadProgress] = []
    result = uploader.upload(path, "Lora", allowed_roles=[role], on_progress=reports.append)

    assert result.outcome == UPLOADED
    assert result.sha256 == sha256_of(path)
    assert (result.size, result.sent_bytes, result.reused_parts) == (size, size, 0)
    checkpoint = active(client, result.checkpoint_id, path)
    assert (checkpoint["name"], checkpoint["type"], checkpoint["allowed_roles"]) == (
        "model.safetensors",
        "Lora",
        [role],
    )
    assert result.checkpoint == checkpoint
    assert stored_sha256(server, checkpoint["id"], "model.safetensors") == result.sha256
    assert not uploader.state_file(path).exists()
    assert result.message.startswith(
        f"Uploaded model.safetensors as {result.checkpoint_id} (sha256 {result.sha256[:10]}"
    )
    # On the wire: each part once, with the URLs the creation handed out; the hash goes
    # with the completion, so the file is read once.
    assert dict(proxy.puts) == {1: 1, 2: 1, 3: 1}
    assert proxy.bodies("POST", "/checkpoints") == [
        {"name": "model.safetensors", "type": "Lora", "size": size, "allowed_roles": [role]}
    ]
    assert proxy.bodies("POST", "/parts") == []
    [complete] = proxy.bodies("POST", "/complete")
    assert complete["sha256"] == result.sha256
    assert [p["part_number"] for p in complete["parts"]] == [1, 2, 3]

    uploading = [r for r in reports if r.phase == "uploading"]
    assert [r.bytes_done for r in uploading] == sorted(r.bytes_done for r in uploading)
    assert uploading[-1].bytes_done == size
    assert uploading[-1].parts_done == uploading[-1].parts_total == 3
    assert reports[-1].phase == "completing"
    assert all(
        (r.name, r.path, r.bytes_total) == ("model.safetensors", str(path), size) for r in reports
    )


def test_stopping_from_the_callback_keeps_the_upload_resumable_with_only_missing_parts(
    client: ApiClient, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, 5 * PART)
    state = interrupted(make_uploader(workers=2), path, proxy, parts=2)
    # The workers are gone, and the parts the state records did reach the server.
    assert not [t for t in threading.enumerate() if t.name.startswith("upload-")]
    assert 2 <= len(state.parts) < 5
    assert set(state.parts) <= set(proxy.forwarded)

    before = proxy.puts.copy()
    reports: list[UploadProgress] = []
    # A new uploader, as after a restart: it knows the upload from the state file only.
    result = make_uploader(workers=2).upload(path, "Lora", on_progress=reports.append)
    assert sorted((proxy.puts - before).elements()) == state.missing()
    assert proxy.paths("POST").count("/checkpoints") == 1
    assert proxy.bodies("POST", "/parts") == [{"part_numbers": state.missing()}]
    assert result.checkpoint_id == state.checkpoint_id
    assert result.reused_parts == len(state.parts)
    assert result.sent_bytes == PART * len(state.missing())
    assert result.sha256 == sha256_of(path)
    assert "parts from an earlier try" in result.message
    # The bar starts where the earlier run stopped.
    assert reports[0].bytes_done >= PART * len(state.parts)
    active(client, result.checkpoint_id, path)


def test_a_model_deleted_during_the_upload_stops_it_at_once_and_the_next_try_starts_over(
    server: Any,
    client: ApiClient,
    proxy: PartProxy,
    make_uploader: Callable[..., Uploader],
    tmp_path: Path,
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    up = make_uploader(workers=1)
    deleted: list[str] = []

    def delete_it(progress: UploadProgress) -> None:
        if not deleted:  # someone deletes the model in the tab meanwhile
            state = up.resume_state(path)
            assert state is not None
            server.admin.delete_checkpoint(state.checkpoint_id)
            deleted.append(state.checkpoint_id)

    proxy.delay = 0.2  # part 1 reaches the server after the deletion
    with pytest.raises(UploadFailed, match="the server no longer knows this upload") as failed:
        up.upload(path, "Lora", on_progress=delete_it)
    assert failed.value.resumable
    assert proxy.puts[1] == 1  # refused at once, not tried again

    proxy.delay = 0.0
    before = proxy.puts.copy()
    result = up.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.reused_parts == 0
    assert result.checkpoint_id != deleted[0]
    assert proxy.paths("POST").count("/checkpoints") == 2
    assert dict(proxy.puts - before) == {1: 1, 2: 1, 3: 1}
    active(client, result.checkpoint_id, path)


def test_an_upload_another_client_finished_is_reported_without_sending_again(
    server: Any, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    """As when a run crashed between the completion and deleting its state file."""
    path = model_file(tmp_path, PART + 100)
    up = make_uploader(workers=1)
    state = interrupted(up, path, proxy)
    data = path.read_bytes()
    etags = dict(state.parts)
    for number in state.missing():
        chunk = data[(number - 1) * PART : number * PART]
        etags[number] = put_part(server.admin, state.checkpoint_id, number, chunk)
    server.admin.complete_checkpoint(state.checkpoint_id, sorted(etags.items()), sha256_of(path))

    puts = sum(proxy.puts.values())
    result = up.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.checkpoint_id == state.checkpoint_id
    assert result.checkpoint is not None and result.checkpoint["status"] == "Active"
    assert sum(proxy.puts.values()) == puts
    assert not up.state_file(path).exists()


def test_a_changed_file_is_not_resumed_with_old_parts(
    client: ApiClient, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    up = make_uploader(workers=1)
    old = interrupted(up, path, proxy).checkpoint_id
    path.write_bytes(random.Random(1).randbytes(2 * PART + 100))
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))

    before = proxy.puts.copy()
    result = up.upload(path, "Lora")
    # The old upload was given up on the server, which freed the name for the new one.
    assert f"/checkpoints/{old}/abort" in proxy.paths("POST")
    with pytest.raises(errors.NotFound):
        client.get_checkpoint(old)
    assert result.checkpoint_id != old and result.reused_parts == 0
    assert dict(proxy.puts - before) == {1: 1, 2: 1, 3: 1}
    assert result.sha256 == active(client, result.checkpoint_id, path)["sha256"]


def test_a_file_changed_while_it_is_read_fails_the_upload_and_frees_the_model(
    client: ApiClient, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, 4 * PART)
    up = make_uploader(workers=1)  # two part buffers: the reader waits for the workers
    touched: list[str] = []

    def touch(progress: UploadProgress) -> None:
        if not touched:  # something writes to the file while it is being read
            status = path.stat()
            os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
            state = up.resume_state(path)
            assert state is not None
            touched.append(state.checkpoint_id)

    proxy.delay = 0.2
    with pytest.raises(UploadFailed, match="changed while it was being uploaded") as failed:
        up.upload(path, "Lora", on_progress=touch)
    assert not failed.value.resumable
    assert not up.state_file(path).exists()
    with pytest.raises(errors.NotFound):
        client.get_checkpoint(touched[0])


def test_a_resume_under_another_name_renames_the_model(
    client: ApiClient, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    up = make_uploader(workers=1)
    state = interrupted(up, path, proxy)
    result = up.upload(path, "Lora", name="renamed.safetensors")
    assert proxy.bodies("PATCH", f"/checkpoints/{state.checkpoint_id}") == [
        {"name": "renamed.safetensors"}
    ]
    assert result.checkpoint_id == state.checkpoint_id and result.reused_parts >= 1
    assert result.name == "renamed.safetensors"
    assert active(client, result.checkpoint_id, path)["name"] == "renamed.safetensors"


@pytest.mark.parametrize("known", ["given", "hash_first"])
def test_content_already_in_the_cloud_is_skipped_before_sending(
    proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path, known: str
) -> None:
    original = model_file(tmp_path, PART + 100, "original.safetensors")
    first = make_uploader().upload(original, "Lora")
    path = tmp_path / "model.safetensors"
    path.write_bytes(original.read_bytes())

    puts = sum(proxy.puts.values())
    reports: list[UploadProgress] = []
    result = make_uploader(hash_first=known == "hash_first").upload(
        path,
        "Lora",
        sha256=sha256_of(path) if known == "given" else None,
        on_progress=reports.append,
    )
    assert result.outcome == SKIPPED and result.checkpoint_id == first.checkpoint_id
    assert result.message == f"model.safetensors is already in the cloud as {first.checkpoint_id}."
    assert sum(proxy.puts.values()) == puts
    assert proxy.bodies("POST", "/checkpoints")[-1]["sha256"] == sha256_of(path)
    if known == "hash_first":
        assert reports[-1].phase == "hashing" and reports[-1].bytes_done == path.stat().st_size


def test_a_given_sha256_that_is_not_the_file_s_abandons_the_upload(
    client: ApiClient, proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, PART + 100)
    with pytest.raises(UploadFailed, match="is not the file's") as failed:
        uploader.upload(path, "Lora", sha256="0" * 64)
    assert not failed.value.resumable
    abort = proxy.paths("POST")[-1]
    assert abort.startswith("/checkpoints/") and abort.endswith("/abort")
    with pytest.raises(errors.NotFound):
        client.get_checkpoint(abort.split("/")[2])
    assert proxy.bodies("POST", "/complete") == []
    assert not uploader.state_file(path).exists()


def test_a_part_that_fails_twice_then_succeeds_completes_the_upload(
    client: ApiClient, proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    proxy.fail(2, 500, RESET)
    result = uploader.upload(path, "Lora")
    assert result.outcome == UPLOADED
    assert dict(proxy.puts) == {1: 1, 2: 3, 3: 1}
    assert proxy.forwarded[2] == 1
    active(client, result.checkpoint_id, path)


def test_a_part_damaged_on_the_way_is_sent_again_then_refused_in_words(
    server: Any,
    client: ApiClient,
    proxy: PartProxy,
    make_uploader: Callable[..., Uploader],
    tmp_path: Path,
) -> None:
    path = model_file(tmp_path, 1000)
    proxy.fail(1, CORRUPT, CORRUPT)
    up = make_uploader(attempts=2)
    words = "the stored part's checksum (ETag) differs from the bytes sent"
    with pytest.raises(UploadFailed) as failed:
        up.upload(path, "Lora")
    assert f"Part 1 could not be stored after 2 attempts (last: {words})." in str(failed.value)
    assert failed.value.resumable and proxy.forwarded[1] == 2
    # The next try replaces the damaged part.
    result = up.upload(path, "Lora")
    assert proxy.puts[1] == 3
    assert stored_sha256(server, active(client, result.checkpoint_id, path)["id"], path.name) == (
        sha256_of(path)
    )


def test_a_part_failing_every_time_keeps_the_state_and_never_shows_a_url(
    proxy: PartProxy,
    make_uploader: Callable[..., Uploader],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    proxy.fail(3, *[503] * 5)
    caplog.set_level(logging.DEBUG, logger="aws_extension")
    with pytest.raises(UploadFailed) as failed:
        make_uploader(workers=1, attempts=5).upload(path, "Lora")
    error = failed.value
    assert error.resumable and error.state_file is not None and error.state_file.exists()
    assert (error.parts_stored, error.parts_total) == (2, 3)
    assert str(error) == (
        "Uploading model.safetensors stopped: Part 3 could not be stored after 5 attempts "
        "(last: the server answered 503 Service Unavailable). 2 of 3 parts are in the cloud; "
        "upload the same file again to resume."
    )
    assert proxy.puts[3] == 5
    # Part URLs are credentials: no message, log line or state file shows one or its signature.
    urls = proxy.part_urls()
    secrets = urls + [parse_qs(urlsplit(url).query)["sig"][0] for url in urls]
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("aws_extension")]
    assert any("Part 3 failed" in line for line in ours)
    shown = "\n".join([*ours, str(error), error.state_file.read_text()])
    assert not [secret for secret in secrets if secret in shown]

    # And the promise holds: the next try sends part 3 only.
    before = proxy.puts.copy()
    result = make_uploader(workers=1).upload(path, "Lora")
    assert dict(proxy.puts - before) == {3: 1}
    assert result.reused_parts == 2


def test_an_expired_url_is_renewed_through_the_api(
    client: ApiClient, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, PART + 100)
    proxy.fail(2, EXPIRED)
    # One attempt per part: a renewal is not counted as a failure.
    result = make_uploader(attempts=1).upload(path, "Lora")
    assert proxy.bodies("POST", "/parts") == [{"part_numbers": [2]}]
    assert dict(proxy.puts) == {1: 1, 2: 2}
    active(client, result.checkpoint_id, path)


def test_parts_beyond_the_first_urls_get_theirs_in_batches(
    client: ApiClient, proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    # The server hands out the first 1000 URLs; the proxy makes that 2 (a 16 GB file's case).
    def first_two(reply: dict) -> dict:
        return {**reply, "upload": {**reply["upload"], "parts": reply["upload"]["parts"][:2]}}

    proxy.edit_reply("POST", "/checkpoints", first_two)
    path = model_file(tmp_path, 4 * PART + 100)
    result = uploader.upload(path, "Lora")
    asked = [n for body in proxy.bodies("POST", "/parts") for n in body["part_numbers"]]
    assert sorted(asked) == [3, 4, 5]
    assert len(proxy.bodies("POST", "/parts")) <= 2
    assert dict(proxy.puts) == {n: 1 for n in range(1, 6)}
    active(client, result.checkpoint_id, path)


def test_a_lost_completion_answer_is_checked_rather_than_repeated(
    proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, PART + 100)
    proxy.lose_answer("POST", "/complete")
    result = uploader.upload(path, "Lora")
    assert result.outcome == UPLOADED
    assert result.checkpoint is not None and result.checkpoint["status"] == "Active"
    assert len(proxy.bodies("POST", "/complete")) == 1
    assert proxy.paths("GET")[-1] == f"/checkpoints/{result.checkpoint_id}"


def test_parts_the_completion_refuses_are_all_sent_again_on_the_next_try(
    server: Any, proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART + 100)
    up = make_uploader(workers=1)
    state = interrupted(up, path, proxy)
    assert 1 in state.parts
    # Another client sends other bytes as part 1 meanwhile: the recorded ETag is stale.
    put_part(server.admin, state.checkpoint_id, 1, bytes(PART))
    with pytest.raises(UploadFailed, match="Part 1 has ETag") as failed:
        up.upload(path, "Lora")
    assert failed.value.resumable
    after = up.resume_state(path)
    assert after is not None and after.parts == {}

    before = proxy.puts.copy()
    result = up.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.checkpoint_id == state.checkpoint_id
    assert dict(proxy.puts - before) == {1: 1, 2: 1, 3: 1}
    assert stored_sha256(server, state.checkpoint_id, path.name) == sha256_of(path)


def test_a_taken_name_is_refused_before_anything_is_sent(
    proxy: PartProxy, uploader: Uploader, tmp_path: Path
) -> None:
    uploader.upload(model_file(tmp_path, 1000), "Lora")
    other = model_file(tmp_path, 2000, "other.bin")
    puts = sum(proxy.puts.values())
    with pytest.raises(errors.Conflict, match=r"named 'model\.safetensors' already exists"):
        uploader.upload(other, "Lora", name="model.safetensors")
    assert sum(proxy.puts.values()) == puts


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"type": "Checkpoint"}, "'Checkpoint' is not a model type"),
        ({"type": "Lora", "name": "sub/dir.bin"}, "cannot name a model"),
        ({"type": "Lora", "name": " padded"}, "leading or trailing spaces"),
    ],
)
def test_bad_types_and_names_are_refused_in_words_without_a_request(
    proxy: PartProxy, uploader: Uploader, tmp_path: Path, kwargs: dict, words: str
) -> None:
    path = model_file(tmp_path, 1000)
    seen = len(proxy.seen)
    with pytest.raises(errors.InvalidRequest, match=words):
        uploader.upload(path, **kwargs)
    assert len(proxy.seen) == seen


def test_empty_and_missing_files_are_refused(uploader: Uploader, tmp_path: Path) -> None:
    empty = tmp_path / "empty.bin"
    empty.touch()
    with pytest.raises(UploadFailed, match="empty"):
        uploader.upload(empty, "Lora")
    with pytest.raises(UploadFailed, match=r"Cannot read .*missing\.bin: No such file"):
        uploader.upload(tmp_path / "missing.bin", "Lora")
    with pytest.raises(UploadFailed, match="is not a file"):
        uploader.upload(tmp_path, "Lora")


def test_the_same_file_twice_at_once_is_refused(uploader: Uploader, tmp_path: Path) -> None:
    path = model_file(tmp_path, PART + 100)

    def again(progress: UploadProgress) -> None:
        uploader.upload(path, "Lora")

    with pytest.raises(UploadFailed, match="is being uploaded already"):
        uploader.upload(path, "Lora", on_progress=again)
    assert uploader.resume_state(path) is not None


def test_reports_carry_a_rate_and_a_consistent_eta_once_measurable(
    proxy: PartProxy, make_uploader: Callable[..., Uploader], tmp_path: Path
) -> None:
    proxy.delay = 0.15  # a steady pace: one part per 0.15 s plus the time to carry it
    path = model_file(tmp_path, 5 * PART)
    reports: list[UploadProgress] = []
    up = make_uploader(workers=1, tick_seconds=0.05)
    started = time.monotonic()
    up.upload(path, "Lora", on_progress=reports.append)
    average = path.stat().st_size / (time.monotonic() - started)
    uploading = [r for r in reports if r.phase == "uploading"]
    assert uploading[0].rate is None and uploading[0].eta is None  # nothing to measure yet
    rated = [r for r in uploading if r.rate is not None]
    assert rated, "no report carried a rate"
    for report in rated:
        # Bytes per second, as measured from outside (whatever this machine's speed).
        assert average / 3 < report.rate < average * 3
        assert report.eta == pytest.approx((report.bytes_total - report.bytes_done) / report.rate)
    assert [r.bytes_done for r in uploading] == sorted(r.bytes_done for r in uploading)
