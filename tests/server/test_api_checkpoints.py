"""Models (checkpoints): uploads, completion rules, management and visibility.

Against a real middleware on 127.0.0.1 whose folder blobs sign URLs to its own `/blobs/...`
routes; parts are PUT with `requests` as the uploader does. Parts are 1 KiB here.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable
from contextlib import closing
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from fastapi.testclient import TestClient

from aws_extension.contract import MAX_PART_URLS
from aws_extension.middleware.app import create_app
from aws_extension.middleware.blobs import UploadNotFound
from aws_extension.middleware.checkpoint_policy import GIB, MIB, CheckpointPolicy
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from tests.server.conftest import API_TOKEN, PASSWORD, FakeClock
from tests.server.live import PART_SIZE, POLICY, Live, complete, md5_etag
from tests.server.live import put_parts as put_parts_of

_random = random.Random(3)
#: Three parts: two whole ones and a short last one.
DATA = _random.randbytes(2 * PART_SIZE + 500)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def live(start_live: Callable[..., Live]) -> Live:
    return start_live()


def problem(reply: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = reply.json()
    assert body["status"] == status
    assert body["code"] == code, body
    assert body["detail"]
    return body


def start(
    live: Live,
    name: str = "model.safetensors",
    *,
    size: int = len(DATA),
    token: str | None = None,
    **fields: Any,
) -> dict[str, Any]:
    body = {"name": name, "type": "Stable-diffusion", "size": size, **fields}
    reply = live.api.post("/checkpoints", token=token or live.admin, json=body)
    assert reply.status_code == 201, reply.text
    result: dict[str, Any] = reply.json()
    return result


def put_parts(live: Live, upload: dict[str, Any], data: bytes = DATA) -> list[dict[str, Any]]:
    return put_parts_of(live, upload, data)


def upload_model(live: Live, name: str = "model.safetensors", **fields: Any) -> dict[str, Any]:
    started = start(live, name, **fields)
    parts = put_parts(live, started["upload"])
    reply = complete(live, started["checkpoint"]["id"], parts, sha256=SHA)
    assert reply.status_code == 200, reply.text
    checkpoint: dict[str, Any] = reply.json()
    return checkpoint


def get(live: Live, checkpoint_id: str, token: str | None = None) -> requests.Response:
    return live.api.get(f"/checkpoints/{checkpoint_id}", token=token or live.admin)


def stored(live: Live, checkpoint_id: str, name: str) -> bytes | None:
    key = f"checkpoints/{checkpoint_id}/{name}"
    if live.blobs.head(key) is None:
        return None
    with closing(live.blobs.open_read(key)) as stream:
        return stream.read()


def names(reply: requests.Response) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [item["name"] for item in reply.json()["items"]]


# -- the upload ------------------------------------------------------------------------------


def test_a_three_part_upload_ends_active_with_the_bytes_stored(
    live: Live, clock: FakeClock
) -> None:
    started = start(live, allowed_roles=[])
    checkpoint, upload = started["checkpoint"], started["upload"]
    assert checkpoint["status"] == "Uploading"
    assert checkpoint["size"] == len(DATA)
    assert checkpoint["sha256"] is None
    assert checkpoint["created_by"] == "admin"
    assert checkpoint["allowed_roles"] == []
    assert checkpoint["progress"] is None and checkpoint["error"] is None
    assert upload["part_size"] == PART_SIZE
    assert upload["part_count"] == 3
    assert [part["part_number"] for part in upload["parts"]] == [1, 2, 3]
    expires = datetime.fromisoformat(upload["expires_at"]).timestamp()
    assert expires == clock() + POLICY.part_url_ttl
    assert get(live, checkpoint["id"]).json()["status"] == "Uploading"

    parts = put_parts(live, upload)
    assert stored(live, checkpoint["id"], "model.safetensors") is None  # nothing before complete
    reply = complete(live, checkpoint["id"], list(reversed(parts)), sha256=SHA.upper())

    assert reply.status_code == 200, reply.text
    active = reply.json()
    assert active["status"] == "Active"
    assert active["size"] == len(DATA)
    assert active["sha256"] == SHA
    assert get(live, checkpoint["id"]).json() == active
    # Keyed by id: the object lives under checkpoints/<id>/<name>.
    assert stored(live, checkpoint["id"], "model.safetensors") == DATA


def test_the_etags_must_be_those_the_part_urls_answered(live: Live) -> None:
    started = start(live)
    parts = put_parts(live, started["upload"])
    checkpoint_id = started["checkpoint"]["id"]
    wrong = [*parts[:2], {"part_number": 3, "etag": md5_etag(b"other bytes")}]

    body = problem(complete(live, checkpoint_id, wrong), 400, "invalid")

    assert "Part 3 has ETag" in body["detail"]
    # The upload stays open: fixing the list completes it.
    assert get(live, checkpoint_id).json()["status"] == "Uploading"
    assert complete(live, checkpoint_id, parts).json()["status"] == "Active"


def test_every_part_must_be_listed_and_uploaded(live: Live) -> None:
    started = start(live)
    checkpoint_id = started["checkpoint"]["id"]
    parts = put_parts(live, {**started["upload"], "parts": started["upload"]["parts"][:2]})

    not_uploaded = [*parts, {"part_number": 3, "etag": md5_etag(DATA[2 * PART_SIZE :])}]
    body = problem(complete(live, checkpoint_id, not_uploaded), 400, "invalid")
    assert "Part 3 has not been uploaded" in body["detail"]

    body = problem(complete(live, checkpoint_id, parts), 400, "invalid")
    assert "part(s) 3 are missing from the list" in body["detail"]

    body = problem(complete(live, checkpoint_id, [*parts, parts[0]]), 400, "invalid")
    assert "listed more than once" in body["detail"]

    beyond = [*parts, {"part_number": 4, "etag": parts[0]["etag"]}]
    assert (
        "parts 1 to 3, not 4"
        in problem(complete(live, checkpoint_id, beyond), 400, "invalid")["detail"]
    )
    assert get(live, checkpoint_id).json()["status"] == "Uploading"


def test_a_size_other_than_declared_fails_the_model_and_keeps_nothing(live: Live) -> None:
    started = start(live, size=len(DATA) + 10)
    checkpoint_id = started["checkpoint"]["id"]
    parts = put_parts(live, started["upload"])  # 10 bytes short in the last part

    body = problem(complete(live, checkpoint_id, parts), 400, "invalid")

    assert f"{len(DATA)} bytes were stored but {len(DATA) + 10} were declared" in body["detail"]
    failed = get(live, checkpoint_id).json()
    assert failed["status"] == "Failed"
    assert "were declared" in failed["error"]
    assert stored(live, checkpoint_id, "model.safetensors") is None
    # A Failed model gives its name up: the retry replaces it.
    retry = start(live)
    assert retry["checkpoint"]["id"] != checkpoint_id
    problem(get(live, checkpoint_id), 404, "not_found")


def test_completing_twice_is_409(live: Live) -> None:
    started = start(live)
    parts = put_parts(live, started["upload"])
    checkpoint_id = started["checkpoint"]["id"]
    assert complete(live, checkpoint_id, parts).status_code == 200

    body = problem(complete(live, checkpoint_id, parts), 409, "conflict")

    assert "already complete" in body["detail"]
    assert get(live, checkpoint_id).json()["status"] == "Active"


def test_abort_drops_the_upload_and_frees_the_name(live: Live) -> None:
    started = start(live)
    checkpoint_id = started["checkpoint"]["id"]
    parts = put_parts(live, {**started["upload"], "parts": started["upload"]["parts"][:1]})
    last_url = started["upload"]["parts"][2]["url"]

    assert live.api.post(f"/checkpoints/{checkpoint_id}/abort", token=live.admin).status_code == 204

    body = problem(complete(live, checkpoint_id, parts), 404, "not_found")
    assert checkpoint_id in body["detail"]
    problem(live.api.put(last_url, b"late part"), 404, "not_found")
    problem(
        live.api.post(f"/checkpoints/{checkpoint_id}/abort", token=live.admin), 404, "not_found"
    )
    assert start(live)["checkpoint"]["status"] == "Uploading"


def test_an_active_model_cannot_be_aborted(live: Live) -> None:
    checkpoint = upload_model(live)
    body = problem(
        live.api.post(f"/checkpoints/{checkpoint['id']}/abort", token=live.admin), 409, "conflict"
    )
    assert "delete it instead" in body["detail"]


def test_concurrent_completions_have_exactly_one_winner(live: Live) -> None:
    started = start(live)
    parts = put_parts(live, started["upload"])
    checkpoint_id = started["checkpoint"]["id"]
    count = 8
    barrier = threading.Barrier(count)
    statuses: list[int] = []

    def attempt() -> None:
        barrier.wait(timeout=10)
        statuses.append(complete(live, checkpoint_id, parts).status_code)

    threads = [threading.Thread(target=attempt) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [200] + [409] * (count - 1)
    assert get(live, checkpoint_id).json()["status"] == "Active"
    assert stored(live, checkpoint_id, "model.safetensors") == DATA


# -- part URLs -------------------------------------------------------------------------------


def test_expired_part_urls_are_refused_and_fresh_ones_work(live: Live, clock: FakeClock) -> None:
    started = start(live)
    checkpoint_id = started["checkpoint"]["id"]
    first = started["upload"]["parts"][0]["url"]
    clock.advance(POLICY.part_url_ttl + 1)

    problem(live.api.put(first, DATA[:PART_SIZE]), 403, "url_expired")

    reply = live.api.post(
        f"/checkpoints/{checkpoint_id}/parts", token=live.admin, json={"part_numbers": [3, 1, 1]}
    )
    assert reply.status_code == 200, reply.text
    fresh = reply.json()
    assert [part["part_number"] for part in fresh["parts"]] == [1, 3]
    assert datetime.fromisoformat(fresh["expires_at"]).timestamp() > clock()
    assert live.api.put(fresh["parts"][0]["url"], DATA[:PART_SIZE]).status_code == 200


def test_tampered_part_urls_are_refused(live: Live) -> None:
    started = start(live)
    url = started["upload"]["parts"][0]["url"]
    parts = urlsplit(url)
    query = {name: values[0] for name, values in parse_qs(parts.query).items()}
    other_sig = {**query, "sig": "0" * len(query["sig"])}
    later = {**query, "expires": str(int(query["expires"]) + 3600)}
    forged = [
        parts._replace(query=urlencode(other_sig)).geturl(),
        parts._replace(query=urlencode(later)).geturl(),
        url.replace("/1?", "/2?"),
    ]
    for bad in forged:
        problem(live.api.put(bad, DATA[:PART_SIZE]), 403, "invalid_signature")


def test_part_urls_only_for_existing_parts_of_open_uploads(live: Live) -> None:
    started = start(live)
    checkpoint_id = started["checkpoint"]["id"]
    body = problem(
        live.api.post(
            f"/checkpoints/{checkpoint_id}/parts", token=live.admin, json={"part_numbers": [2, 4]}
        ),
        400,
        "invalid",
    )
    assert "parts 1 to 3, not 4" in body["detail"]
    complete(live, checkpoint_id, put_parts(live, started["upload"]))
    problem(
        live.api.post(
            f"/checkpoints/{checkpoint_id}/parts", token=live.admin, json={"part_numbers": [1]}
        ),
        409,
        "conflict",
    )


def test_big_uploads_get_the_first_urls_then_the_rest_in_batches(live: Live) -> None:
    size = (MAX_PART_URLS + 5) * PART_SIZE
    started = start(live, size=size)
    upload = started["upload"]
    assert upload["part_count"] == MAX_PART_URLS + 5
    assert len(upload["parts"]) == MAX_PART_URLS
    rest = list(range(MAX_PART_URLS + 1, MAX_PART_URLS + 6))
    reply = live.api.post(
        f"/checkpoints/{started['checkpoint']['id']}/parts",
        token=live.admin,
        json={"part_numbers": rest},
    )
    assert [part["part_number"] for part in reply.json()["parts"]] == rest
    too_many = list(range(1, MAX_PART_URLS + 2))
    problem(
        live.api.post(
            f"/checkpoints/{started['checkpoint']['id']}/parts",
            token=live.admin,
            json={"part_numbers": too_many},
        ),
        422,
        "validation_error",
    )


def test_huge_files_get_parts_large_enough_for_10000(
    start_live: Callable[..., Live],
) -> None:
    live = start_live(policy=CheckpointPolicy(max_size=1024 * GIB, part_size=PART_SIZE))
    upload = start(live, size=500 * GIB)["upload"]
    # 500 GiB / 10,000 = 51.2 MiB, rounded up to whole MiB.
    assert upload["part_size"] == 52 * MIB
    assert upload["part_count"] == -(-500 * GIB // (52 * MIB))
    assert upload["part_count"] <= 10_000


def test_a_model_over_the_size_limit_is_413(start_live: Callable[..., Live]) -> None:
    live = start_live(policy=CheckpointPolicy(max_size=10 * PART_SIZE, part_size=PART_SIZE))
    body = {"name": "big.safetensors", "type": "Lora", "size": 10 * PART_SIZE + 1}
    reply = problem(live.api.post("/checkpoints", token=live.admin, json=body), 413, "too_large")
    assert "10 KiB" in reply["detail"]


# -- names and content -----------------------------------------------------------------------


def test_a_type_and_name_are_unique_ignoring_case(live: Live) -> None:
    start(live, "Model.safetensors")
    body = {"name": "model.SAFETENSORS", "type": "Stable-diffusion", "size": 10}

    reply = problem(live.api.post("/checkpoints", token=live.admin, json=body), 409, "conflict")

    assert "'Model.safetensors' already exists" in reply["detail"]
    assert start(live, "model.SAFETENSORS", type="Lora")["checkpoint"]["type"] == "Lora"


def test_the_same_content_already_active_is_reported(live: Live) -> None:
    first = upload_model(live, "first.safetensors")
    body = {
        "name": "copy.safetensors",
        "type": "Stable-diffusion",
        "size": len(DATA),
        "sha256": SHA,
    }

    reply = problem(
        live.api.post("/checkpoints", token=live.admin, json=body), 409, "duplicate_content"
    )

    assert reply["existing_id"] == first["id"]
    assert "'first.safetensors'" in reply["detail"]
    # Another type, or content not yet Active, is no duplicate.
    assert start(live, "copy.safetensors", type="Lora", sha256=SHA)["checkpoint"]
    live.api.delete(f"/checkpoints/{first['id']}", token=live.admin)
    assert start(live, "copy.safetensors", sha256=SHA)["checkpoint"]


def test_the_sha256_given_at_start_and_completion_must_agree(live: Live) -> None:
    started = start(live, sha256=SHA)
    checkpoint_id = started["checkpoint"]["id"]
    parts = put_parts(live, started["upload"])

    body = problem(complete(live, checkpoint_id, parts, sha256="f" * 64), 400, "invalid")

    assert "changed during the upload" in body["detail"]
    assert get(live, checkpoint_id).json()["status"] == "Failed"
    # Given only at the start, it is what the model records.
    again = start(live, "other.safetensors", sha256=SHA)
    active = complete(live, again["checkpoint"]["id"], put_parts(live, again["upload"])).json()
    assert active["sha256"] == SHA


def test_rename_is_instant_and_keeps_names_unique(live: Live) -> None:
    checkpoint = upload_model(live, "old.safetensors")
    start(live, "taken.safetensors")
    path = f"/checkpoints/{checkpoint['id']}"

    reply = live.api.patch(path, token=live.admin, json={"name": "new.safetensors"})

    assert reply.status_code == 200, reply.text
    renamed = reply.json()
    assert renamed["name"] == "new.safetensors"
    assert renamed["status"] == "Active"
    assert renamed["updated_at"] >= checkpoint["updated_at"]
    # The object stays where it is: keyed by id, under the file name it was uploaded as.
    assert stored(live, checkpoint["id"], "old.safetensors") == DATA
    assert start(live, "old.safetensors")["checkpoint"]["name"] == "old.safetensors"
    problem(
        live.api.post(
            "/checkpoints",
            token=live.admin,
            json={"name": "NEW.safetensors", "type": "Stable-diffusion", "size": 1},
        ),
        409,
        "conflict",
    )
    problem(
        live.api.patch(path, token=live.admin, json={"name": "taken.safetensors"}), 409, "conflict"
    )
    # Changing only the case keeps the model's own claim.
    assert (
        live.api.patch(path, token=live.admin, json={"name": "New.safetensors"}).json()["name"]
        == "New.safetensors"
    )


def test_patch_of_allowed_roles_checks_that_they_exist(live: Live) -> None:
    live.api.create_role(live.admin, "artists", ["inference:all"])
    checkpoint = upload_model(live)
    path = f"/checkpoints/{checkpoint['id']}"

    body = problem(
        live.api.patch(path, token=live.admin, json={"allowed_roles": ["ghost"]}), 400, "invalid"
    )
    assert "'ghost'" in body["detail"]

    reply = live.api.patch(path, token=live.admin, json={"allowed_roles": ["artists", "artists"]})
    assert reply.json()["allowed_roles"] == ["artists"]
    assert reply.json()["name"] == "model.safetensors"


def test_delete_removes_the_record_and_the_object(live: Live) -> None:
    checkpoint = upload_model(live)
    path = f"/checkpoints/{checkpoint['id']}"

    assert live.api.delete(path, token=live.admin).status_code == 204

    problem(get(live, checkpoint["id"]), 404, "not_found")
    assert stored(live, checkpoint["id"], "model.safetensors") is None
    problem(live.api.delete(path, token=live.admin), 404, "not_found")
    assert upload_model(live)["name"] == "model.safetensors"  # the name is free again


def test_delete_of_an_upload_in_progress_drops_its_parts(live: Live) -> None:
    started = start(live)
    put_parts(live, {**started["upload"], "parts": started["upload"]["parts"][:1]})

    assert (
        live.api.delete(f"/checkpoints/{started['checkpoint']['id']}", token=live.admin).status_code
        == 204
    )

    key = f"checkpoints/{started['checkpoint']['id']}/model.safetensors"
    with pytest.raises(UploadNotFound):
        live.blobs.list_parts(key, started["upload"]["upload_id"])


# -- lists and visibility --------------------------------------------------------------------


def test_lists_are_newest_first_with_filters_and_paging(live: Live, clock: FakeClock) -> None:
    made = []
    for index, (name, kind) in enumerate(
        [
            ("alpha.safetensors", "Stable-diffusion"),
            ("Beta-LoRA.safetensors", "Lora"),
            ("gamma.safetensors", "Stable-diffusion"),
            ("delta-lora.pt", "Lora"),
            ("epsilon.safetensors", "VAE"),
        ]
    ):
        clock.advance(1)
        started = start(live, name, type=kind)
        if index % 2 == 0:
            complete(live, started["checkpoint"]["id"], put_parts(live, started["upload"]))
        made.append(name)

    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        reply = live.api.get("/checkpoints", token=live.admin, params=params)
        seen += names(reply)
        pages += 1
        cursor = reply.json()["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(made))
    assert pages == 3

    def listed(**params: Any) -> list[str]:
        return names(live.api.get("/checkpoints", token=live.admin, params=params))

    assert listed(type="Lora") == ["delta-lora.pt", "Beta-LoRA.safetensors"]
    assert listed(status="Active") == [
        "epsilon.safetensors",
        "gamma.safetensors",
        "alpha.safetensors",
    ]
    assert listed(name="LORA") == ["delta-lora.pt", "Beta-LoRA.safetensors"]
    assert listed(name="lora", type="Lora", status="Uploading") == [
        "delta-lora.pt",
        "Beta-LoRA.safetensors",
    ]
    assert listed(type="Lora", limit=1) == ["delta-lora.pt"]
    problem(
        live.api.get("/checkpoints", token=live.admin, params={"cursor": "bm9wZQ"}), 400, "invalid"
    )
    problem(
        live.api.get("/checkpoints", token=live.admin, params={"type": "Checkpoints"}),
        422,
        "validation_error",
    )


def test_users_see_models_for_everyone_and_for_their_roles(live: Live, clock: FakeClock) -> None:
    live.api.create_role(live.admin, "artists", ["inference:all"])
    live.api.create_role(live.admin, "others", ["inference:all"])
    live.api.create_user(live.admin, "ann", ["artists"], PASSWORD)
    live.api.create_user(live.admin, "bob", [], PASSWORD)
    ids = {}
    for name, roles in (("public", []), ("artistic", ["artists"]), ("secret", ["others"])):
        clock.advance(1)
        ids[name] = upload_model(live, f"{name}.safetensors", allowed_roles=roles)["id"]
    ann, bob = live.api.token("ann", PASSWORD), live.api.token("bob", PASSWORD)

    assert names(live.api.get("/checkpoints", token=ann)) == [
        "artistic.safetensors",
        "public.safetensors",
    ]
    assert names(live.api.get("/checkpoints", token=bob)) == ["public.safetensors"]
    assert len(names(live.api.get("/checkpoints", token=live.admin))) == 3
    assert get(live, ids["artistic"], ann).status_code == 200
    problem(get(live, ids["secret"], ann), 404, "not_found")
    problem(get(live, ids["artistic"], bob), 404, "not_found")

    # A role change takes effect on the next request.
    assert live.api.request("PUT", "/users/bob", token=live.admin, json={"roles": ["others"]}).ok
    assert names(live.api.get("/checkpoints", token=bob)) == [
        "secret.safetensors",
        "public.safetensors",
    ]


def test_changes_need_the_checkpoint_permission(live: Live) -> None:
    live.api.create_role(live.admin, "artists", ["inference:all"])
    live.api.create_user(live.admin, "ann", ["artists"], PASSWORD)
    ann = live.api.token("ann", PASSWORD)
    started = start(live)
    path = f"/checkpoints/{started['checkpoint']['id']}"
    attempts = [
        ("POST", "/checkpoints", {"name": "x.safetensors", "type": "Lora", "size": 1}),
        ("POST", "/checkpoints/import", {"url": "https://example.com/x", "type": "Lora"}),
        ("POST", f"{path}/parts", {"part_numbers": [1]}),
        ("POST", f"{path}/complete", {"parts": [{"part_number": 1, "etag": "x"}]}),
        ("POST", f"{path}/abort", None),
        ("PATCH", path, {"name": "y.safetensors"}),
        ("DELETE", path, None),
    ]
    for method, target, body in attempts:
        reply = live.api.request(method, target, token=ann, json=body)
        assert "checkpoint:all" in problem(reply, 403, "permission_denied")["detail"], target
    assert get(live, started["checkpoint"]["id"]).json()["status"] == "Uploading"
    assert live.api.get("/checkpoints", token=ann).status_code == 200


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "Lora", "size": 1}, "body.name", "Field required"),
        ({"name": "a/b.safetensors", "type": "Lora", "size": 1}, "body.name", "not a path"),
        ({"name": "a" * 201, "type": "Lora", "size": 1}, "body.name", "200"),
        ({"name": " x", "type": "Lora", "size": 1}, "body.name", "spaces"),
        ({"name": "..", "type": "Lora", "size": 1}, "body.name", "not file names"),
        ({"name": "x", "type": "lora", "size": 1}, "body.type", "'Lora'"),
        ({"name": "x", "type": "Lora", "size": 0}, "body.size", "greater than 0"),
        ({"name": "x", "type": "Lora", "size": "big"}, "body.size", "integer"),
        ({"name": "x", "type": "Lora", "size": 1, "sha256": "abc"}, "body.sha256", "64 hex"),
        (
            {"name": "x", "type": "Lora", "size": 1, "allowed_roles": ["-x"]},
            "body.allowed_roles.0",
            "letters",
        ),
        ({"name": "x", "type": "Lora", "size": 1, "colour": "red"}, "body.colour", "Extra"),
    ],
)
def test_invalid_uploads_are_422_naming_the_field(
    live: Live, body: dict[str, Any], field: str, words: str
) -> None:
    reply = problem(
        live.api.post("/checkpoints", token=live.admin, json=body), 422, "validation_error"
    )
    assert [error["field"] for error in reply["errors"]] == [field]
    assert words in reply["errors"][0]["message"]


def test_other_invalid_bodies_are_422(live: Live) -> None:
    started = start(live)
    path = f"/checkpoints/{started['checkpoint']['id']}"
    cases = [
        ("PATCH", path, {}, "body"),
        ("POST", f"{path}/parts", {"part_numbers": []}, "body.part_numbers"),
        ("POST", f"{path}/parts", {"part_numbers": [0]}, "body.part_numbers.0"),
        ("POST", f"{path}/complete", {"parts": []}, "body.parts"),
        ("POST", f"{path}/complete", {"parts": [{"part_number": 1}]}, "body.parts.0.etag"),
        ("GET", "/checkpoints/not-an-id", None, "path.checkpoint_id"),
        ("POST", "/checkpoints/import", {"type": "Lora"}, "body.url"),
    ]
    for method, target, body, field in cases:
        reply = problem(
            live.api.request(method, target, token=live.admin, json=body), 422, "validation_error"
        )
        assert reply["errors"][0]["field"] == field, (target, reply)
    patch = problem(live.api.patch(path, token=live.admin, json={}), 422, "validation_error")
    assert "give name, allowed_roles or both" in patch["detail"]


def test_unknown_allowed_roles_are_400(live: Live) -> None:
    body = {"name": "x.safetensors", "type": "Lora", "size": 1, "allowed_roles": ["ghost"]}
    reply = problem(live.api.post("/checkpoints", token=live.admin, json=body), 400, "invalid")
    assert "'ghost'" in reply["detail"]


# -- housekeeping ----------------------------------------------------------------------------


def test_the_sweep_fails_abandoned_uploads_and_drops_their_parts(
    live: Live, clock: FakeClock
) -> None:
    started = start(live)
    put_parts(live, {**started["upload"], "parts": started["upload"]["parts"][:1]})
    idle = start(live, "idle.safetensors")
    clock.advance(POLICY.upload_deadline - 10)
    admin = live.api.token("admin", live.admin_password)  # the first token has expired
    young = start(live, "young.safetensors", token=admin)
    clock.advance(20)

    assert live.checkpoints.sweep() == 2

    for checkpoint_id in (started["checkpoint"]["id"], idle["checkpoint"]["id"]):
        failed = get(live, checkpoint_id, admin).json()
        assert failed["status"] == "Failed"
        assert "not completed within 24 h" in failed["error"]
    key = f"checkpoints/{started['checkpoint']['id']}/model.safetensors"
    with pytest.raises(UploadNotFound):
        live.blobs.list_parts(key, started["upload"]["upload_id"])
    assert get(live, young["checkpoint"]["id"], admin).json()["status"] == "Uploading"
    assert live.checkpoints.sweep() == 0


def test_without_blob_storage_the_routes_answer_503(
    config: Config, records: SqliteRecords, admin_password: str
) -> None:
    with TestClient(create_app(config, records)) as client:
        headers = {"x-api-key": API_TOKEN}
        login = client.post(
            "/auth/login", headers=headers, json={"username": "admin", "password": admin_password}
        )
        headers["Authorization"] = f"Bearer {login.json()['access_token']}"
        reply = client.get("/checkpoints", headers=headers)
    assert reply.status_code == 503
    assert reply.json()["code"] == "unavailable"
