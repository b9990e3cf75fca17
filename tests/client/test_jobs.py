"""`client.jobs` against the real local stack, whose local endpoint runs the demo model.

Each test signs in as a user of its own. The tests that stop a long job come last: the
runtime works on a cancelled job until it is done, so jobs after it wait in the queue.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
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
from tests.client.job_support import ADMIN_ROLE, SMALL, Studio, studio
from tests.support.part_proxy import PartProxy, running_proxy

#: A job that keeps the tiny model busy for a few seconds, long enough to stop it midway.
LONG = {**SMALL, "steps": 60, "batch_size": 1, "width": 128, "height": 128}


@pytest.fixture(scope="module")
def generation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    with studio(Path(tmp_path_factory.mktemp("jobs"))) as made:
        yield made


@pytest.fixture
def artist(generation: Studio) -> Iterator[ApiClient]:
    """A new user of the role `admin`, which the endpoint is open to, signed in."""
    with generation.client(generation.add_user("artist", [ADMIN_ROLE])) as client:
        yield client


@pytest.fixture
def proxy() -> Iterator[PartProxy]:
    with running_proxy() as running:
        yield running


@pytest.fixture
def proxied(generation: Studio, proxy: PartProxy) -> Iterator[ApiClient]:
    """A new user of the role `admin`, signed in, its calls through the fault proxy, with
    one retry of what may be repeated."""
    login = generation.add_user("artist", [ADMIN_ROLE])
    session = requests.Session()
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    options = ClientOptions(timeout=30, connect_timeout=5, retries=1, backoff=0)
    stack = generation.stack
    with ApiClient(stack.url, stack.api_token, options=options, session=session) as client:
        client.login(login.username, login.password)
        yield client
    session.close()


def _job(generation: Studio, payload: dict, **given) -> Txt2ImgJob:
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


def test_a_submission_whose_answer_was_lost_is_repeated_into_the_same_job(
    generation, proxied, proxy
):
    proxy.lose_answer("POST", "/inferences")

    result = run_txt2img(proxied, _job(generation, SMALL))

    assert proxy.bodies("POST", "/inferences") == [_job(generation, SMALL).body()] * 2
    assert [job["id"] for job in proxied.list_inferences().items] == [result.job_id]


def test_a_quick_job_costs_at_most_two_long_polls(generation, proxied, proxy):
    result = run_txt2img(proxied, _job(generation, SMALL))

    assert proxy.paths("POST") == ["/auth/login", "/inferences"]
    # The server answers a poll when the job starts running and when it ends; a poll sent
    # after the start sees only the end.
    assert 1 <= proxy.paths("GET").count(f"/inferences/{result.job_id}") <= 2


def test_following_goes_on_after_a_poll_lost_its_answer(generation, proxied, proxy):
    record = submit(proxied, _job(generation, SMALL))
    path = f"/inferences/{record['id']}"
    proxy.lose_answer("GET", path)
    proxy.lose_answer("GET", path)  # the client's own retry too

    final = follow(proxied, record["id"])

    assert final["status"] == contract.INFERENCE_SUCCEEDED
    assert proxy.paths("GET").count(path) == 3


def test_refused_image_urls_are_replaced_by_fresh_ones(generation, proxied, proxy):
    record = follow(proxied, submit(proxied, _job(generation, SMALL))["id"])
    path = f"/inferences/{record['id']}"

    def damage(job: dict) -> dict:
        return {**job, "images": [{**i, "url": i["url"] + "0"} for i in job["images"]]}

    proxy.edit_reply("GET", path, damage)
    stale = proxied.get_inference(record["id"])

    result = fetch_result(proxied, stale)

    assert len(result.images) == 2
    assert proxy.paths("GET").count(path) == 3  # follow, the damaged read, the fresh one


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
