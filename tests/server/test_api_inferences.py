"""Inference jobs through the API, on local compute: a real middleware on 127.0.0.1 whose
endpoint is a real runtime process (`python -m aws_extension.endpoint serve`, webui engine)
talking to a stand-in A1111 the test steers (`hold`/`release` keep a job running).

Models are uploaded through the API, so the runtime fetches them from the middleware's own
signed URLs; images come back as real PNGs through their download URLs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from aws_extension.middleware.config import Config
from aws_extension.middleware.inference_policy import InferencePolicy
from aws_extension.middleware.records.sqlite import SqliteRecords
from tests.server.a1111_for_jobs import StandInA1111
from tests.server.conftest import PASSWORD, FakeClock
from tests.server.endpoints_support import local_compute
from tests.server.inferences_support import WAIT, Served, served, stored_objects, txt2img
from tests.server.live import complete, folder_blobs_at, put_parts, wait_for

MODEL = random.Random(17).randbytes(3000)
#: Local jobs fail ten minutes after they were made (within the access tokens' 15).
DEADLINE = 600


def problem(reply: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["code"] == code, body
    return body


@pytest.fixture
def config(config: Config) -> Config:
    return replace(config, inferences=InferencePolicy(local_deadline=DEADLINE))


@pytest.fixture
def gen(
    config: Config,
    records: SqliteRecords,
    clock: FakeClock,
    admin_password: str,
    tmp_path: Path,
) -> Iterator[Served]:
    compute = local_compute(tmp_path / "state", clock=clock)
    blobs_at = folder_blobs_at(tmp_path / "blobs", clock)
    with served(config, records, clock, admin_password, blobs_at, compute) as running:
        yield running


@pytest.fixture
def model(gen: Served) -> dict[str, Any]:
    return gen.upload("tiny.safetensors", MODEL)


def deploy(gen: Served, a1111: StandInA1111, models_dir: Path, name: str = "local-a") -> None:
    """A local endpoint running jobs on the stand-in A1111 (the webui engine)."""
    body = {
        "name": name,
        "instance_type": "local",
        "engine": "webui",
        "webui_url": a1111.url,
        "webui_models_dir": str(models_dir),
    }
    reply = gen.api.post("/endpoints", token=gen.admin, json=body)
    assert reply.status_code == 201, reply.text


@pytest.fixture
def endpoint(gen: Served, a1111: StandInA1111, models_dir: Path) -> str:
    deploy(gen, a1111, models_dir)
    return "local-a"


def user(gen: Served, username: str, *permissions: str) -> str:
    """A user holding `permissions` (through a role of its own); its access token."""
    role = f"role-{username}"
    gen.api.create_role(gen.admin, role, list(permissions))
    gen.api.create_user(gen.admin, username, [role], PASSWORD)
    return gen.api.token(username, PASSWORD)


def start(gen: Served, token: str, body: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    reply = gen.submit(token, body, key=key)
    assert reply.status_code == 202, reply.text
    job: dict[str, Any] = reply.json()
    return job


def held(gen: Served, a1111: StandInA1111, token: str, body: dict[str, Any]) -> dict[str, Any]:
    """A job that is `running`: it waits at the held stand-in A1111."""
    a1111.hold()
    job = start(gen, token, body)
    assert a1111.arrived.wait(60), "the job never reached A1111"
    assert gen.job(token, job["id"]).json()["status"] == "running"
    return job


@contextmanager
def concurrent_poll(gen: Served, job_id: str) -> Iterator[Future[requests.Response]]:
    """A long poll of the job running in another thread meanwhile."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(gen.job, gen.admin, job_id, WAIT)


# -- the job ---------------------------------------------------------------------------------


def test_a_job_runs_on_the_local_endpoint_and_its_pngs_come_back(
    gen: Served,
    a1111: StandInA1111,
    model: dict[str, Any],
    endpoint: str,
    clock: FakeClock,
    models_dir: Path,
    tmp_path: Path,
) -> None:
    queued = start(gen, gen.admin, txt2img(model["id"], batch_size=2, seed=11))

    assert queued["status"] == "queued"
    assert queued["task"] == "txt2img"
    assert queued["endpoint"] == endpoint
    assert queued["created_by"] == "admin"
    assert queued["images"] == [] and queued["info"] is None and queued["error"] is None
    assert queued["models"] == {
        "Stable-diffusion": {"id": model["id"], "name": model["name"], "sha256": model["sha256"]},
        "VAE": None,
        "Lora": [],
    }
    assert queued["payload"]["batch_size"] == 2
    deadline = datetime.fromisoformat(queued["deadline_at"])
    assert deadline == datetime.fromtimestamp(clock() + DEADLINE, tz=timezone.utc)

    job = gen.final(gen.admin, queued["id"])

    assert job["status"] == "succeeded", job
    assert job["error"] is None and job["error_code"] is None
    assert [image["seed"] for image in job["images"]] == [11, 12]
    assert job["images"][1]["infotext"].startswith("a lighthouse\nSteps: 2, Seed: 12")
    assert job["info"]["all_seeds"] == [11, 12]
    assert job["parameters"]["prompt"] == "a lighthouse"
    assert set(job["timings"]) == {"fetch_s", "load_s", "generate_s"}
    assert job["started_at"] is not None and job["finished_at"] is not None
    # The runtime fetched the model from the middleware and selected it by name.
    assert a1111.bodies[-1]["override_settings"]["sd_model_checkpoint"] == "tiny.safetensors"
    assert (models_dir / "Stable-diffusion" / "tiny.safetensors").read_bytes() == MODEL
    for image in job["images"]:
        fetched = gen.api.http.get(image["url"], timeout=10)
        assert fetched.status_code == 200
        assert fetched.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert stored_objects(tmp_path / "blobs", job["id"]) == ["0.png", "1.png"]
    listed = gen.api.get("/inferences", token=gen.admin).json()
    assert [item["id"] for item in listed["items"]] == [job["id"]]
    assert listed["next_cursor"] is None


def test_an_engine_failure_fails_the_job_with_its_words(
    gen: Served, model: dict[str, Any], endpoint: str
) -> None:
    job = gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"], "FAIL please"))["id"])

    assert job["status"] == "failed"
    assert job["error_code"] == "engine_error"
    assert "CUDA is on fire" in job["error"]
    assert job["images"] == []


def test_the_list_is_newest_first_and_paged(
    gen: Served, model: dict[str, Any], endpoint: str, clock: FakeClock
) -> None:
    made = []
    for index in range(3):
        made.append(start(gen, gen.admin, txt2img(model["id"], f"image {index}"))["id"])
        clock.advance(1)

    first = gen.api.get("/inferences", token=gen.admin, params={"limit": 2}).json()
    second = gen.api.get(
        "/inferences", token=gen.admin, params={"limit": 2, "cursor": first["next_cursor"]}
    ).json()

    assert [job["id"] for job in first["items"] + second["items"]] == made[::-1]
    assert second["next_cursor"] is None
    for job_id in made:
        gen.final(gen.admin, job_id)


# -- what a request may ask for ---------------------------------------------------------------


def test_models_must_exist_be_visible_active_and_of_their_type(
    gen: Served, model: dict[str, Any]
) -> None:
    lora = gen.upload("ink.safetensors", b"lora bytes", "Lora")
    gen.api.create_role(gen.admin, "secret-keepers", [])
    hidden = gen.upload("hidden.safetensors", b"hidden", allowed_roles=["secret-keepers"])
    uploading = gen.api.post(
        "/checkpoints",
        token=gen.admin,
        json={"name": "half.safetensors", "type": "Stable-diffusion", "size": 100},
    ).json()["checkpoint"]
    unhashed = gen.api.post(
        "/checkpoints",
        token=gen.admin,
        json={"name": "unhashed.safetensors", "type": "Stable-diffusion", "size": 10},
    ).json()
    parts = put_parts(gen, unhashed["upload"], b"0123456789")  # type: ignore[arg-type]
    assert complete(gen, unhashed["checkpoint"]["id"], parts).status_code == 200  # type: ignore[arg-type]
    artist = user(gen, "artist", "inference:all")
    missing = "0" * 24

    cases = [
        (txt2img(missing), "No Stable-diffusion model with id"),
        (txt2img(lora["id"]), "'ink.safetensors' is a Lora model"),
        (txt2img(uploading["id"]), "'half.safetensors' is Uploading, not Active"),
        (txt2img(hidden["id"]), "No Stable-diffusion model with id"),
        (txt2img(unhashed["checkpoint"]["id"]), "has no SHA-256 recorded"),
        (
            {
                **txt2img(model["id"]),
                "models": {"Stable-diffusion": model["id"], "VAE": lora["id"]},
            },
            "is a Lora model",
        ),
        (
            {
                **txt2img(model["id"]),
                "models": {
                    "Stable-diffusion": model["id"],
                    "Lora": [{"id": lora["id"]}, {"id": lora["id"], "weight": 0.5}],
                },
            },
            "listed more than once",
        ),
    ]
    for body, words in cases:
        assert words in problem(gen.submit(artist, body), 400, "invalid")["detail"]
    # Types the runtime cannot apply, and payloads that are not objects, do not validate.
    other_type = {
        **txt2img(model["id"]),
        "models": {"Stable-diffusion": model["id"], "ControlNet": model["id"]},
    }
    problem(gen.submit(artist, other_type), 422, "validation_error")
    problem(
        gen.submit(artist, {**txt2img(model["id"]), "payload": ["prompt"]}), 422, "validation_error"
    )
    problem(
        gen.submit(artist, {**txt2img(model["id"]), "task": "img2img"}), 422, "validation_error"
    )
    too_many = txt2img(model["id"], batch_size=8, n_iter=8)
    assert "64 images" in problem(gen.submit(artist, too_many), 400, "invalid")["detail"]
    huge = txt2img(model["id"], prompt="x" * 70_000)
    problem(gen.submit(artist, huge), 413, "too_large")
    assert gen.api.get("/inferences", token=artist).json()["items"] == []


def test_without_an_endpoint_to_use_the_job_is_refused(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], models_dir: Path
) -> None:
    body = problem(gen.submit(gen.admin, txt2img(model["id"])), 409, "no_endpoint")
    assert "deploy one in Inference Endpoint Management" in body["detail"]
    named = {**txt2img(model["id"]), "endpoint": "nowhere"}
    problem(gen.submit(gen.admin, named), 404, "not_found")
    gen.api.create_role(gen.admin, "vip", [])
    body = {
        "name": "vip-only",
        "instance_type": "local",
        "engine": "webui",
        "webui_url": a1111.url,
        "webui_models_dir": str(models_dir),
        "allowed_roles": ["vip"],
    }
    assert gen.api.post("/endpoints", token=gen.admin, json=body).status_code == 201
    artist = user(gen, "artist", "inference:all")
    # An endpoint the caller may not use is not there for it.
    problem(gen.submit(artist, txt2img(model["id"])), 409, "no_endpoint")
    problem(gen.submit(artist, {**txt2img(model["id"]), "endpoint": "vip-only"}), 404, "not_found")
    assert gen.api.get("/inferences", token=artist).json()["items"] == []


def test_jobs_need_the_inference_permission(gen: Served, model: dict[str, Any]) -> None:
    viewer = user(gen, "viewer", "checkpoint:all")
    problem(gen.submit(viewer, txt2img(model["id"])), 403, "permission_denied")
    problem(gen.api.get("/inferences", token=viewer), 403, "permission_denied")
    problem(gen.job(viewer, "0" * 24), 403, "permission_denied")


# -- idempotency ------------------------------------------------------------------------------


def test_the_same_key_and_body_is_the_same_job(
    gen: Served, model: dict[str, Any], endpoint: str
) -> None:
    artist = user(gen, "artist", "inference:all")
    body = txt2img(model["id"])
    first = start(gen, artist, body, key="retry-1")

    again = start(gen, artist, body, key="retry-1")
    other_body = gen.submit(artist, txt2img(model["id"], "another prompt"), key="retry-1")
    admins = start(gen, gen.admin, body, key="retry-1")

    assert again["id"] == first["id"]
    assert "another request" in problem(other_body, 409, "conflict")["detail"]
    assert admins["id"] != first["id"]  # keys belong to their user
    ids = [job["id"] for job in gen.api.get("/inferences", token=artist).json()["items"]]
    assert ids == [first["id"]]
    gen.final(artist, first["id"])
    # After the job is deleted, its key starts a new one.
    assert gen.api.delete(f"/inferences/{first['id']}", token=artist).status_code == 204
    assert start(gen, artist, body, key="retry-1")["id"] != first["id"]
    problem(gen.submit(artist, body, key="x" * 201), 422, "validation_error")


# -- who sees what ----------------------------------------------------------------------------


def test_users_see_only_their_own_jobs_and_user_managers_see_all(
    gen: Served, model: dict[str, Any], endpoint: str
) -> None:
    bob = user(gen, "bob", "inference:all")
    carol = user(gen, "carol", "inference:all")
    job = gen.final(bob, start(gen, bob, txt2img(model["id"]))["id"])
    path = f"/inferences/{job['id']}"

    problem(gen.job(carol, job["id"]), 404, "not_found")
    problem(gen.api.post(f"{path}/cancel", token=carol), 404, "not_found")
    problem(gen.api.delete(path, token=carol), 404, "not_found")
    problem(
        gen.api.get("/inferences", token=carol, params={"user": "bob"}), 403, "permission_denied"
    )
    assert gen.api.get("/inferences", token=carol).json()["items"] == []

    # The admin holds user:all: it sees and manages everyone's jobs, on request.
    assert gen.job(gen.admin, job["id"]).json()["id"] == job["id"]
    assert gen.api.get("/inferences", token=gen.admin).json()["items"] == []
    listed = gen.api.get("/inferences", token=gen.admin, params={"user": "bob"}).json()
    assert [item["id"] for item in listed["items"]] == [job["id"]]
    assert gen.api.delete(path, token=gen.admin).status_code == 204
    problem(gen.job(bob, job["id"]), 404, "not_found")


# -- cancel and delete ------------------------------------------------------------------------


def test_a_cancelled_job_stays_cancelled_and_its_late_result_is_dropped(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str, tmp_path: Path
) -> None:
    job = held(gen, a1111, gen.admin, txt2img(model["id"]))

    cancelled = gen.api.post(f"/inferences/{job['id']}/cancel", token=gen.admin)
    again = gen.api.post(f"/inferences/{job['id']}/cancel", token=gen.admin)
    a1111.release()
    # One worker: the next job runs once the cancelled one's result was handled.
    after = gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"]))["id"])

    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["finished_at"] is not None
    assert "already cancelled" in problem(again, 409, "conflict")["detail"]
    assert after["status"] == "succeeded"
    final = gen.job(gen.admin, job["id"]).json()
    assert final["status"] == "cancelled" and final["images"] == []
    assert stored_objects(tmp_path / "blobs", job["id"]) == []


def test_a_queued_job_cancelled_never_runs(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str
) -> None:
    first = held(gen, a1111, gen.admin, txt2img(model["id"], "first"))
    second = start(gen, gen.admin, txt2img(model["id"], "second"))

    cancelled = gen.api.post(f"/inferences/{second['id']}/cancel", token=gen.admin).json()
    a1111.release()
    gen.final(gen.admin, first["id"])
    third = gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"], "third"))["id"])

    assert cancelled["status"] == "cancelled"
    assert third["status"] == "succeeded"
    assert [body["prompt"] for body in a1111.bodies] == ["first", "third"]


def test_delete_removes_the_job_and_its_images(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str, tmp_path: Path
) -> None:
    done = gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"]))["id"])
    url = done["images"][0]["url"]
    assert stored_objects(tmp_path / "blobs", done["id"]) == ["0.png"]

    assert gen.api.delete(f"/inferences/{done['id']}", token=gen.admin).status_code == 204

    problem(gen.job(gen.admin, done["id"]), 404, "not_found")
    problem(gen.api.delete(f"/inferences/{done['id']}", token=gen.admin), 404, "not_found")
    assert stored_objects(tmp_path / "blobs", done["id"]) == []
    assert gen.api.http.get(url, timeout=10).status_code == 404
    # A running job is cancelled first; its late result leaves nothing behind.
    job = held(gen, a1111, gen.admin, txt2img(model["id"]))
    assert gen.api.delete(f"/inferences/{job['id']}", token=gen.admin).status_code == 204
    a1111.release()
    gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"]))["id"])
    assert stored_objects(tmp_path / "blobs", job["id"]) == []
    assert len(gen.api.get("/inferences", token=gen.admin).json()["items"]) == 1


# -- long polls and deadlines -----------------------------------------------------------------


def test_a_long_poll_answers_when_the_job_ends_or_when_its_time_is_up(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str
) -> None:
    job = held(gen, a1111, gen.admin, txt2img(model["id"]))

    timed_out = gen.job(gen.admin, job["id"], wait=1)
    assert timed_out.status_code == 200 and timed_out.json()["status"] == "running"
    waiting = gen.inferences.waiter
    with concurrent_poll(gen, job["id"]) as poll:
        wait_for(lambda: waiting.waiting(job["id"]) == 1, what="the poll to wait")
        # The waiting poll holds no worker and not the event loop: others are answered.
        others = [gen.api.get("/inferences", token=gen.admin) for _ in range(3)]
        assert [reply.status_code for reply in others] == [200, 200, 200]
        assert waiting.waiting(job["id"]) == 1
        a1111.release()
        reply = poll.result(timeout=20)

    # The poll asked for 25 s and got the result: the completion woke it.
    assert reply.status_code == 200
    assert reply.json()["status"] == "succeeded"
    for wait in (-1, 25.5, 26):
        problem(gen.job(gen.admin, job["id"], wait=wait), 422, "validation_error")
    problem(gen.job(gen.admin, "0" * 24, wait=5), 404, "not_found")


def test_a_long_poll_also_answers_when_a_queued_job_starts_running(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str
) -> None:
    first = held(gen, a1111, gen.admin, txt2img(model["id"], "first"))
    a1111.hold_prompt("SLOW")
    # One worker, busy with the held first job: the second stays queued until it is free.
    second = start(gen, gen.admin, txt2img(model["id"], "SLOW second"))
    assert second["status"] == "queued"
    try:
        with concurrent_poll(gen, second["id"]) as poll:
            wait_for(lambda: gen.inferences.waiter.waiting(second["id"]) == 1, what="the poll")
            a1111.release()
            # Well before its 25 s: the start of the run answers the poll.
            reply = poll.result(timeout=15)
        assert reply.status_code == 200, reply.text
        assert reply.json()["status"] == "running"
        assert reply.json()["started_at"] is not None
    finally:
        a1111.release_prompt("SLOW")
    assert gen.final(gen.admin, second["id"])["status"] == "succeeded"
    assert gen.final(gen.admin, first["id"])["status"] == "succeeded"


def test_a_job_past_its_deadline_is_failed_by_the_next_read_or_the_sweep(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str, clock: FakeClock
) -> None:
    first = held(gen, a1111, gen.admin, txt2img(model["id"], "first"))
    second = start(gen, gen.admin, txt2img(model["id"], "second"))
    assert gen.inferences.sweep() == 0

    clock.advance(DEADLINE + 1)
    read = gen.job(gen.admin, first["id"]).json()
    swept = gen.inferences.sweep()

    assert read["status"] == "failed"
    assert read["error_code"] == "deadline"
    assert "within 10 minutes" in read["error"]
    assert swept == 1
    assert gen.job(gen.admin, second["id"]).json()["error_code"] == "deadline"
    a1111.release()
    # The late result of the first job is dropped; the second never runs.
    third = gen.final(gen.admin, start(gen, gen.admin, txt2img(model["id"], "third"))["id"])
    assert third["status"] == "succeeded"
    assert gen.job(gen.admin, first["id"]).json()["images"] == []
    assert [body["prompt"] for body in a1111.bodies] == ["first", "third"]


def test_deleting_the_endpoint_fails_its_open_jobs(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str
) -> None:
    first = held(gen, a1111, gen.admin, txt2img(model["id"], "first"))
    second = start(gen, gen.admin, txt2img(model["id"], "second"))

    assert gen.api.delete(f"/endpoints/{endpoint}", token=gen.admin).status_code == 204

    for job_id in (first["id"], second["id"]):
        job = gen.job(gen.admin, job_id).json()
        assert job["status"] == "failed"
        assert job["error_code"] == "endpoint_unavailable"
        assert "'local-a'" in job["error"]


def test_jobs_left_open_by_a_stopped_stack_are_failed_at_the_next_start(
    gen: Served, a1111: StandInA1111, model: dict[str, Any], endpoint: str
) -> None:
    job = held(gen, a1111, gen.admin, txt2img(model["id"]))

    assert gen.inferences.fail_leftovers() == 1

    failed = gen.job(gen.admin, job["id"]).json()
    assert failed["status"] == "failed"
    assert failed["error_code"] == "interrupted"
    assert gen.inferences.fail_leftovers() == 0
