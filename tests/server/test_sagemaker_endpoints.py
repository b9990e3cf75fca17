"""The SageMaker endpoint backend on moto's server: what it asks SageMaker, Application Auto
Scaling and CloudWatch to make, read back with their describe calls, and the EventBridge
"SageMaker Endpoint State Change" events that keep the records current.

The events have the documented shape (SageMaker developer guide, "Events that Amazon
SageMaker AI sends to Amazon EventBridge": `detail.EndpointStatus` is `IN_SERVICE`,
`FAILED`, ...; `ProductionVariants[].DesiredInstanceCount` is a float).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from fastapi import FastAPI

from aws_extension.middleware.compute import Compute, EndpointSpec
from aws_extension.middleware.compute.sagemaker_endpoints import (
    DIMENSION,
    SageMakerEndpoints,
    alarm_name,
)
from aws_extension.middleware.errors import Invalid
from aws_extension.middleware.events import handle_event
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.services import Services
from tests.server.conftest import Api
from tests.server.endpoints_support import (
    INSTANCE_TYPE,
    SETTINGS,
    aws_client,
    sagemaker_compute,
    sagemaker_endpoints,
)


@pytest.fixture
def backend(moto_endpoint: str) -> SageMakerEndpoints:
    return sagemaker_endpoints(moto_endpoint)


@pytest.fixture
def aws(moto_endpoint: str) -> dict[str, Any]:
    return {
        service: aws_client(service, moto_endpoint)
        for service in ("sagemaker", "application-autoscaling", "cloudwatch")
    }


def spec(name: str = "gpu", **fields: Any) -> EndpointSpec:
    values: dict[str, Any] = {
        "name": name,
        "type": "async",
        "instance_type": INSTANCE_TYPE,
        "initial_instance_count": 1,
        "engine": "webui",
        **fields,
    }
    return EndpointSpec(**values)


def scaling_of(aws: dict[str, Any], backend_name: str) -> tuple[list[dict], list[dict]]:
    """The scalable targets and scaling policies of the endpoint's variant."""
    resource = f"endpoint/{backend_name}/variant/AllTraffic"
    client = aws["application-autoscaling"]
    targets = client.describe_scalable_targets(ServiceNamespace="sagemaker", ResourceIds=[resource])
    policies = client.describe_scaling_policies(ServiceNamespace="sagemaker", ResourceId=resource)
    return targets["ScalableTargets"], policies["ScalingPolicies"]


def alarms_of(aws: dict[str, Any], backend_name: str) -> list[dict]:
    found = aws["cloudwatch"].describe_alarms(AlarmNames=[alarm_name(backend_name)])
    return list(found["MetricAlarms"])


def missing(call: Any, **params: Any) -> bool:
    try:
        call(**params)
    except ClientError:
        return True
    return False


# -- create, describe, delete ----------------------------------------------------------------


def test_an_async_endpoint_gets_model_config_and_endpoint(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    refs = backend.create(spec("My_GPU.1", concurrency_per_instance=3))

    name = refs["endpoint_name"]
    assert refs == {"endpoint_name": name, "config_name": name, "model_name": name}
    assert name.startswith("My-GPU-1-") and len(name) == len("My-GPU-1-") + 6
    sagemaker = aws["sagemaker"]
    model = sagemaker.describe_model(ModelName=name)
    assert model["ExecutionRoleArn"] == SETTINGS.execution_role_arn
    container = model["PrimaryContainer"]
    assert container["Image"] == SETTINGS.image_uri
    assert container["Environment"] == {
        "ENDPOINT_CACHE_BUDGET_GB": "40",
        "ENDPOINT_ENGINE": "webui",
    }
    config = sagemaker.describe_endpoint_config(EndpointConfigName=name)
    [variant] = config["ProductionVariants"]
    assert variant["VariantName"] == "AllTraffic"
    assert variant["ModelName"] == name
    assert variant["InstanceType"] == INSTANCE_TYPE
    assert variant["InitialInstanceCount"] == 1
    assert config["AsyncInferenceConfig"] == {
        "OutputConfig": {
            "S3OutputPath": "s3://sd-deployment/async-inference/output",
            "S3FailurePath": "s3://sd-deployment/async-inference/failures",
            "NotificationConfig": {
                "SuccessTopic": SETTINGS.success_topic_arn,
                "ErrorTopic": SETTINGS.error_topic_arn,
            },
        },
        "ClientConfig": {"MaxConcurrentInvocationsPerInstance": 3},
    }
    assert sagemaker.describe_endpoint(EndpointName=name)["EndpointConfigName"] == name
    state = backend.describe(spec("My_GPU.1"), refs)
    assert (state.status, state.current_instance_count, state.desired_instance_count) == (
        "InService",
        1,
        1,
    )


def test_a_realtime_endpoint_has_no_async_config(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    refs = backend.create(spec(type="realtime", initial_instance_count=2, engine="diffusers"))

    config = aws["sagemaker"].describe_endpoint_config(EndpointConfigName=refs["config_name"])

    assert "AsyncInferenceConfig" not in config or not config["AsyncInferenceConfig"]
    assert config["ProductionVariants"][0]["InitialInstanceCount"] == 2
    model = aws["sagemaker"].describe_model(ModelName=refs["model_name"])
    assert model["PrimaryContainer"]["Environment"]["ENDPOINT_ENGINE"] == "diffusers"


def test_a_refusal_is_a_domain_error_and_leaves_nothing_behind(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    """moto's list of instance types predates ml.p5: its ValidationException stands in for
    SageMaker refusing a configuration."""
    models_before = aws["sagemaker"].list_models()["Models"]

    with pytest.raises(Invalid, match="SageMaker refused to create the endpoint configuration"):
        backend.create(spec("refused", instance_type="ml.p5.48xlarge"))

    assert aws["sagemaker"].list_models()["Models"] == models_before


def test_an_endpoint_gone_from_sagemaker_describes_as_failed(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    refs = backend.create(spec("vanishing"))
    aws["sagemaker"].delete_endpoint(EndpointName=refs["endpoint_name"])

    state = backend.describe(spec("vanishing"), refs)

    assert state.status == "Failed"
    assert state.failure_reason == "Its SageMaker endpoint no longer exists."


# -- autoscaling -----------------------------------------------------------------------------


def test_async_with_min_zero_scales_on_backlog_and_out_of_zero_on_an_alarm(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    zero = spec("zero", min_instances=0, max_instances=4, concurrency_per_instance=2)
    refs = backend.create(zero)
    name = refs["endpoint_name"]

    backend.in_service(zero, refs)
    backend.in_service(zero, refs)  # a repeated event changes nothing

    [target], policies = scaling_of(aws, name)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 4)
    assert target["ScalableDimension"] == DIMENSION
    by_type = {policy["PolicyType"]: policy for policy in policies}
    assert len(policies) == 2
    tracking = by_type["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 4.0  # 2 queued per instance, per job it runs at once
    assert tracking["CustomizedMetricSpecification"] == {
        "MetricName": "ApproximateBacklogSizePerInstance",
        "Namespace": "AWS/SageMaker",
        "Dimensions": [{"Name": "EndpointName", "Value": name}],
        "Statistic": "Average",
    }
    step = by_type["StepScaling"]
    assert step["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}
    ]
    [alarm] = alarms_of(aws, name)
    assert alarm["MetricName"] == "HasBacklogWithoutCapacity"
    assert alarm["Namespace"] == "AWS/SageMaker"
    assert alarm["Dimensions"] == [{"Name": "EndpointName", "Value": name}]
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["Threshold"] == 1.0
    assert alarm["AlarmActions"] == [step["PolicyARN"]]


def test_async_with_a_floor_has_no_alarm(backend: SageMakerEndpoints, aws: dict[str, Any]) -> None:
    floor = spec("floor", min_instances=1, max_instances=2)
    refs = backend.create(floor)

    backend.in_service(floor, refs)

    [target], policies = scaling_of(aws, refs["endpoint_name"])
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 2)
    assert [p["PolicyType"] for p in policies] == ["TargetTrackingScaling"]
    assert alarms_of(aws, refs["endpoint_name"]) == []


def test_realtime_scales_on_invocations_per_instance(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    live = spec("live", type="realtime", min_instances=1, max_instances=3)
    refs = backend.create(live)

    backend.in_service(live, refs)

    [_], [policy] = scaling_of(aws, refs["endpoint_name"])
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["PredefinedMetricSpecification"] == {
        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
    }
    assert tracking["TargetValue"] == SETTINGS.invocations_per_instance


def test_a_fixed_count_registers_no_scaling(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    fixed = spec("fixed")
    refs = backend.create(fixed)

    backend.in_service(fixed, refs)

    assert scaling_of(aws, refs["endpoint_name"]) == ([], [])


def test_delete_removes_scaling_alarm_endpoint_config_and_model_and_can_repeat(
    backend: SageMakerEndpoints, aws: dict[str, Any]
) -> None:
    zero = spec("doomed", min_instances=0, max_instances=2)
    refs = backend.create(zero)
    backend.in_service(zero, refs)
    name = refs["endpoint_name"]

    backend.delete(zero, refs)
    backend.delete(zero, refs)

    assert scaling_of(aws, name) == ([], [])
    assert alarms_of(aws, name) == []
    sagemaker = aws["sagemaker"]
    assert missing(sagemaker.describe_endpoint, EndpointName=name)
    assert missing(sagemaker.describe_endpoint_config, EndpointConfigName=name)
    assert missing(sagemaker.describe_model, ModelName=name)


# -- EventBridge -----------------------------------------------------------------------------


@pytest.fixture
def compute(moto_endpoint: str) -> Compute:
    return sagemaker_compute(moto_endpoint)


@pytest.fixture
def services(app: FastAPI) -> Services:
    return app.state.services


def state_change(backend_name: str, status: str, **detail: Any) -> dict[str, Any]:
    """An event as EventBridge delivers it to the Lambda."""
    arn = f"arn:aws:sagemaker:us-east-1:123456789012:endpoint/{backend_name.lower()}"
    return {
        "version": "0",
        "id": "d2921b5a-b0ad-cace-a8e3-0f159d018e06",
        "detail-type": "SageMaker Endpoint State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [arn],
        "detail": {
            "EndpointName": backend_name,
            "EndpointArn": arn,
            "EndpointConfigName": backend_name,
            "ProductionVariants": [{"DesiredWeight": 1.0, "DesiredInstanceCount": 1.0}],
            "EndpointStatus": status,
            "CreationTime": 1_800_000_000_000.0,
            "LastModifiedTime": 1_800_000_100_000.0,
            "Tags": {},
            **detail,
        },
    }


def recorded(records: SqliteRecords, name: str) -> dict[str, Any]:
    """The stored document, read without the refresh a GET would do."""
    item = records.get("endpoint", name)
    assert item is not None
    return item.doc


def deployed(api: Api, admin: str, records: SqliteRecords, **fields: Any) -> str:
    body = {"name": "ev", "instance_type": INSTANCE_TYPE, **fields}
    reply = api.post("/endpoints", token=admin, json=body)
    assert reply.status_code == 201, reply.text
    return str(recorded(records, "ev")["refs"]["endpoint_name"])


def test_in_service_event_moves_the_record_and_sets_up_autoscaling(
    api: Api, admin: str, records: SqliteRecords, services: Services, aws: dict[str, Any]
) -> None:
    backend_name = deployed(api, admin, records, autoscaling={"min": 0, "max": 2})
    assert recorded(records, "ev")["status"] == "Creating"

    handle_event(
        services,
        state_change(
            backend_name,
            "IN_SERVICE",
            ProductionVariants=[{"DesiredWeight": 1.0, "DesiredInstanceCount": 2.0}],
        ),
    )

    doc = recorded(records, "ev")
    assert (doc["status"], doc["current_instance_count"], doc["desired_instance_count"]) == (
        "InService",
        2,
        2,
    )
    assert doc["scaling_applied"] is True
    [target], policies = scaling_of(aws, backend_name)
    assert (target["MinCapacity"], target["MaxCapacity"]) == (0, 2)
    assert len(policies) == 2


def test_failed_event_keeps_sagemakers_reason(
    api: Api, admin: str, records: SqliteRecords, services: Services
) -> None:
    backend_name = deployed(api, admin, records)

    handle_event(
        services,
        state_change(backend_name, "FAILED", FailureReason="Image pull failed: no such tag"),
    )

    shown = api.get("/endpoints/ev", token=admin).json()
    assert shown["status"] == "Failed"
    assert shown["failure_reason"] == "Image pull failed: no such tag"


def test_an_older_event_does_not_undo_a_newer_one(
    api: Api, admin: str, records: SqliteRecords, services: Services
) -> None:
    backend_name = deployed(api, admin, records)
    handle_event(services, state_change(backend_name, "UPDATING", LastModifiedTime=3e12))
    assert recorded(records, "ev")["status"] == "Updating"

    handle_event(services, state_change(backend_name, "IN_SERVICE", LastModifiedTime=2e12))
    assert recorded(records, "ev")["status"] == "Updating"

    handle_event(services, state_change(backend_name, "IN_SERVICE", LastModifiedTime=4e12))
    assert recorded(records, "ev")["status"] == "InService"


def test_an_endpoint_deleted_outside_fails_ours(
    api: Api, admin: str, records: SqliteRecords, services: Services
) -> None:
    backend_name = deployed(api, admin, records)

    handle_event(services, state_change(backend_name, "DELETING"))

    doc = recorded(records, "ev")
    assert doc["status"] == "Failed"
    assert "deleted outside this deployment" in doc["failure_reason"]


@pytest.mark.parametrize(
    "event",
    [
        {"source": "aws.sagemaker", "detail-type": "SageMaker Training Job State Change"},
        {"source": "aws.s3", "detail-type": "Object Created", "detail": {}},
        {"detail-type": "SageMaker Endpoint State Change", "source": "aws.sagemaker"},
        {"something": "else"},
        [],
    ],
)
def test_events_nobody_handles_are_ignored(
    api: Api, admin: str, records: SqliteRecords, services: Services, event: Any
) -> None:
    deployed(api, admin, records)

    handle_event(services, event)

    assert recorded(records, "ev")["status"] == "Creating"


def test_state_changes_of_other_endpoints_or_unknown_statuses_are_ignored(
    api: Api, admin: str, records: SqliteRecords, services: Services
) -> None:
    backend_name = deployed(api, admin, records)

    handle_event(services, state_change("someone-elses-endpoint", "FAILED"))
    handle_event(services, state_change(backend_name, "TELEPORTING"))
    handle_event(services, {**state_change(backend_name, "FAILED"), "detail": {"x": 1}})

    assert recorded(records, "ev")["status"] == "Creating"
