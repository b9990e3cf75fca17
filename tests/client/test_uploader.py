"""The uploader's flow against the checkpoints API and part URLs faked over `responses`.

What is under test is the client: which calls it makes in which order, which parts it sends
(and does not send again on resume), what it does with the server's refusals, and what it
tells the caller. tests/server/test_uploader_*.py run the same code against the real server.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
import responses
from fake_checkpoints import (
    API,
    API_TOKEN,
    PASSWORD,
    URL_SECRET,
    FakeCheckpoints,
)

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.transfer import UploadProgress
from aws_extension.client.uploader import SKIPPED, UPLOADED, Uploader, UploadFailed

PART = 1024


@pytest.fixture
def fake() -> Iterator[FakeCheckpoints]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeCheckpoints(mock, part_size=PART)


@pytest.fixture
def client(fake: FakeCheckpoints) -> Iterator[ApiClient]:
    options = ClientOptions(timeout=5, connect_timeout=2, retries=2, backoff=0)
    with ApiClient(API, API_TOKEN, options=options) as api:
        api.login("admin", PASSWORD)
        yield api


@pytest.fixture
def uploader(client: ApiClient, tmp_path: Path) -> Iterator[Uploader]:
    with Uploader(client, tmp_path / "states", workers=2, backoff=0, tick_seconds=0) as up:
        yield up


def model_file(tmp_path: Path, size: int = 5 * PART + 100, name: str = "model.safetensors") -> Path:
    path = tmp_path / name
    path.write_bytes(random.Random(size).randbytes(size))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_upload_sends_each_part_once_and_completes_with_the_sha256(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path)
    reports: list[UploadProgress] = []
    result = uploader.upload(path, "Lora", allowed_roles=["artist"], on_progress=reports.append)

    assert result.outcome == UPLOADED
    assert result.checkpoint is not None and result.checkpoint["status"] == "Active"
    assert result.sha256 == sha256_of(path)
    assert (result.size, result.sent_bytes, result.reused_parts) == (
        path.stat().st_size,
        path.stat().st_size,
        0,
    )
    assert sorted(fake.puts) == [1, 2, 3, 4, 5, 6]
    [create] = fake.bodies("POST", "/checkpoints")
    assert create == {
        "name": "model.safetensors",
        "type": "Lora",
        "size": 5 * PART + 100,
        "allowed_roles": ["artist"],
    }
    [complete] = fake.bodies("POST", "/complete")
    assert complete["sha256"] == sha256_of(path)
    assert [p["part_number"] for p in complete["parts"]] == [1, 2, 3, 4, 5, 6]
    assert not uploader.state_file(path).exists()
    assert result.message.startswith(
        f"Uploaded model.safetensors as {result.checkpoint_id} (sha256 {result.sha256[:10]}"
    )

    uploading = [r for r in reports if r.phase == "uploading"]
    assert uploading[-1].bytes_done == uploading[-1].bytes_total == path.stat().st_size
    assert uploading[-1].parts_done == uploading[-1].parts_total == 6
    assert reports[-1].phase == "completing"
    assert all(r.name == "model.safetensors" and r.path == str(path) for r in reports)


def test_a_crash_after_some_parts_resumes_with_only_the_missing_ones(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 8 * PART)
    fake.put_delay = 0.02
    with Uploader(client, tmp_path / "states", workers=2, tick_seconds=0) as first:
        with pytest.raises(KeyboardInterrupt):
            first.upload(path, "VAE", on_progress=_stop_after(3))
        state = first.resume_state(path)
    assert state is not None and 3 <= len(state.parts) < 8
    sent_before = list(fake.puts)
    # Parts stored while it stopped are recorded too.
    assert sorted(sent_before) == sorted(state.parts)

    reports: list[UploadProgress] = []
    with Uploader(client, tmp_path / "states", workers=2, tick_seconds=0) as second:
        result = second.upload(path, "VAE", on_progress=reports.append)
    resent = fake.puts[len(sent_before) :]
    assert sorted(resent) == state.missing()
    assert fake.paths("POST").count("/checkpoints") == 1
    [renewal] = fake.bodies("POST", "/parts")
    assert renewal == {"part_numbers": state.missing()}
    assert result.reused_parts == len(state.parts)
    assert result.sha256 == sha256_of(path)
    assert result.sent_bytes == PART * len(state.missing())
    assert "parts from an earlier try" in result.message
    # The bar starts where the earlier run stopped.
    assert reports[0].bytes_done >= PART * len(state.parts)


def test_a_resume_the_server_forgot_starts_over_cleanly(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 4 * PART)
    with Uploader(client, tmp_path / "states", workers=1, tick_seconds=0) as up:
        with pytest.raises(KeyboardInterrupt):
            up.upload(path, "Lora", on_progress=_stop_after(2))
        fake.models.clear()  # swept by the server meanwhile
        result = up.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.reused_parts == 0
    assert fake.paths("POST").count("/checkpoints") == 2
    assert result.checkpoint_id == "ck1"  # numbered after the models left
    assert sorted(fake.puts[-4:]) == [1, 2, 3, 4]


def test_a_resume_after_a_crash_between_completion_and_cleanup_reports_the_model(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART)
    with Uploader(client, tmp_path / "states", workers=1, tick_seconds=0) as up:
        with pytest.raises(KeyboardInterrupt):
            up.upload(path, "Lora", on_progress=_stop_after(1))
        # Another run (say, the tab) finished it, but this state file stayed.
        model = next(iter(fake.models.values()))
        model.status, model.sha256 = "Active", sha256_of(path)
        puts = len(fake.puts)
        result = up.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.checkpoint_id == model.id
    assert len(fake.puts) == puts
    assert not up.state_file(path).exists()


def test_a_changed_file_is_not_resumed_with_old_parts(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 3 * PART)
    with Uploader(client, tmp_path / "states", workers=1, tick_seconds=0) as up:
        with pytest.raises(KeyboardInterrupt):
            up.upload(path, "Lora", on_progress=_stop_after(1))
        path.write_bytes(random.Random(1).randbytes(3 * PART))
        status = path.stat()
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
        result = up.upload(path, "Lora")
    assert fake.paths("POST").count("/checkpoints/ck1/abort") == 1
    assert result.checkpoint_id == "ck1" and result.sha256 == sha256_of(path)
    assert result.reused_parts == 0


def test_a_resume_under_another_name_renames_the_model(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 3 * PART)
    with Uploader(client, tmp_path / "states", workers=1, tick_seconds=0) as up:
        with pytest.raises(KeyboardInterrupt):
            up.upload(path, "Lora", on_progress=_stop_after(1))
        result = up.upload(path, "Lora", name="renamed.safetensors")
    assert fake.bodies("PATCH", "/checkpoints/ck1") == [{"name": "renamed.safetensors"}]
    assert result.name == "renamed.safetensors" and result.reused_parts >= 1


def _stop_after(parts: int) -> Callable[[UploadProgress], None]:
    def stop(progress: UploadProgress) -> None:
        if progress.parts_done >= parts:
            raise KeyboardInterrupt

    return stop


@pytest.mark.parametrize("known", ["given", "hash_first"])
def test_content_already_in_the_cloud_is_skipped_before_sending(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path, known: str
) -> None:
    path = model_file(tmp_path)
    fake.contents[("Lora", sha256_of(path))] = "ck-old"
    reports: list[UploadProgress] = []
    with Uploader(client, tmp_path / "states", hash_first=known == "hash_first") as up:
        result = up.upload(
            path,
            "Lora",
            sha256=sha256_of(path) if known == "given" else None,
            on_progress=reports.append,
        )
    assert result.outcome == SKIPPED and result.checkpoint_id == "ck-old"
    assert result.message == "model.safetensors is already in the cloud as ck-old."
    assert fake.puts == []
    assert fake.bodies("POST", "/checkpoints")[0]["sha256"] == sha256_of(path)
    if known == "hash_first":
        assert reports[-1].phase == "hashing" and reports[-1].bytes_done == path.stat().st_size


def test_a_given_sha256_that_is_not_the_file_s_abandons_the_upload(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path)
    with pytest.raises(UploadFailed, match="is not the file's") as failed:
        uploader.upload(path, "Lora", sha256="0" * 64)
    assert not failed.value.resumable
    assert fake.paths("POST")[-1] == "/checkpoints/ck1/abort"
    assert fake.bodies("POST", "/complete") == []
    assert not uploader.state_file(path).exists()


def test_a_part_that_fails_twice_then_succeeds_completes_the_upload(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 3 * PART)
    fake.fail_part(2, 500, requests.ConnectionError("reset"))
    result = uploader.upload(path, "Lora")
    assert result.outcome == UPLOADED
    assert sorted(fake.puts) == [1, 2, 2, 2, 3]


def test_a_part_failing_every_time_keeps_the_state_and_says_how_to_resume(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = model_file(tmp_path, 3 * PART)
    fake.fail_part(3, *[503] * 5)
    caplog.set_level(logging.DEBUG)
    with (
        Uploader(client, tmp_path / "states", workers=1, attempts=5, backoff=0) as up,
        pytest.raises(UploadFailed) as failed,
    ):
        up.upload(path, "Lora")
    error = failed.value
    assert error.resumable and error.state_file is not None and error.state_file.exists()
    assert (error.parts_stored, error.parts_total) == (2, 3)
    assert str(error) == (
        "Uploading model.safetensors stopped: Part 3 could not be stored after 5 attempts "
        "(last: the server answered 503 Service Unavailable). 2 of 3 parts are in the cloud; "
        "upload the same file again to resume."
    )
    assert fake.puts.count(3) == 5
    assert URL_SECRET not in caplog.text and URL_SECRET not in str(error)

    # And the promise holds: the next try sends part 3 only.
    with Uploader(client, tmp_path / "states", workers=1) as up:
        result = up.upload(path, "Lora")
    assert fake.puts[-1] == 3 and fake.puts.count(3) == 6
    assert result.reused_parts == 2


def test_an_expired_url_is_renewed_through_the_api(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART)
    fake.fail_part(2, "expired")
    uploader.upload(path, "Lora")
    assert fake.bodies("POST", "/parts") == [{"part_numbers": [2]}]
    assert fake.puts.count(2) == 2


def test_parts_beyond_the_first_urls_get_theirs_in_batches(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    fake.first_urls = 2
    path = model_file(tmp_path, 6 * PART)
    uploader.upload(path, "Lora")
    asked = [n for body in fake.bodies("POST", "/parts") for n in body["part_numbers"]]
    assert sorted(asked) == [3, 4, 5, 6]
    assert len(fake.bodies("POST", "/parts")) <= 2


def test_a_lost_completion_answer_is_checked_rather_than_repeated(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 2 * PART)
    fake.lose_complete_answer = True
    result = uploader.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.checkpoint["status"] == "Active"
    assert len(fake.bodies("POST", "/complete")) == 1
    assert fake.paths("GET")[-1] == "/checkpoints/ck1"


def test_parts_the_completion_refuses_are_all_sent_again_on_the_next_try(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path, 3 * PART)
    fake.refuse_complete = True
    with pytest.raises(UploadFailed, match="Part 1 has ETag") as failed:
        uploader.upload(path, "Lora")
    assert failed.value.resumable
    assert uploader.resume_state(path).parts == {}
    result = uploader.upload(path, "Lora")
    assert result.outcome == UPLOADED and result.checkpoint_id == "ck1"
    assert sorted(fake.puts) == [1, 1, 2, 2, 3, 3]


def test_a_taken_name_is_refused_before_anything_is_sent(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path
) -> None:
    path = model_file(tmp_path)
    uploader.upload(path, "Lora")
    other = model_file(tmp_path / "..", name="other.bin")
    with pytest.raises(errors.Conflict, match=r"named 'model\.safetensors' exists"):
        uploader.upload(other, "Lora", name="model.safetensors")
    assert len(fake.puts) == 6


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"type": "Checkpoint"}, "'Checkpoint' is not a model type"),
        ({"type": "Lora", "name": "sub/dir.bin"}, "cannot name a model"),
        ({"type": "Lora", "name": " padded"}, "leading or trailing spaces"),
    ],
)
def test_bad_types_and_names_are_refused_in_words_without_a_request(
    fake: FakeCheckpoints, uploader: Uploader, tmp_path: Path, kwargs: dict, words: str
) -> None:
    path = model_file(tmp_path)
    calls = len(fake.calls)
    with pytest.raises(errors.InvalidRequest, match=words):
        uploader.upload(path, **kwargs)
    assert len(fake.calls) == calls


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
    path = model_file(tmp_path, 3 * PART)

    def again(progress: UploadProgress) -> None:
        uploader.upload(path, "Lora")

    with pytest.raises(UploadFailed, match="is being uploaded already"):
        uploader.upload(path, "Lora", on_progress=again)
    assert uploader.resume_state(path) is not None


def test_reports_carry_a_rate_and_a_consistent_eta_once_measurable(
    fake: FakeCheckpoints, client: ApiClient, tmp_path: Path
) -> None:
    fake.put_delay = 0.15
    path = model_file(tmp_path, 6 * PART)
    reports: list[UploadProgress] = []
    with Uploader(client, tmp_path / "states", workers=1, tick_seconds=0.05) as up:
        up.upload(path, "Lora", on_progress=reports.append)
    uploading = [r for r in reports if r.phase == "uploading"]
    assert uploading[0].rate is None and uploading[0].eta is None  # nothing to measure yet
    rated = [r for r in uploading if r.rate is not None]
    assert rated, "no report carried a rate"
    for report in rated:
        # About one part per 0.15 s.
        assert PART / 0.15 / 3 < report.rate < PART / 0.15 * 3
        assert report.eta == pytest.approx((report.bytes_total - report.bytes_done) / report.rate)
    assert [r.bytes_done for r in uploading] == sorted(r.bytes_done for r in uploading)
