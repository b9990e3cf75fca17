"""The checkpoint methods of ApiClient: paths, bodies, which calls repeat themselves, errors."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import responses
from responses import matchers

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions

API = "https://api.example.test/prod"
API_TOKEN = "tok-ckpt-api-1234"
ACCESS = "acc-ckpt"
CHECKPOINT = {"id": "ck1", "name": "m.safetensors", "type": "Lora", "status": "Uploading"}


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as mock:
        yield mock


@pytest.fixture
def client(rsps: responses.RequestsMock) -> Iterator[ApiClient]:
    rsps.post(
        f"{API}/auth/login",
        json={
            "access_token": ACCESS,
            "refresh_token": "ref",
            "token_type": "bearer",
            "expires_in": 900,
            "user": {"username": "admin", "roles": [], "permissions": ["checkpoint:all"]},
        },
    )
    options = ClientOptions(retries=2, backoff=0.01)
    with ApiClient(API, API_TOKEN, options=options, sleep=Sleeps()) as api:
        api.login("admin", "secret pass")
        yield api


def problem(status: int, code: str, detail: str, **extra: object) -> dict:
    return {"status": status, "code": code, "detail": detail, **extra}


def sent_json(rsps: responses.RequestsMock, index: int = -1) -> object:
    return json.loads(rsps.calls[index].request.body)


def test_create_sends_what_is_given_and_returns_checkpoint_and_upload(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    reply = {"checkpoint": CHECKPOINT, "upload": {"upload_id": "u", "parts": []}}
    rsps.post(f"{API}/checkpoints", json=reply, status=201)
    assert client.create_checkpoint("m.safetensors", "Lora", 10) == reply
    assert sent_json(rsps) == {"name": "m.safetensors", "type": "Lora", "size": 10}
    rsps.post(f"{API}/checkpoints", json=reply, status=201)
    client.create_checkpoint("m", "VAE", 5, sha256="ab" * 32, allowed_roles=("a", "b"))
    assert sent_json(rsps) == {
        "name": "m",
        "type": "VAE",
        "size": 5,
        "sha256": "ab" * 32,
        "allowed_roles": ["a", "b"],
    }
    assert rsps.calls[-1].request.headers["Authorization"] == f"Bearer {ACCESS}"


def test_duplicate_content_names_the_existing_model(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(
        f"{API}/checkpoints",
        json=problem(409, "duplicate_content", "Same content as 'old'", existing_id="ck9"),
        status=409,
    )
    with pytest.raises(errors.DuplicateContent) as raised:
        client.create_checkpoint("m", "Lora", 10, sha256="ab" * 32)
    assert raised.value.existing_id == "ck9"
    assert str(raised.value) == "Same content as 'old'."
    assert isinstance(raised.value, errors.Conflict)
    assert "existing_id='ck9'" in repr(raised.value)


def test_a_plain_conflict_stays_a_conflict(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.post(f"{API}/checkpoints", json=problem(409, "conflict", "The name is taken."), status=409)
    with pytest.raises(errors.Conflict) as raised:
        client.create_checkpoint("m", "Lora", 10)
    assert not isinstance(raised.value, errors.DuplicateContent)


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda c: c.create_checkpoint("m", "Lora", 1), "/checkpoints"),
        (lambda c: c.complete_checkpoint("ck1", [(1, '"e"')]), "/checkpoints/ck1/complete"),
        (lambda c: c.import_checkpoint("https://x.test/m", "Lora"), "/checkpoints/import"),
    ],
)
def test_posts_that_change_things_are_not_repeated(
    client: ApiClient, rsps: responses.RequestsMock, call: object, path: str
) -> None:
    rsps.post(f"{API}{path}", json=problem(503, "unavailable", "Busy."), status=503)
    with pytest.raises(errors.ServerError):
        call(client)  # type: ignore[operator]
    assert len([c for c in rsps.calls if c.request.url.endswith(path)]) == 1


def test_part_urls_and_abort_are_repeated_after_transient_failures(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    parts = f"{API}/checkpoints/ck1/parts"
    rsps.post(parts, status=503)
    rsps.post(
        parts,
        json={"parts": [{"part_number": 2, "url": "u"}], "expires_at": "x"},
        match=[matchers.json_params_matcher({"part_numbers": [2, 5]})],
    )
    assert client.checkpoint_parts("ck1", [2, 5])["parts"][0]["url"] == "u"
    abort = f"{API}/checkpoints/ck1/abort"
    rsps.post(abort, status=502)
    rsps.post(abort, status=204)
    assert client.abort_checkpoint("ck1") is None


def test_complete_sends_the_parts_in_order_with_the_sha256(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.post(f"{API}/checkpoints/ck1/complete", json={**CHECKPOINT, "status": "Active"})
    done = client.complete_checkpoint("ck1", [(2, '"b"'), (1, '"a"')], sha256="cd" * 32)
    assert done["status"] == "Active"
    assert sent_json(rsps) == {
        "parts": [{"part_number": 1, "etag": '"a"'}, {"part_number": 2, "etag": '"b"'}],
        "sha256": "cd" * 32,
    }


def test_list_passes_only_the_filters_given(
    client: ApiClient, rsps: responses.RequestsMock
) -> None:
    rsps.get(
        f"{API}/checkpoints",
        json={"items": [CHECKPOINT], "next_cursor": "c2"},
        match=[matchers.query_param_matcher({"type": "Lora", "status": "Active", "limit": "10"})],
    )
    page = client.list_checkpoints(type="Lora", status="Active", limit=10)
    assert page.items == [CHECKPOINT] and page.next_cursor == "c2"
    rsps.get(
        f"{API}/checkpoints",
        json={"items": [], "next_cursor": None},
        match=[matchers.query_param_matcher({"name": "m", "limit": "50", "cursor": "c2"})],
    )
    assert client.list_checkpoints(name="m", cursor="c2").items == []


def test_get_update_delete_and_import(client: ApiClient, rsps: responses.RequestsMock) -> None:
    rsps.get(f"{API}/checkpoints/ck%2F1", json=CHECKPOINT)
    assert client.get_checkpoint("ck/1") == CHECKPOINT  # ids are quoted into the path
    rsps.patch(f"{API}/checkpoints/ck1", json={**CHECKPOINT, "name": "n"})
    assert client.update_checkpoint("ck1", name="n")["name"] == "n"
    assert sent_json(rsps) == {"name": "n"}
    rsps.patch(f"{API}/checkpoints/ck1", json=CHECKPOINT)
    client.update_checkpoint("ck1", allowed_roles=[])
    assert sent_json(rsps) == {"allowed_roles": []}
    with pytest.raises(ValueError, match="name or allowed_roles"):
        client.update_checkpoint("ck1")
    rsps.delete(f"{API}/checkpoints/ck1", status=204)
    assert client.delete_checkpoint("ck1") is None
    rsps.post(f"{API}/checkpoints/import", json={**CHECKPOINT, "status": "Importing"}, status=202)
    assert client.import_checkpoint("https://x.test/m.bin", "VAE", name="m", allowed_roles=["a"])
    assert sent_json(rsps) == {
        "url": "https://x.test/m.bin",
        "type": "VAE",
        "name": "m",
        "allowed_roles": ["a"],
    }


def test_a_path_segment_that_would_change_the_path_is_refused(client: ApiClient) -> None:
    with pytest.raises(errors.InvalidRequest, match="model id"):
        client.get_checkpoint("..")
