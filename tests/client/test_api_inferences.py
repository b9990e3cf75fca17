"""ApiClient's inference calls against a mocked server (`responses`): what they send, when
they repeat themselves, and that an image's signed URL never leaks.

Only the client's mechanics are tested here; the jobs themselves run against the real local
stack in test_jobs.py.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import pytest
import requests
import responses

from aws_extension import contract
from aws_extension.client import api, errors
from aws_extension.client.api import ApiClient, ClientOptions
from tests.client.mocked_api import ACCESS, API, API_TOKEN, REFRESH, Sleeps

IMAGE_URL = "https://bucket.s3.example.test/inferences/j1/0.png?X-Amz-Signature=sig-SECRET-77"
JOB = {"id": "0190aa00000000000000abcd", "status": "queued"}
BODY = {
    "task": "txt2img",
    "models": {"Stable-diffusion": "0190aa000000000000000001"},
    "payload": {"prompt": "a red fox", "steps": 2},
}


@pytest.fixture
def client(rsps: responses.RequestsMock, sleeps: Sleeps) -> Iterator[ApiClient]:
    options = ClientOptions(timeout=7.0, connect_timeout=2.0, retries=3)
    with ApiClient(API, API_TOKEN, options=options, sleep=sleeps) as api:
        rsps.post(
            f"{API}/auth/login",
            json={
                "access_token": ACCESS,
                "refresh_token": REFRESH,
                "user": {"username": "alice", "permissions": [contract.PERMISSION_INFERENCE]},
            },
        )
        api.login("alice", "pw-Zebra-4410-secret")
        yield api


def _calls(rsps: responses.RequestsMock, method: str, path: str) -> list:
    return [
        call
        for call in rsps.calls
        if call.request.method == method and call.request.url.split("?")[0] == API + path
    ]


# -- create --------------------------------------------------------------------------------


def test_create_sends_the_body_and_the_idempotency_key(rsps, client: ApiClient) -> None:
    rsps.post(f"{API}/inferences", json=JOB, status=202)

    job = client.create_inference(BODY, idempotency_key="key-1")

    assert job == JOB
    (call,) = _calls(rsps, "POST", "/inferences")
    assert json.loads(call.request.body) == BODY
    assert call.request.headers["Idempotency-Key"] == "key-1"
    assert call.request.headers["Authorization"] == f"Bearer {ACCESS}"
    assert call.request.headers["x-api-key"] == API_TOKEN


def test_create_is_retried_with_the_same_key_since_the_key_makes_it_safe(
    rsps, client: ApiClient, sleeps: Sleeps
) -> None:
    rsps.post(f"{API}/inferences", status=503, json={"detail": "busy"})
    rsps.post(f"{API}/inferences", body=requests.ConnectionError("reset by peer"))
    rsps.post(f"{API}/inferences", json=JOB, status=202)

    assert client.create_inference(BODY, idempotency_key="key-7")["id"] == JOB["id"]

    calls = _calls(rsps, "POST", "/inferences")
    assert [call.request.headers["Idempotency-Key"] for call in calls] == ["key-7"] * 3
    assert [json.loads(call.request.body) for call in calls] == [BODY] * 3
    assert len(sleeps) == 2


def test_create_says_there_is_no_endpoint_with_the_servers_code(rsps, client) -> None:
    detail = "No endpoint you may use is in service; deploy one in Inference Endpoint Management"
    rsps.post(
        f"{API}/inferences",
        status=409,
        json={"status": 409, "detail": detail, "code": contract.ERROR_NO_ENDPOINT},
    )

    with pytest.raises(errors.Conflict) as caught:
        client.create_inference(BODY, idempotency_key="key-2")

    assert caught.value.code == contract.ERROR_NO_ENDPOINT
    assert str(caught.value) == detail + "."


# -- read, list, cancel, delete ------------------------------------------------------------


def test_a_long_poll_waits_on_the_server_and_reads_longer_than_it_waits(rsps, client) -> None:
    path = f"/inferences/{JOB['id']}"
    rsps.get(f"{API}{path}", json=JOB)

    client.get_inference(JOB["id"], wait=20)
    client.get_inference(JOB["id"])

    long_poll, plain = _calls(rsps, "GET", path)
    assert long_poll.request.params == {"wait": "20"}
    connect, read = long_poll.request.req_kwargs["timeout"]
    assert connect == 2.0
    assert read > 20
    assert plain.request.params == {}
    assert plain.request.req_kwargs["timeout"] == (2.0, 7.0)


@pytest.mark.parametrize(("asked", "sent"), [(-5, None), (0, None), (99, "25"), (3.9, "3")])
def test_the_wait_is_kept_within_what_the_server_accepts(rsps, client, asked, sent) -> None:
    rsps.get(f"{API}/inferences/{JOB['id']}", json=JOB)

    client.get_inference(JOB["id"], wait=asked)

    (call,) = _calls(rsps, "GET", f"/inferences/{JOB['id']}")
    assert call.request.params.get("wait") == sent
    assert int(sent or 0) <= contract.MAX_WAIT_SECONDS


def test_list_pages_through_the_callers_jobs_or_another_users(rsps, client) -> None:
    rsps.get(f"{API}/inferences", json={"items": [JOB], "next_cursor": "c2"})

    page = client.list_inferences(limit=10, cursor="c1")
    client.list_inferences(user="bob")

    assert (page.items, page.next_cursor) == ([JOB], "c2")
    first, second = _calls(rsps, "GET", "/inferences")
    assert first.request.params == {"limit": "10", "cursor": "c1"}
    assert second.request.params == {"limit": "50", "user": "bob"}


def test_cancel_is_not_repeated_since_a_repeat_would_find_the_job_final(
    rsps, client, sleeps
) -> None:
    rsps.post(f"{API}/inferences/{JOB['id']}/cancel", status=503, json={"detail": "busy"})

    with pytest.raises(errors.ServerError):
        client.cancel_inference(JOB["id"])

    assert len(_calls(rsps, "POST", f"/inferences/{JOB['id']}/cancel")) == 1
    assert sleeps == []


def test_delete_and_cancel_use_the_jobs_path(rsps, client) -> None:
    rsps.post(f"{API}/inferences/{JOB['id']}/cancel", json={**JOB, "status": "cancelled"})
    rsps.delete(f"{API}/inferences/{JOB['id']}", status=204)

    assert client.cancel_inference(JOB["id"])["status"] == "cancelled"
    client.delete_inference(JOB["id"])


def test_a_job_id_cannot_change_the_path(client) -> None:
    with pytest.raises(errors.InvalidRequest):
        client.get_inference("..")


# -- image downloads -----------------------------------------------------------------------


def test_an_image_is_fetched_without_the_apis_credentials(rsps, client) -> None:
    rsps.get(IMAGE_URL, body=b"\x89PNG-bytes")

    assert client.download_image(IMAGE_URL) == b"\x89PNG-bytes"

    (call,) = [c for c in rsps.calls if c.request.url == IMAGE_URL]
    assert "x-api-key" not in call.request.headers
    assert "Authorization" not in call.request.headers
    assert call.request.req_kwargs["timeout"] == (2.0, 7.0)


def test_a_refused_download_keeps_its_status_but_never_shows_the_url(rsps, client, caplog) -> None:
    rsps.get(IMAGE_URL, status=403, body=b"<Error>Request has expired</Error>")

    with caplog.at_level(logging.DEBUG), pytest.raises(errors.ApiError) as caught:
        client.download_image(IMAGE_URL)

    assert caught.value.status == 403
    assert "expired" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert "sig-SECRET-77" not in text
        assert "bucket.s3" not in text


def test_a_download_is_retried_on_passing_failures_without_logging_the_url(
    rsps, client, sleeps, caplog
) -> None:
    rsps.get(IMAGE_URL, status=503)
    rsps.get(IMAGE_URL, body=requests.ConnectionError(f"cannot reach {IMAGE_URL}"))
    rsps.get(IMAGE_URL, body=b"png")

    with caplog.at_level(logging.DEBUG):
        assert client.download_image(IMAGE_URL) == b"png"

    assert len(sleeps) == 2
    assert "sig-SECRET-77" not in caplog.text


def test_a_download_that_keeps_failing_names_the_reason_not_the_url(client, rsps) -> None:
    error = requests.ConnectionError(f"Max retries exceeded with url: {IMAGE_URL}")
    for _ in range(4):
        rsps.get(IMAGE_URL, body=error)

    with pytest.raises(errors.ConnectionFailed) as caught:
        client.download_image(IMAGE_URL)

    assert "sig-SECRET-77" not in str(caught.value)
    assert "image storage could not be reached" in str(caught.value)


def test_a_download_from_a_closed_port_fails_without_the_url() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/blobs/x.png?signature=sig-SECRET-88"
    options = ClientOptions(timeout=2.0, connect_timeout=2.0, retries=0)
    with (
        ApiClient("http://127.0.0.1:1", API_TOKEN, options=options) as client,
        pytest.raises(errors.ConnectionFailed) as caught,
    ):
        client.download_image(url)

    assert "refused" in str(caught.value)
    assert "sig-SECRET-88" not in str(caught.value)


def test_an_image_larger_than_any_generated_one_is_refused(rsps, client, monkeypatch) -> None:
    limit = 1024 * 1024  # the real one is far larger; the check is the same
    monkeypatch.setattr(api, "MAX_IMAGE_BYTES", limit)
    rsps.get(IMAGE_URL, body=b"x" * (limit + 1))

    with pytest.raises(errors.ApiError, match="larger than"):
        client.download_image(IMAGE_URL)
