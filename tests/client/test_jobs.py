"""`client.jobs` against the real local stack, whose local endpoint runs the demo model.

Each test signs in as a user of its own. The tests that stop a long job come last: the
runtime works on a cancelled job until it is done, so jobs after it wait in the queue.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient
from aws_extension.client.jobs import (
    JobCancelled,
    JobFailed,
    JobProgress,
    JobTimedOut,
    Txt2ImgJob,
    fetch_result,
    follow,
    new_idempotency_key,
    run_txt2img,
    submit,
)
from tests.client.generation_support import ADMIN_ROLE, SMALL, Generation, generation_stack

#: A job that keeps the tiny model busy for a few seconds, long enough to stop it midway.
LONG = {**SMALL, "steps": 60, "batch_size": 1, "width": 128, "height": 128}


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generation]:
    with generation_stack(Path(tmp_path_factory.mktemp("jobs"))) as made:
        yield made


@pytest.fixture
def artist(generation: Generation) -> Iterator[ApiClient]:
    """A new user of the role `admin`, which the endpoint is open to, signed in."""
    with generation.client(generation.add_user("artist", [ADMIN_ROLE])) as client:
        yield client


def _job(generation: Generation, payload: dict, **given) -> Txt2ImgJob:
    return Txt2ImgJob(payload=payload, checkpoint_id=generation.model["id"], **given)


def test_a_job_runs_to_its_images_with_infotexts_and_seeds(generation, artist):
    reports: list[JobProgress] = []

    result = run_txt2img(
        artist, _job(generation, SMALL, endpoint=generation.endpoint), on_progress=reports.append
    )

    assert result.job["status"] == contract.INFERENCE_SUCCEEDED
    assert result.job["endpoint"] == generation.endpoint
    pictures = [Image.open(io.BytesIO(data)) for data in result.images]
    assert [picture.size for picture in pictures] == [(64, 64), (64, 64)]
    assert result.seeds == [1234, 1235]
    assert result.infotexts[0].startswith("a red fox\nNegative prompt: blurry\n")
    assert "Seed: 1234" in result.infotexts[0]
    assert "Seed: 1235" in result.infotexts[1]
    assert pictures[0].info["parameters"] == result.infotexts[0]
    assert result.info["all_seeds"] == [1234, 1235]
    assert result.parameters["steps"] == 2
    assert reports[0].status == contract.INFERENCE_QUEUED
    assert reports[-1].status == contract.INFERENCE_SUCCEEDED
    assert all(report.job_id == result.job_id for report in reports)
    assert [r.elapsed for r in reports] == sorted(r.elapsed for r in reports)


def test_without_an_endpoint_name_the_server_picks_one_the_user_may_use(generation, artist):
    result = run_txt2img(artist, _job(generation, {**SMALL, "batch_size": 1}))

    assert result.job["endpoint"] == generation.endpoint
    assert len(result.images) == 1


def test_one_idempotency_key_makes_one_job(generation, artist):
    job = _job(generation, SMALL)
    key = new_idempotency_key()

    first = submit(artist, job, idempotency_key=key)
    again = submit(artist, job, idempotency_key=key)
    other = submit(artist, job)

    assert again["id"] == first["id"]
    assert other["id"] != first["id"]
    for record in (first, other):
        assert follow(artist, record["id"])["status"] == contract.INFERENCE_SUCCEEDED


def test_a_user_no_endpoint_is_open_to_is_told_to_deploy_one(generation):
    role = generation.add_role("painter", [contract.PERMISSION_INFERENCE])
    login = generation.add_user("painter", [role])
    with generation.client(login) as painter, pytest.raises(errors.Conflict) as caught:
        run_txt2img(painter, _job(generation, SMALL))

    assert caught.value.code == contract.ERROR_NO_ENDPOINT
    assert "deploy one" in str(caught.value)


def test_a_job_the_engine_refuses_fails_with_the_engines_words(generation, artist):
    with pytest.raises(JobFailed) as caught:
        run_txt2img(artist, _job(generation, {**SMALL, "width": 100}))

    failed = caught.value
    assert "multiple of 8" in str(failed)
    assert failed.code == "invalid"
    assert artist.get_inference(failed.job_id)["status"] == contract.INFERENCE_FAILED


def test_the_result_of_a_finished_job_can_be_fetched_again(generation, artist):
    done = run_txt2img(artist, _job(generation, {**SMALL, "batch_size": 1}))

    again = fetch_result(artist, artist.get_inference(done.job_id))

    assert again.images == done.images
    assert again.infotexts == done.infotexts


def test_a_stop_request_cancels_the_job(generation, artist):
    reports: list[JobProgress] = []

    def stop() -> bool:  # a second in, as a user clicking Interrupt
        return any(report.elapsed >= 1.0 for report in reports)

    with pytest.raises(JobCancelled) as caught:
        run_txt2img(artist, _job(generation, LONG), on_progress=reports.append, should_stop=stop)

    assert artist.get_inference(caught.value.job_id)["status"] == contract.INFERENCE_CANCELLED


def test_a_progress_callback_that_raises_cancels_the_job(generation, artist):
    record = submit(artist, _job(generation, LONG))

    def give_up(report: JobProgress) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        follow(artist, record["id"], on_progress=give_up)

    assert artist.get_inference(record["id"])["status"] == contract.INFERENCE_CANCELLED


def test_a_job_that_outlasts_the_timeout_is_cancelled(generation, artist):
    record = submit(artist, _job(generation, LONG))

    with pytest.raises(JobTimedOut, match="was cancelled"):
        follow(artist, record["id"], timeout=0.5)

    assert artist.get_inference(record["id"])["status"] == contract.INFERENCE_CANCELLED
