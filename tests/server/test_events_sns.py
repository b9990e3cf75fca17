"""SageMaker async inference results arriving as SNS notifications (`events.handle_event`),
on moto's S3 and SageMaker.

The messages have the documented shape (SageMaker developer guide, asynchronous inference,
"Check prediction results": the success and error notification examples; the field names
and their nesting verbatim, the values those of the job), inside the event Lambda receives
from an SNS subscription (`Records[].EventSource` `aws:sns`, the message a JSON string in
`Sns.Message`).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from aws_extension.middleware.config import Config
from aws_extension.middleware.events import handle_event
from aws_extension.middleware.records.sqlite import SqliteRecords
from tests.server.a1111_for_jobs import png
from tests.server.conftest import FakeClock, SecretWatch
from tests.server.endpoints_support import SETTINGS
from tests.server.inferences_support import AwsDeployment, aws_deployment, txt2img

MODEL = b"checkpoint bytes" * 100
BUCKET = SETTINGS.bucket
#: SageMaker's words when the container answered 500 (the documented example's).
SERVER_ERROR = (
    "ClientError: Received server error (500) from model. See the SageMaker Endpoint logs in "
    "your account for more information."
)


def success_message(job_id: str, endpoint: str, output_key: str) -> dict[str, Any]:
    return {
        "awsRegion": "us-east-1",
        "eventTime": "2022-01-25T22:46:00.608Z",
        "receivedTime": "2022-01-25T22:46:00.455Z",
        "invocationStatus": "Completed",
        "requestParameters": {
            "contentType": "application/json",
            "endpointName": endpoint,
            "inputLocation": f"s3://{BUCKET}/inferences/{job_id}/input.json",
        },
        "responseParameters": {
            "contentType": "application/json",
            "outputLocation": f"s3://{BUCKET}/{output_key}",
        },
        "inferenceId": job_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }


def error_message(job_id: str, endpoint: str, reason: str = SERVER_ERROR) -> dict[str, Any]:
    return {
        "awsRegion": "us-east-1",
        "eventTime": "2022-01-25T22:46:00.608Z",
        "receivedTime": "2022-01-25T22:46:00.455Z",
        "invocationStatus": "Failed",
        "failureReason": reason,
        "requestParameters": {
            "endpointName": endpoint,
            "inputLocation": f"s3://{BUCKET}/inferences/{job_id}/input.json",
        },
        "inferenceId": job_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }


def sns_event(message: dict[str, Any], topic: str = SETTINGS.success_topic_arn) -> dict[str, Any]:
    """The event an SNS subscription hands to Lambda."""
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Subject": None,
                    "Message": json.dumps(message),
                    "Timestamp": "2022-01-25T22:46:00.700Z",
                    "SignatureVersion": "1",
                    "Signature": "EXAMPLE",
                    "SigningCertUrl": "https://sns.us-east-1.amazonaws.com/cert.pem",
                    "UnsubscribeUrl": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
                    "MessageAttributes": {},
                },
            }
        ]
    }


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


@pytest.fixture
def queued(aws: AwsDeployment) -> tuple[dict[str, Any], str]:
    """An async job waiting for its notification, and its SageMaker endpoint's name."""
    backend_name = aws.deploy("gpu")
    model = aws.upload("sd15.safetensors", MODEL)
    reply = aws.api.post("/inferences", token=aws.admin, json=txt2img(model, "cat", batch_size=2))
    assert reply.status_code == 202, reply.text
    return reply.json(), backend_name


def output_of_runtime(aws: AwsDeployment, reply: dict[str, Any]) -> str:
    """Store the runtime's reply where SageMaker writes async outputs; its key."""
    key = f"{SETTINGS.output_prefix}/{uuid.uuid4()}.out"
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(reply).encode())
    return key


def runtime_reply(seed: int = 21) -> dict[str, Any]:
    infotexts = [f"cat\nSteps: 2, Seed: {seed + index}" for index in range(2)]
    info = {"seed": seed, "all_seeds": [seed, seed + 1], "infotexts": infotexts}
    return {
        "images": [base64.b64encode(png(8, 8, shade)).decode() for shade in (1, 2)],
        "parameters": {"prompt": "cat", "steps": 2, "batch_size": 2},
        "info": json.dumps(info),
        "timings": {"fetch_s": 1.5, "load_s": 2.0, "generate_s": 3.0},
    }


def get(aws: AwsDeployment, job_id: str) -> dict[str, Any]:
    reply = aws.api.get(f"/inferences/{job_id}", token=aws.admin)
    assert reply.status_code == 200, reply.text
    result: dict[str, Any] = reply.json()
    return result


def test_a_success_notification_stores_the_images_of_the_output(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    input_key = f"inferences/{job['id']}/input.json"
    assert aws.object(input_key) is not None
    output = output_of_runtime(aws, runtime_reply())

    handle_event(aws.services, sns_event(success_message(job["id"], endpoint, output)))

    done = get(aws, job["id"])
    assert done["status"] == "succeeded", done
    assert [image["seed"] for image in done["images"]] == [21, 22]
    assert done["images"][1]["infotext"] == "cat\nSteps: 2, Seed: 22"
    assert done["info"]["all_seeds"] == [21, 22]
    assert done["parameters"]["batch_size"] == 2
    assert done["timings"] == {"fetch_s": 1.5, "load_s": 2.0, "generate_s": 3.0}
    assert done["finished_at"] is not None
    for shade, image in zip((1, 2), done["images"], strict=True):
        assert "X-Amz-Signature=" in image["url"]
        assert requests.get(image["url"], timeout=10).content == png(8, 8, shade)
    assert aws.object(f"inferences/{job['id']}/1.png") == png(8, 8, 2)
    # The output (base64 copies of the images) and the input are not kept.
    assert aws.object(output) is None
    assert aws.object(input_key) is None


def test_an_error_notification_fails_the_job_with_sagemakers_reason(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued

    handle_event(
        aws.services, sns_event(error_message(job["id"], endpoint), SETTINGS.error_topic_arn)
    )

    failed = get(aws, job["id"])
    assert failed["status"] == "failed"
    assert (failed["error_code"], failed["error"]) == ("endpoint_error", SERVER_ERROR)
    assert failed["images"] == []


def test_the_runtimes_own_error_wins_when_sagemaker_stored_it(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    key = f"{SETTINGS.failure_prefix}/{uuid.uuid4()}-error.out"
    runtime_error = {"status": 400, "detail": "The model URL has expired.", "code": "fetch_failed"}
    aws.s3.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(runtime_error).encode())
    message = error_message(job["id"], endpoint, "ClientError: Received client error (400)")
    message["responseParameters"] = {"failureLocation": f"s3://{BUCKET}/{key}"}

    handle_event(aws.services, sns_event(message, SETTINGS.error_topic_arn))

    failed = get(aws, job["id"])
    assert (failed["error_code"], failed["error"]) == ("fetch_failed", "The model URL has expired.")
    assert aws.object(key) is None


def test_a_repeated_notification_changes_nothing(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    message = success_message(job["id"], endpoint, output_of_runtime(aws, runtime_reply()))
    handle_event(aws.services, sns_event(message))
    first = get(aws, job["id"])

    # SNS delivers at least once: the same message again, then a late error.
    handle_event(aws.services, sns_event(message))
    handle_event(aws.services, sns_event(error_message(job["id"], endpoint)))

    again = get(aws, job["id"])
    assert again["status"] == "succeeded"
    assert again["updated_at"] == first["updated_at"]
    assert [image["seed"] for image in again["images"]] == [21, 22]


def test_the_result_of_a_cancelled_job_is_dropped(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    cancelled = aws.api.post(f"/inferences/{job['id']}/cancel", token=aws.admin)
    assert cancelled.json()["status"] == "cancelled"
    output = output_of_runtime(aws, runtime_reply())

    handle_event(aws.services, sns_event(success_message(job["id"], endpoint, output)))

    assert get(aws, job["id"])["status"] == "cancelled"
    assert aws.object(f"inferences/{job['id']}/0.png") is None
    assert aws.object(output) is None


def test_an_async_job_nothing_answers_fails_at_its_deadline(
    aws: AwsDeployment,
    queued: tuple[dict[str, Any], str],
    clock: FakeClock,
    admin_password: str,
) -> None:
    job, endpoint = queued
    # Request TTL + invocation timeout + grace.
    clock.advance(3600 + 900 + 300 - 1)
    aws.admin = aws.api.token("admin", admin_password)
    assert get(aws, job["id"])["status"] == "queued"

    clock.advance(2)
    aws.admin = aws.api.token("admin", admin_password)
    failed = get(aws, job["id"])

    assert (failed["status"], failed["error_code"]) == ("failed", "deadline")
    assert "within 80 minutes" in failed["error"]
    # A result after the deadline is dropped.
    output = output_of_runtime(aws, runtime_reply())
    handle_event(aws.services, sns_event(success_message(job["id"], endpoint, output)))
    assert get(aws, job["id"])["images"] == []


def test_deleting_the_endpoint_fails_its_waiting_jobs(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, _ = queued

    assert aws.api.delete("/endpoints/gpu", token=aws.admin).status_code == 204

    failed = get(aws, job["id"])
    assert (failed["status"], failed["error_code"]) == ("failed", "endpoint_unavailable")
    assert failed["error"] == "The endpoint 'gpu' was deleted before the job finished."


def test_notifications_nobody_can_use_are_ignored(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    unknown_job = success_message("0" * 24, endpoint, "async-inference/output/x.out")
    no_id = {key: value for key, value in unknown_job.items() if key != "inferenceId"}
    not_ours = {"Type": "Notification", "Message": "a message of another topic"}
    events: list[Any] = [
        sns_event(unknown_job),
        sns_event(no_id),
        sns_event({"eventName": "SomethingElse", "inferenceId": job["id"]}),
        {"Records": [{"EventSource": "aws:sns", "Sns": not_ours}]},
        {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": BUCKET}}}]},
        {"source": "aws.sagemaker", "detail-type": "SageMaker Training Job State Change"},
        ["not", "an", "object"],
    ]

    for event in events:
        handle_event(aws.services, event)

    assert get(aws, job["id"])["status"] == "queued"


def test_an_output_without_usable_images_fails_the_job(
    aws: AwsDeployment, queued: tuple[dict[str, Any], str]
) -> None:
    job, endpoint = queued
    not_an_image = base64.b64encode(b"<html>an error page</html>").decode()
    output = output_of_runtime(aws, {**runtime_reply(), "images": [not_an_image]})

    handle_event(aws.services, sns_event(success_message(job["id"], endpoint, output)))

    failed = get(aws, job["id"])
    assert (failed["status"], failed["error_code"]) == ("failed", "invalid_reply")
    assert failed["error"] == "Image 0 of the endpoint's reply is not a PNG, JPEG or WebP."
    assert aws.object(f"inferences/{job['id']}/0.png") is None
