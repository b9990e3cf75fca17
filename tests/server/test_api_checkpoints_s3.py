"""The model routes on S3: moto's `ThreadedMotoServer` over real HTTP on 127.0.0.1.

The middleware signs S3 presigned part URLs and the parts go straight to "S3" with
`requests`, as on AWS. S3 refuses parts under 5 MiB except the last, so the parts are 5 MiB.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from aws_extension.middleware.blobs import MIN_PART_SIZE, UploadNotFound
from aws_extension.middleware.blobs.s3 import S3Blobs
from aws_extension.middleware.checkpoint_policy import CheckpointPolicy
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.outbound import OutboundPolicy
from tests.server.conftest import FakeClock, s3_client
from tests.server.live import (
    Live,
    Route,
    complete,
    file_server,
    live_middleware,
    md5_etag,
    put_parts,
    wait_for,
)

_random = random.Random(11)
DATA = _random.randbytes(2 * MIN_PART_SIZE + 1000)
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def s3(moto_endpoint: str) -> tuple[Any, str]:
    client = s3_client(moto_endpoint)
    bucket = f"models-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def live(
    config: Config,
    records: SqliteRecords,
    clock: FakeClock,
    admin_password: str,
    s3: tuple[Any, str],
) -> Iterator[Live]:
    client, bucket = s3
    with live_middleware(
        config,
        records,
        clock,
        admin_password,
        lambda base_url: S3Blobs(client, bucket, clock=clock),
        policy=CheckpointPolicy(part_size=MIN_PART_SIZE, progress_interval=0.05),
        outbound=OutboundPolicy(allow_private=True, read_timeout=10),
    ) as running:
        yield running


def start(live: Live, size: int = len(DATA)) -> dict[str, Any]:
    body = {"name": "sdxl.safetensors", "type": "Stable-diffusion", "size": size}
    reply = live.api.post("/checkpoints", token=live.admin, json=body)
    assert reply.status_code == 201, reply.text
    result: dict[str, Any] = reply.json()
    return result


def object_bytes(live: Live, key: str) -> bytes | None:
    if live.blobs.head(key) is None:
        return None
    with closing(live.blobs.open_read(key)) as stream:
        return stream.read()


def test_an_upload_to_s3_through_presigned_urls_ends_active(live: Live) -> None:
    started = start(live)
    upload, checkpoint_id = started["upload"], started["checkpoint"]["id"]
    assert (upload["part_size"], upload["part_count"]) == (MIN_PART_SIZE, 3)
    assert all("X-Amz-Signature=" in part["url"] for part in upload["parts"])
    parts = put_parts(live, upload, DATA)
    key = f"checkpoints/{checkpoint_id}/sdxl.safetensors"

    wrong = [*parts[:2], {"part_number": 3, "etag": md5_etag(b"not it")}]
    assert complete(live, checkpoint_id, wrong).status_code == 400
    assert object_bytes(live, key) is None

    reply = complete(live, checkpoint_id, parts, sha256=SHA)

    assert reply.status_code == 200, reply.text
    assert (reply.json()["status"], reply.json()["size"]) == ("Active", len(DATA))
    assert object_bytes(live, key) == DATA
    assert live.api.delete(f"/checkpoints/{checkpoint_id}", token=live.admin).status_code == 204
    assert live.blobs.head(key) is None


def test_a_short_upload_to_s3_fails_and_leaves_no_object(live: Live) -> None:
    started = start(live, size=len(DATA) + 1)
    checkpoint_id = started["checkpoint"]["id"]

    reply = complete(live, checkpoint_id, put_parts(live, started["upload"], DATA))

    assert reply.status_code == 400
    assert "were declared" in reply.json()["detail"]
    assert live.blobs.head(f"checkpoints/{checkpoint_id}/sdxl.safetensors") is None
    failed = live.api.get(f"/checkpoints/{checkpoint_id}", token=live.admin).json()
    assert failed["status"] == "Failed"


def test_abort_drops_the_s3_multipart_upload(live: Live) -> None:
    started = start(live)
    checkpoint_id = started["checkpoint"]["id"]
    put_parts(live, {**started["upload"], "parts": started["upload"]["parts"][:1]}, DATA)

    assert live.api.post(f"/checkpoints/{checkpoint_id}/abort", token=live.admin).status_code == 204

    with pytest.raises(UploadNotFound):
        live.blobs.list_parts(
            f"checkpoints/{checkpoint_id}/sdxl.safetensors", started["upload"]["upload_id"]
        )


def test_an_import_streams_into_s3(live: Live) -> None:
    with file_server() as files:
        files.routes["/sdxl.safetensors"] = Route(body=DATA, chunked=True)
        reply = live.api.post(
            "/checkpoints/import",
            token=live.admin,
            json={"url": f"{files.base_url}/sdxl.safetensors", "type": "Stable-diffusion"},
        )
        assert reply.status_code == 202, reply.text
        checkpoint_id = reply.json()["id"]

        def ended() -> dict[str, Any] | None:
            body: dict[str, Any] = live.api.get(
                f"/checkpoints/{checkpoint_id}", token=live.admin
            ).json()
            return None if body["status"] == "Importing" else body

        active: dict[str, Any] = wait_for(ended, what="the import")

    assert active["status"] == "Active", active["error"]
    assert (active["size"], active["sha256"]) == (len(DATA), SHA)
    assert object_bytes(live, f"checkpoints/{checkpoint_id}/sdxl.safetensors") == DATA
