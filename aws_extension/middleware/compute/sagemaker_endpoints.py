"""SageMaker endpoints through injected boto3 clients (sagemaker, application-autoscaling,
cloudwatch).

`create` makes a model (the endpoint image, `ENDPOINT_ENGINE` in its environment), an
endpoint config with one variant `AllTraffic` (async: `AsyncInferenceConfig` writing to the
deployment's bucket and notifying its SNS topics, `MaxConcurrentInvocationsPerInstance`
from the spec) and the endpoint, all under one derived name (`sagemaker_names`). The
endpoint then takes minutes to become InService; EventBridge tells the service.

`in_service` sets up autoscaling when the spec has bounds: the variant's
DesiredInstanceCount as a scalable target (min, max) and

- async: target tracking on `ApproximateBacklogSizePerInstance` (queued jobs per
  instance); with min 0 also a step policy that adds an instance, fired by a CloudWatch
  alarm on `HasBacklogWithoutCapacity` (target tracking alone never scales out from zero:
  with no instance, there is no per-instance backlog to track);
- real-time: target tracking on `SageMakerVariantInvocationsPerInstance`.

`delete` removes all of it, each step tolerating what is gone already, so it can be
repeated after a failure.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from aws_extension.contract import (
    ENDPOINT_FAILED,
    ENDPOINT_UPDATING,
    SAGEMAKER_INSTANCE_TYPES,
)
from aws_extension.middleware.compute.base import EndpointBackend, EndpointSpec, EndpointState
from aws_extension.middleware.compute.sagemaker_names import (
    VARIANT,
    endpoint_status,
    resource_name,
    scaling_resource_id,
)
from aws_extension.middleware.compute.sagemaker_settings import SageMakerSettings
from aws_extension.middleware.errors import Conflict, DomainError, Invalid, Unavailable

logger = logging.getLogger(__name__)

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"
METRICS_NAMESPACE = "AWS/SageMaker"
#: How SageMaker and Application Auto Scaling word "there is no such thing".
_MISSING = re.compile(r"could not find|not found|does not exist|\bno .* found", re.IGNORECASE)
#: Tag on every resource: which endpoint of this product it belongs to.
TAG_KEY = "sd-webui-sagemaker:endpoint"


def _policy_names(backend_name: str) -> dict[str, str]:
    return {
        "backlog": f"{backend_name}-backlog",
        "from_zero": f"{backend_name}-from-zero",
        "invocations": f"{backend_name}-invocations",
    }


def alarm_name(backend_name: str) -> str:
    return f"{backend_name}-backlog-without-capacity"


def _error_words(error: ClientError) -> tuple[str, str]:
    details = error.response.get("Error", {})
    return str(details.get("Code", "")), str(details.get("Message", ""))


def _is_missing(error: ClientError) -> bool:
    """SageMaker says "Could not find ..." (a ValidationException), Application Auto Scaling
    ObjectNotFoundException or "No scaling policy found ..."."""
    code, message = _error_words(error)
    return code in ("ObjectNotFoundException", "ResourceNotFound") or (
        code == "ValidationException" and _MISSING.search(message) is not None
    )


@contextlib.contextmanager
def _refusals(action: str, *, invalid: type[DomainError] = Invalid) -> Iterator[None]:
    """SageMaker's refusals as domain errors, in its own words (they name the problem:
    a quota of 0 for the instance type, a bad role, a status that forbids the action).
    `invalid` is what a ValidationException becomes."""
    try:
        yield
    except ClientError as error:
        code, message = _error_words(error)
        if code == "ResourceLimitExceeded":
            raise Conflict(f"SageMaker cannot {action}: {message}") from None
        if code == "ValidationException":
            raise invalid(f"SageMaker refused to {action}: {message}") from None
        if code in ("AccessDeniedException", "AccessDenied"):
            raise Unavailable(
                f"The middleware may not {action} ({code}); check its IAM role."
            ) from None
        raise


def _ignore_missing(call: Callable[..., Any], **params: Any) -> None:
    try:
        call(**params)
    except ClientError as error:
        if not _is_missing(error):
            raise


class SageMakerEndpoints(EndpointBackend):
    instance_types = SAGEMAKER_INSTANCE_TYPES

    def __init__(
        self, sagemaker: Any, autoscaling: Any, cloudwatch: Any, settings: SageMakerSettings
    ) -> None:
        """boto3 clients of `sagemaker`, `application-autoscaling` and `cloudwatch`."""
        self._sagemaker = sagemaker
        self._autoscaling = autoscaling
        self._cloudwatch = cloudwatch
        self.settings = settings

    # -- EndpointBackend -------------------------------------------------------------------

    def create(self, spec: EndpointSpec) -> dict[str, Any]:
        name = resource_name(spec.name, secrets.token_hex(3))
        tags = [{"Key": TAG_KEY, "Value": spec.name}]
        made: list[Callable[[], None]] = []
        try:
            with _refusals("create the model"):
                self._sagemaker.create_model(
                    ModelName=name,
                    ExecutionRoleArn=self.settings.execution_role_arn,
                    PrimaryContainer=self._container(spec),
                    Tags=tags,
                )
            made.append(lambda: self._sagemaker.delete_model(ModelName=name))
            with _refusals("create the endpoint configuration"):
                self._sagemaker.create_endpoint_config(**self._config(spec, name), Tags=tags)
            made.append(lambda: self._sagemaker.delete_endpoint_config(EndpointConfigName=name))
            with _refusals("create the endpoint"):
                self._sagemaker.create_endpoint(
                    EndpointName=name, EndpointConfigName=name, Tags=tags
                )
        except BaseException:
            for undo in reversed(made):
                try:
                    undo()
                except ClientError:
                    logger.exception("Could not remove a part of endpoint %s", name)
            raise
        return {"endpoint_name": name, "config_name": name, "model_name": name}

    def describe(self, spec: EndpointSpec, refs: dict[str, Any]) -> EndpointState:
        try:
            found = self._sagemaker.describe_endpoint(EndpointName=refs["endpoint_name"])
        except ClientError as error:
            if _is_missing(error):
                return EndpointState(
                    ENDPOINT_FAILED, 0, 0, "Its SageMaker endpoint no longer exists."
                )
            raise
        status = endpoint_status(found["EndpointStatus"]) or ENDPOINT_UPDATING
        variants = found.get("ProductionVariants") or [{}]
        reason = found.get("FailureReason") or "SageMaker gave no reason."
        return EndpointState(
            status,
            current_instance_count=variants[0].get("CurrentInstanceCount"),
            desired_instance_count=variants[0].get("DesiredInstanceCount"),
            failure_reason=reason if status == ENDPOINT_FAILED else None,
        )

    def in_service(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:
        """Register autoscaling; every call is an upsert, so running it twice is harmless."""
        if spec.min_instances is None or spec.max_instances is None:
            return
        name = refs["endpoint_name"]
        self._autoscaling.register_scalable_target(
            **self._target(name), MinCapacity=spec.min_instances, MaxCapacity=spec.max_instances
        )
        policies = _policy_names(name)
        cooldowns = {
            "ScaleInCooldown": self.settings.scale_in_cooldown,
            "ScaleOutCooldown": self.settings.scale_out_cooldown,
        }
        if spec.type == "realtime":
            self._autoscaling.put_scaling_policy(
                **self._target(name),
                PolicyName=policies["invocations"],
                PolicyType="TargetTrackingScaling",
                TargetTrackingScalingPolicyConfiguration={
                    "TargetValue": self.settings.invocations_per_instance,
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                    },
                    **cooldowns,
                },
            )
            return
        self._autoscaling.put_scaling_policy(
            **self._target(name),
            PolicyName=policies["backlog"],
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": self.settings.backlog_per_instance * spec.concurrency_per_instance,
                "CustomizedMetricSpecification": {
                    "MetricName": "ApproximateBacklogSizePerInstance",
                    "Namespace": METRICS_NAMESPACE,
                    "Dimensions": [{"Name": "EndpointName", "Value": name}],
                    "Statistic": "Average",
                },
                **cooldowns,
            },
        )
        if spec.min_instances == 0:
            self._scale_out_from_zero(name, policies["from_zero"])

    def delete(self, spec: EndpointSpec, refs: dict[str, Any]) -> None:
        name = refs["endpoint_name"]
        self._cloudwatch.delete_alarms(AlarmNames=[alarm_name(name)])
        for policy in _policy_names(name).values():
            _ignore_missing(
                self._autoscaling.delete_scaling_policy, **self._target(name), PolicyName=policy
            )
        _ignore_missing(self._autoscaling.deregister_scalable_target, **self._target(name))
        with _refusals("delete the endpoint", invalid=Conflict):
            _ignore_missing(self._sagemaker.delete_endpoint, EndpointName=name)
            _ignore_missing(
                self._sagemaker.delete_endpoint_config, EndpointConfigName=refs["config_name"]
            )
            _ignore_missing(self._sagemaker.delete_model, ModelName=refs["model_name"])

    # -- helpers ---------------------------------------------------------------------------

    def _container(self, spec: EndpointSpec) -> dict[str, Any]:
        container: dict[str, Any] = {
            "Image": self.settings.image_uri,
            "Mode": "SingleModel",
            "Environment": {**self.settings.environment, "ENDPOINT_ENGINE": spec.engine},
        }
        if self.settings.model_data_url is not None:
            container["ModelDataUrl"] = self.settings.model_data_url
        return container

    def _config(self, spec: EndpointSpec, name: str) -> dict[str, Any]:
        variant = {
            "VariantName": VARIANT,
            "ModelName": name,
            "InstanceType": spec.instance_type,
            "InitialInstanceCount": spec.initial_instance_count,
            "ContainerStartupHealthCheckTimeoutInSeconds": self.settings.startup_timeout,
        }
        config: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant]}
        if spec.type == "async":
            config["AsyncInferenceConfig"] = {
                "OutputConfig": {
                    "S3OutputPath": self.settings.output_path,
                    "S3FailurePath": self.settings.failure_path,
                    "NotificationConfig": {
                        "SuccessTopic": self.settings.success_topic_arn,
                        "ErrorTopic": self.settings.error_topic_arn,
                    },
                },
                "ClientConfig": {
                    "MaxConcurrentInvocationsPerInstance": spec.concurrency_per_instance
                },
            }
        return config

    @staticmethod
    def _target(name: str) -> dict[str, str]:
        return {
            "ServiceNamespace": NAMESPACE,
            "ResourceId": scaling_resource_id(name),
            "ScalableDimension": DIMENSION,
        }

    def _scale_out_from_zero(self, name: str, policy_name: str) -> None:
        """One more instance while jobs wait and none runs: the alarm fires the policy."""
        policy = self._autoscaling.put_scaling_policy(
            **self._target(name),
            PolicyName=policy_name,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": self.settings.scale_out_cooldown,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0.0, "ScalingAdjustment": 1}],
            },
        )
        self._cloudwatch.put_metric_alarm(
            AlarmName=alarm_name(name),
            AlarmDescription=f"Jobs wait for SageMaker endpoint {name}, which has no instance.",
            MetricName="HasBacklogWithoutCapacity",
            Namespace=METRICS_NAMESPACE,
            Dimensions=[{"Name": "EndpointName", "Value": name}],
            Statistic="Average",
            Period=60,
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
            AlarmActions=[policy["PolicyARN"]],
        )
