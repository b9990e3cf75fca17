"""What the inference tests share: the middleware under uvicorn with local compute (real
runtime processes) or SageMaker compute on moto, models uploaded through the API, jobs
submitted and followed through the API."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import requests
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aws_extension.middleware.app import create_app
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.blobs.folder import FolderBlobs
from aws_extension.middleware.blobs.folder_routes import make_blob_router
from aws_extension.middleware.blobs.s3 import S3Blobs
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.compute.sagemaker_jobs import SageMakerJobs
from aws_extension.middleware.config import Config
from aws_extension.middleware.inference_policy import InferencePolicy
from aws_extension.middleware.records import Records
from aws_extension.middleware.services import Services
from aws_extension.middleware.services.endpoint_store import ENDPOINT
from aws_extension.middleware.services.inferences import InferenceService
from tests.server.conftest import Api, SecretWatch, s3_client
from tests.server.endpoints_support import SETTINGS, aws_client, sagemaker_endpoints
from tests.server.live import POLICY, LiveApi, complete, put_parts, uvicorn_on_free_port

#: Long polls of the tests: long enough for a runtime process to start and run a job on a
#: busy machine, and within the contract's 25 s.
WAIT = 25


@dataclass
class Served:
    """A running middleware with compute: its API, the admin's token, its insides."""

    api: LiveApi
    admin: str
    blobs: Blobs
    records: Records
    services: Services

    @property
    def inferences(self) -> InferenceService:
        assert self.services.inferences is not None
        return self.services.inferences

    def upload(
        self,
        name: str,
        data: bytes,
        model_type: str = "Stable-diffusion",
        **fields: Any,
    ) -> dict[str, Any]:
        """An `Active` model uploaded as the admin, as the uploader does it."""
        body = {"name": name, "type": model_type, "size": len(data), **fields}
        started = self.api.post("/checkpoints", token=self.admin, json=body)
        assert started.status_code == 201, started.text
        checkpoint = started.json()["checkpoint"]
        parts = put_parts(self, started.json()["upload"], data)  # type: ignore[arg-type]
        sha256 = hashlib.sha256(data).hexdigest()
        done = complete(self, checkpoint["id"], parts, sha256=sha256)  # type: ignore[arg-type]
        assert done.status_code == 200, done.text
        result: dict[str, Any] = done.json()
        return result

    def submit(
        self, token: str, body: dict[str, Any], *, key: str | None = None
    ) -> requests.Response:
        headers = {"Idempotency-Key": key} if key is not None else {}
        return self.api.post("/inferences", token=token, json=body, headers=headers)

    def job(self, token: str, job_id: str, wait: float = 0) -> requests.Response:
        return self.api.get(f"/inferences/{job_id}", token=token, params={"wait": wait})

    def final(self, token: str, job_id: str) -> dict[str, Any]:
        """The job once it is final (long polls until it is)."""
        for _ in range(8):
            reply = self.job(token, job_id, wait=WAIT)
            assert reply.status_code == 200, reply.text
            job: dict[str, Any] = reply.json()
            if job["status"] in ("succeeded", "failed", "cancelled"):
                return job
        raise AssertionError(f"job {job_id} did not end: {job}")


@contextmanager
def served(
    config: Config,
    records: Records,
    clock: Callable[[], float],
    admin_password: str,
    blobs_at: Callable[[str], Blobs],
    compute: Compute,
) -> Iterator[Served]:
    """The middleware under uvicorn with `compute`, small checkpoint parts and folder blobs
    (their signed routes mounted) or any others. The app owns `compute` and closes it."""
    config = replace(config, checkpoints=POLICY)
    built: list[tuple[FastAPI, Blobs]] = []

    def build(base_url: str) -> FastAPI:
        blobs = blobs_at(base_url)
        routes = make_blob_router(blobs) if isinstance(blobs, FolderBlobs) else None
        app = create_app(
            config, records, clock=clock, blobs=blobs, signed_routes=routes, compute=compute
        )
        built.append((app, blobs))
        return app

    with uvicorn_on_free_port(build) as base_url:
        app, blobs = built[0]
        api = LiveApi(base_url, config.api_tokens[0])
        try:
            admin = api.token("admin", admin_password)
            yield Served(api, admin, blobs, records, app.state.services)
        finally:
            app.state.services.close()
            api.close()


def txt2img(checkpoint_id: str, prompt: str = "a lighthouse", **payload: Any) -> dict[str, Any]:
    """A POST /inferences body: 64x64, 2 steps, a fixed seed unless given."""
    body = {"prompt": prompt, "steps": 2, "width": 64, "height": 64, "seed": 7, **payload}
    return {"task": "txt2img", "models": {"Stable-diffusion": checkpoint_id}, "payload": body}


def stored_objects(root: Path, job_id: str) -> list[str]:
    """The objects a job has in a folder blob store."""
    folder = root / "objects" / "inferences" / job_id
    return sorted(path.name for path in folder.iterdir()) if folder.is_dir() else []


@dataclass
class AwsDeployment:
    """The middleware on moto's AWS (S3 blobs, SageMaker compute) through TestClient."""

    api: Api
    admin: str
    services: Services
    s3: Any
    #: The HTTP requests the runtime client sent to SageMaker, as (operation, headers).
    sent: list[tuple[str, dict[str, str]]]
    records: Records
    #: The `sagemaker-runtime` client of the jobs (for botocore's Stubber).
    runtime: Any

    @property
    def inferences(self) -> InferenceService:
        assert self.services.inferences is not None
        return self.services.inferences

    def upload(self, name: str, data: bytes, model_type: str = "Stable-diffusion") -> str:
        """An `Active` model in S3, through a presigned part URL; its id."""
        body = {"name": name, "type": model_type, "size": len(data)}
        started = self.api.post("/checkpoints", token=self.admin, json=body)
        assert started.status_code == 201, started.text
        [part] = started.json()["upload"]["parts"]
        put = requests.put(part["url"], data=data, timeout=10)
        assert put.status_code == 200, put.text
        checkpoint_id = str(started.json()["checkpoint"]["id"])
        parts = [{"part_number": 1, "etag": put.headers["ETag"]}]
        sha256 = hashlib.sha256(data).hexdigest()
        done = self.api.post(
            f"/checkpoints/{checkpoint_id}/complete",
            token=self.admin,
            json={"parts": parts, "sha256": sha256},
        )
        assert done.status_code == 200, done.text
        return checkpoint_id

    def deploy(self, name: str, endpoint_type: str = "async") -> str:
        """An endpoint (InService at once on moto); the name of its SageMaker endpoint."""
        body = {"name": name, "type": endpoint_type, "instance_type": "ml.g4dn.xlarge"}
        reply = self.api.post("/endpoints", token=self.admin, json=body)
        assert reply.status_code == 201, reply.text
        assert self.api.get(f"/endpoints/{name}", token=self.admin).json()["status"] == "InService"
        record = self.records.get(ENDPOINT, name)
        assert record is not None
        return str(record.doc["refs"]["endpoint_name"])

    def object(self, key: str) -> bytes | None:
        try:
            return bytes(self.s3.get_object(Bucket=SETTINGS.bucket, Key=key)["Body"].read())
        except self.s3.exceptions.NoSuchKey:
            return None


@contextmanager
def aws_deployment(
    config: Config,
    records: Records,
    clock: Callable[[], float],
    admin_password: str,
    moto: str,
    watch: SecretWatch,
    policy: InferencePolicy | None = None,
) -> Iterator[AwsDeployment]:
    """The app on moto's server at `moto`, with the deployment's bucket made."""
    policy = policy or InferencePolicy()
    s3 = s3_client(moto)
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(Bucket=SETTINGS.bucket)
    runtime = aws_client("sagemaker-runtime", moto)
    sent: list[tuple[str, dict[str, str]]] = []

    def record(request: Any, event_name: str, **kwargs: Any) -> None:
        headers = {
            key: value.decode() if isinstance(value, bytes) else str(value)
            for key, value in request.headers.items()
        }
        sent.append((event_name.rsplit(".", 1)[1], {**headers, "url": request.url}))

    runtime.meta.events.register("before-send.sagemaker-runtime", record)
    jobs = SageMakerJobs(runtime, s3, SETTINGS.bucket, policy, clock=clock)
    compute = Compute(sagemaker_endpoints(moto), jobs)
    config = replace(config, inferences=policy)
    app = create_app(
        config,
        records,
        clock=clock,
        blobs=S3Blobs(s3, SETTINGS.bucket, clock=clock),
        compute=compute,
    )
    try:
        with TestClient(app) as client:
            api = Api(client, watch)
            admin = api.token("admin", admin_password)
            yield AwsDeployment(api, admin, app.state.services, s3, sent, records, runtime)
    finally:
        app.state.services.close()
