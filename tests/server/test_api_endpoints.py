"""The /endpoints routes and their rules, on the SageMaker backend (moto's server).

moto makes endpoints InService at once, so a read right after the create already moves
the record on; the local backend's own behaviour is in test_local_endpoints.py.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from aws_extension.contract import (
    PERMISSION_ENDPOINT,
    PERMISSION_INFERENCE,
    SAGEMAKER_INSTANCE_TYPES,
)
from aws_extension.middleware.app import create_app
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.config import Config
from aws_extension.middleware.errors import Conflict, NoEndpoint, NotFound
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.services.endpoints import EndpointService
from aws_extension.middleware.services.entities import Principal
from tests.server.conftest import Api, FakeClock, SecretWatch
from tests.server.endpoints_support import INSTANCE_TYPE, aws_client, sagemaker_compute, user_with

SHAPE = {
    "name",
    "type",
    "instance_type",
    "initial_instance_count",
    "autoscaling",
    "concurrency_per_instance",
    "engine",
    "webui_url",
    "allowed_roles",
    "status",
    "current_instance_count",
    "desired_instance_count",
    "failure_reason",
    "created_by",
    "created_at",
    "updated_at",
}


@pytest.fixture
def compute(moto_endpoint: str) -> Compute:
    return sagemaker_compute(moto_endpoint)


@pytest.fixture
def endpoints(app: FastAPI) -> EndpointService:
    service = app.state.services.endpoints
    assert service is not None
    return service


def problem(reply: Any, status: int, code: str) -> str:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"] == "application/problem+json"
    body = reply.json()
    assert body["code"] == code, body
    return str(body["detail"])


def deploy(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    reply = api.post("/endpoints", token=token, json={"instance_type": INSTANCE_TYPE, **fields})
    assert reply.status_code == 201, reply.text
    result: dict[str, Any] = reply.json()
    return result


def names(reply: Any) -> list[str]:
    assert reply.status_code == 200, reply.text
    return [item["name"] for item in reply.json()["items"]]


# -- deploying -------------------------------------------------------------------------------


def test_a_deployed_endpoint_has_the_contract_shape_and_no_backend_references(
    api: Api, admin: str
) -> None:
    created = deploy(api, admin, autoscaling={"min": 0, "max": 3}, concurrency_per_instance=2)

    assert set(created) == SHAPE
    assert re.fullmatch(r"sd-async-[0-9a-f]{6}", created["name"])
    assert created["type"] == "async"
    assert created["engine"] == "diffusers"
    assert created["status"] == "Creating"
    assert created["autoscaling"] == {"min": 0, "max": 3}
    assert created["initial_instance_count"] == 1
    assert created["concurrency_per_instance"] == 2
    assert created["allowed_roles"] == [] and created["webui_url"] is None
    assert created["created_by"] == "admin" and created["failure_reason"] is None
    # moto's endpoint is InService at once: the next read asks SageMaker and says so.
    current = api.get(f"/endpoints/{created['name']}", token=admin).json()
    assert current["status"] == "InService"
    assert (current["current_instance_count"], current["desired_instance_count"]) == (1, 1)
    assert set(current) == SHAPE


def test_instance_types_are_the_backends_for_everyone_signed_in(api: Api, admin: str) -> None:
    nobody = user_with(api, admin, "nobody", "nothing", [])

    reply = api.get("/endpoints/instance-types", token=nobody)

    assert reply.status_code == 200
    assert reply.json() == {"items": list(SAGEMAKER_INSTANCE_TYPES)}
    problem(api.get("/endpoints/instance-types"), 401, "not_authenticated")


def test_an_instance_type_not_offered_is_400_naming_the_offered_ones(api: Api, admin: str) -> None:
    reply = api.post("/endpoints", token=admin, json={"instance_type": "ml.t2.medium"})

    detail = problem(reply, 400, "invalid")
    assert "'ml.t2.medium' is not offered here" in detail
    assert "ml.g5.xlarge" in detail and "ml.p5.48xlarge" in detail


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"concurrency_per_instance": 17}, "body.concurrency_per_instance"),
        ({"concurrency_per_instance": 0}, "body.concurrency_per_instance"),
        ({"initial_instance_count": 0}, "body.initial_instance_count"),
        ({"type": "batch"}, "body.type"),
        ({"engine": "comfy"}, "body.engine"),
        ({"name": "-leading-hyphen"}, "body.name"),
        ({"autoscaling": {"min": -1, "max": 2}}, "body.autoscaling.min"),
        ({"autoscaling": {"min": 1}}, "body.autoscaling.max"),
        ({"colour": "blue"}, "body.colour"),
    ],
)
def test_fields_out_of_range_are_422_naming_them(
    api: Api, admin: str, fields: dict[str, Any], field: str
) -> None:
    body = {"instance_type": INSTANCE_TYPE, **fields}

    reply = api.post("/endpoints", token=admin, json=body)

    problem(reply, 422, "validation_error")
    assert field in [error["field"] for error in reply.json()["errors"]]


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"autoscaling": {"min": 3, "max": 2}}, "autoscaling.max (2) is below autoscaling.min (3)"),
        (
            {"initial_instance_count": 4, "autoscaling": {"min": 1, "max": 3}},
            "initial_instance_count (4) must lie between autoscaling.min (1) and",
        ),
        (
            {"type": "realtime", "autoscaling": {"min": 0, "max": 2}},
            "Only async endpoints can scale to zero",
        ),
        ({"webui_url": "http://127.0.0.1:7860"}, "only for instance type 'local'"),
        ({"allowed_roles": ["ghosts"]}, "Unknown role(s): 'ghosts'"),
        ({"name": "instance-types"}, "cannot name an endpoint"),
    ],
)
def test_rules_across_fields_are_400_in_words(
    api: Api, admin: str, fields: dict[str, Any], words: str
) -> None:
    reply = api.post("/endpoints", token=admin, json={"instance_type": INSTANCE_TYPE, **fields})

    assert words in problem(reply, 400, "invalid")
    assert names(api.get("/endpoints", token=admin)) == []


def test_a_name_is_taken_once(api: Api, admin: str) -> None:
    deploy(api, admin, name="gpu-1", type="realtime")

    reply = api.post(
        "/endpoints", token=admin, json={"name": "gpu-1", "instance_type": INSTANCE_TYPE}
    )

    assert "named 'gpu-1' already exists" in problem(reply, 409, "conflict")
    listed = api.get("/endpoints", token=admin).json()["items"]
    assert [(e["name"], e["type"]) for e in listed] == [("gpu-1", "realtime")]


# -- who may do what -------------------------------------------------------------------------


def test_changes_need_the_endpoint_permission(api: Api, admin: str) -> None:
    deploy(api, admin, name="shared")
    artist = user_with(api, admin, "artist", "artists", [PERMISSION_INFERENCE])

    create = api.post("/endpoints", token=artist, json={"instance_type": INSTANCE_TYPE})
    delete = api.delete("/endpoints/shared", token=artist)

    assert "sagemaker_endpoint:all" in problem(create, 403, "permission_denied")
    problem(delete, 403, "permission_denied")
    assert names(api.get("/endpoints", token=artist)) == ["shared"]
    problem(api.get("/endpoints"), 401, "not_authenticated")
    assert api.get("/endpoints", headers={"x-api-key": "wrong"}).status_code == 403


def test_endpoints_are_visible_to_their_roles_and_to_managers(api: Api, admin: str) -> None:
    artist = user_with(api, admin, "artist", "artists", [PERMISSION_INFERENCE])
    other = user_with(api, admin, "other", "others", [PERMISSION_INFERENCE])
    operator = user_with(api, admin, "operator", "operators", [PERMISSION_ENDPOINT])
    deploy(api, admin, name="a-open")
    deploy(api, admin, name="b-artists", allowed_roles=["artists"])

    assert names(api.get("/endpoints", token=artist)) == ["a-open", "b-artists"]
    assert names(api.get("/endpoints", token=other)) == ["a-open"]
    assert names(api.get("/endpoints", token=operator)) == ["a-open", "b-artists"]
    assert api.get("/endpoints/b-artists", token=artist).json()["allowed_roles"] == ["artists"]
    # Invisible is absent, never forbidden.
    assert "No endpoint named 'b-artists'" in problem(
        api.get("/endpoints/b-artists", token=other), 404, "not_found"
    )


def test_the_list_is_in_name_order_and_paged(api: Api, admin: str) -> None:
    for name in ("c", "a", "B"):
        deploy(api, admin, name=name)

    first = api.get("/endpoints", token=admin, params={"limit": 2})
    second = api.get(
        "/endpoints", token=admin, params={"limit": 2, "cursor": first.json()["next_cursor"]}
    )

    assert names(first) == ["B", "a"]  # UTF-8 byte order, as users and roles
    assert names(second) == ["c"] and second.json()["next_cursor"] is None
    problem(api.get("/endpoints", token=admin, params={"cursor": "junk"}), 400, "invalid")


# -- deleting --------------------------------------------------------------------------------


def test_delete_removes_the_endpoint_and_tells_the_hooks(
    api: Api, admin: str, endpoints: EndpointService, moto_endpoint: str
) -> None:
    deleted: list[str] = []
    endpoints.on_deleted.append(deleted.append)
    deploy(api, admin, name="short-lived")
    sagemaker = aws_client("sagemaker", moto_endpoint)
    [backend_name] = [
        e["EndpointName"] for e in sagemaker.list_endpoints(NameContains="short-lived")["Endpoints"]
    ]

    reply = api.delete("/endpoints/short-lived", token=admin)

    assert reply.status_code == 204
    assert deleted == ["short-lived"]
    problem(api.get("/endpoints/short-lived", token=admin), 404, "not_found")
    assert sagemaker.list_endpoints(NameContains=backend_name)["Endpoints"] == []
    problem(api.delete("/endpoints/short-lived", token=admin), 404, "not_found")
    # The name is free again.
    assert deploy(api, admin, name="short-lived")["status"] == "Creating"


# -- without compute -------------------------------------------------------------------------


def test_without_compute_the_routes_are_503_after_the_sign_in_checks(
    config: Config, records: SqliteRecords, clock: FakeClock, admin_password: str
) -> None:
    bare = create_app(config, records, clock=clock)
    with TestClient(bare) as client:
        api = Api(client, SecretWatch())
        admin = api.token("admin", admin_password)
        problem(api.get("/endpoints"), 401, "not_authenticated")
        for reply in (
            api.get("/endpoints", token=admin),
            api.get("/endpoints/instance-types", token=admin),
            api.get("/endpoints/x", token=admin),
            api.post("/endpoints", token=admin, json={"instance_type": INSTANCE_TYPE}),
            api.delete("/endpoints/x", token=admin),
        ):
            assert "no compute" in problem(reply, 503, "unavailable")


# -- picking an endpoint for a job (the inference service's seam) ----------------------------


def caller(api: Api, admin: str, username: str, role: str) -> Principal:
    user_with(api, admin, username, role, [PERMISSION_INFERENCE])
    return Principal(username, frozenset({PERMISSION_INFERENCE}))


def test_pick_prefers_in_service_then_name_and_respects_visibility(
    api: Api, admin: str, endpoints: EndpointService, records: SqliteRecords
) -> None:
    artist = caller(api, admin, "artist", "artists")
    other = caller(api, admin, "other", "others")
    deploy(api, admin, name="b-artists", allowed_roles=["artists"])
    deploy(api, admin, name="c-open")
    deploy(api, admin, name="a-failed")
    item = records.get("endpoint", "a-failed")
    assert item is not None
    backend_name = item.doc["refs"]["endpoint_name"]
    endpoints.handle_state_change(
        {"EndpointName": backend_name, "EndpointStatus": "FAILED", "FailureReason": "boom"}
    )

    assert endpoints.pick(artist, None, queues_while_creating=False).name == "b-artists"
    picked = endpoints.pick(other, None, queues_while_creating=False)
    assert (picked.name, picked.status) == ("c-open", "InService")
    assert picked.refs["endpoint_name"].startswith("c-open-")
    assert picked.spec.instance_type == INSTANCE_TYPE
    with pytest.raises(NotFound):
        endpoints.pick(other, "b-artists", queues_while_creating=False)
    with pytest.raises(Conflict, match=r"failed \(boom\); delete it"):
        endpoints.pick(artist, "a-failed", queues_while_creating=True)


def test_pick_without_a_usable_endpoint_is_no_endpoint(
    api: Api, admin: str, endpoints: EndpointService
) -> None:
    other = caller(api, admin, "other", "others")
    deploy(api, admin, name="private", allowed_roles=["admin"])

    with pytest.raises(NoEndpoint) as raised:
        endpoints.pick(other, None, queues_while_creating=True)

    assert raised.value.code == "no_endpoint"
    assert "deploy one in Inference Endpoint Management" in raised.value.detail
