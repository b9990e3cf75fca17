"""Jobs on SageMaker endpoints (`SageMakerJobs`) through the API, on moto's server: what
reaches S3 and SageMaker's runtime API (read from the wire: the requests botocore sends),
and real-time jobs finished by the worker that called InvokeEndpoint.

moto's InvokeEndpointAsync takes any request and answers with locations; its InvokeEndpoint
answers what the test queues through moto's `/moto-api/static/sagemaker/endpoint-results`.
Answers moto cannot give (SageMaker's refusals, a container's error) come from botocore's
Stubber, AWS's own stand-in.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from botocore.stub import Stubber

from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from tests.server.a1111_for_jobs import png
from tests.server.conftest import FakeClock, SecretWatch
from tests.server.endpoints_support import SETTINGS
from tests.server.inferences_support import AwsDeployment, aws_deployment, txt2img

MODEL = b"safetensors bytes of a checkpoint" * 50


@pytest.fixture
def aws(
    config: Config,
    records: SqliteRecords,
    clock: FakeClock,
    admin_password: str,
    moto_endpoint: str,
    watch: SecretWatch,
) -> Iterator[AwsDeployment]:
    with aws_deployment(config, records, clock, admin_password, moto_endpoint, watch) as running:
        yield running


def reply_of_runtime(seed: int = 5) -> dict[str, Any]:
    """What the endpoint runtime answers: A1111's TextToImageResponse plus timings."""
    info = {"seed": seed, "all_seeds": [seed], "infotexts": [f"cat\nSteps: 2, Seed: {seed}"]}
    return {
        "images": [base64.b64encode(png(8, 8, 1)).decode()],
        "parameters": {"prompt": "cat", "steps": 2},
        "info": json.dumps(info),
        "timings": {"fetch_s": 0.1, "load_s": 0.2, "generate_s": 0.3},
    }


def inputs(aws: AwsDeployment) -> list[str]:
    """The jobs' objects in the bucket (moto's server is shared by the module's tests)."""
    listed = aws.s3.list_objects_v2(Bucket=SETTINGS.bucket, Prefix="inferences/")
    return [entry["Key"] for entry in listed.get("Contents", [])]


def test_an_async_job_is_put_in_s3_and_queued_with_invoke_endpoint_async(
    aws: AwsDeployment, clock: FakeClock
) -> None:
    backend_name = aws.deploy("gpu")
    model = aws.upload("sd15.safetensors", MODEL)

    reply = aws.api.post("/inferences", token=aws.admin, json=txt2img(model, "cat"))

    assert reply.status_code == 202, reply.text
    job = reply.json()
    assert (job["status"], job["endpoint"]) == ("queued", "gpu")
    # RequestTTLSeconds + InvocationTimeoutSeconds + grace: 3600 + 900 + 300.
    assert datetime.fromisoformat(job["deadline_at"]).timestamp() == clock() + 4800
    [(_, sent)] = [entry for entry in aws.sent if entry[0] == "InvokeEndpointAsync"]
    key = f"inferences/{job['id']}/input.json"
    assert unquote(sent["url"]).endswith(f"/endpoints/{backend_name}/async-invocations")
    assert sent["X-Amzn-SageMaker-InputLocation"] == f"s3://{SETTINGS.bucket}/{key}"
    assert sent["X-Amzn-SageMaker-Inference-Id"] == job["id"]
    assert sent["X-Amzn-SageMaker-RequestTTLSeconds"] == "3600"
    assert sent["X-Amzn-SageMaker-InvocationTimeoutSeconds"] == "900"
    assert sent["X-Amzn-SageMaker-Content-Type"] == "application/json"
    assert sent["X-Amzn-SageMaker-Accept"] == "application/json"
    body = json.loads(aws.object(key) or b"null")
    assert body["task"] == "txt2img"
    assert body["payload"] == txt2img(model, "cat")["payload"]
    checkpoint = body["models"]["Stable-diffusion"]
    assert (checkpoint["id"], checkpoint["name"]) == (model, "sd15.safetensors")
    assert set(body["models"]) == {"Stable-diffusion"}
    # The runtime fetches the model with its presigned URL, valid past the deadline.
    assert "X-Amz-Expires=4860" in checkpoint["url"]
    assert requests.get(checkpoint["url"], timeout=10).content == MODEL


def test_sagemaker_refusing_the_job_leaves_no_job_behind(aws: AwsDeployment) -> None:
    aws.deploy("gone")
    model = aws.upload("sd15.safetensors", MODEL)

    before = inputs(aws)
    with Stubber(aws.runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint_async",
            service_error_code="ValidationError",
            service_message="Endpoint gone-1 of account 123456789012 not found.",
            http_status_code=400,
        )
        reply = aws.api.post("/inferences", token=aws.admin, json=txt2img(model))

    assert reply.status_code == 409, reply.text
    assert reply.json()["code"] == "conflict"
    assert "123456789012" not in reply.json()["detail"]
    assert aws.api.get("/inferences", token=aws.admin).json()["items"] == []
    assert inputs(aws) == before


def test_a_realtime_job_is_finished_by_the_worker_that_invoked_it(
    aws: AwsDeployment, moto_endpoint: str
) -> None:
    backend_name = aws.deploy("fast", "realtime")
    model = aws.upload("sd15.safetensors", MODEL)
    queued = requests.post(
        f"{moto_endpoint}/moto-api/static/sagemaker/endpoint-results",
        json={
            "results": [
                {"Body": json.dumps(reply_of_runtime(9)), "ContentType": "application/json"}
            ]
        },
        timeout=10,
    )
    assert queued.status_code == 201, queued.text

    job = aws.api.post("/inferences", token=aws.admin, json=txt2img(model)).json()
    done = aws.api.get(f"/inferences/{job['id']}", token=aws.admin, params={"wait": 20}).json()

    assert done["status"] == "succeeded", done
    assert done["started_at"] is not None
    assert [image["seed"] for image in done["images"]] == [9]
    assert requests.get(done["images"][0]["url"], timeout=10).content == png(8, 8, 1)
    [(_, sent)] = [entry for entry in aws.sent if entry[0] == "InvokeEndpoint"]
    assert unquote(sent["url"]).endswith(f"/endpoints/{backend_name}/invocations")


def test_a_realtime_model_error_fails_the_job_with_the_runtimes_words(
    aws: AwsDeployment,
) -> None:
    aws.deploy("fast", "realtime")
    model = aws.upload("sd15.safetensors", MODEL)
    runtime_error = {"status": 400, "detail": "Unknown sampler 'Foo'.", "code": "invalid"}

    with Stubber(aws.runtime) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="Received client error (400) from primary with message ...",
            http_status_code=424,
            modeled_fields={
                "OriginalStatusCode": 400,
                "OriginalMessage": json.dumps(runtime_error),
                "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker",
            },
        )
        job = aws.api.post("/inferences", token=aws.admin, json=txt2img(model)).json()
        done = aws.api.get(f"/inferences/{job['id']}", token=aws.admin, params={"wait": 20})

    assert done.json()["status"] == "failed"
    assert (done.json()["error_code"], done.json()["error"]) == (
        "invalid",
        "Unknown sampler 'Foo'.",
    )
