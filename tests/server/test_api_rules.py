"""The security rules of docs/architecture.md, attacked through the API.

Cast: `admin` (super admin, all six permissions), `uma` (user:all only), `rob` (role:all
only), `tess` (user:all + train:all).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.server.conftest import PASSWORD, Api

NEW_PASSWORD = "taken over 9!"


@pytest.fixture
def cast(api: Api, admin: str) -> dict[str, str]:
    """Access tokens of the cast, by name."""
    api.create_role(admin, "usermgr", ["user:all"])
    api.create_role(admin, "rolemgr", ["role:all"])
    api.create_role(admin, "trainer", ["train:all"])
    api.create_user(admin, "uma", ["usermgr"])
    api.create_user(admin, "rob", ["rolemgr"])
    api.create_user(admin, "tess", ["usermgr", "trainer"])
    tokens = {name: api.token(name, PASSWORD) for name in ("uma", "rob", "tess")}
    return {"admin": admin, **tokens}


def denied(response: Any, *lacking: str) -> None:
    assert response.status_code == 403, response.json()
    assert response.json()["code"] == "permission_denied"
    for permission in lacking:
        assert repr(permission) in response.json()["detail"]


def conflict(response: Any) -> None:
    assert response.status_code == 409, response.json()
    assert response.json()["code"] == "conflict"


def test_a_role_may_only_get_permissions_the_caller_holds(api: Api, cast: dict) -> None:
    body = {"name": "sneaky", "permissions": ["role:all", "train:all"]}
    denied(api.post("/roles", token=cast["rob"], json=body), "train:all")
    assert api.get("/roles/sneaky", token=cast["admin"]).status_code == 404
    body = {"name": "modest", "permissions": ["role:all"]}
    assert api.post("/roles", token=cast["rob"], json=body).status_code == 201


def test_a_role_update_may_not_add_permissions_the_caller_lacks(api: Api, cast: dict) -> None:
    api.create_role(cast["rob"], "mine", [])
    body = {"permissions": ["role:all", "user:all"]}
    denied(api.put("/roles/mine", token=cast["rob"], json=body), "user:all")
    # Including the caller's own role: rob cannot grow rolemgr either.
    denied(api.put("/roles/rolemgr", token=cast["rob"], json=body), "user:all")
    assert api.get("/roles/rolemgr", token=cast["admin"]).json()["permissions"] == ["role:all"]


def test_a_role_holding_more_than_the_caller_cannot_be_touched(api: Api, cast: dict) -> None:
    # rob holds role:all but not what `admin` holds: he may not strip the super admin's role.
    body = {"permissions": ["role:all"]}
    denied(api.put("/roles/admin", token=cast["rob"], json=body), "user:all")
    denied(api.delete("/roles/trainer", token=cast["rob"]), "train:all")
    assert len(api.get("/roles/admin", token=cast["admin"]).json()["permissions"]) == 6


def test_users_may_only_get_roles_the_caller_holds_in_full(api: Api, cast: dict) -> None:
    body = {"username": "mallory", "password": PASSWORD, "roles": ["admin"]}
    denied(api.post("/users", token=cast["uma"], json=body), "role:all", "train:all")
    body["roles"] = ["trainer"]
    denied(api.post("/users", token=cast["uma"], json=body), "train:all")
    assert api.get("/users/mallory", token=cast["admin"]).status_code == 404
    body["roles"] = ["usermgr"]
    assert api.post("/users", token=cast["uma"], json=body).status_code == 201


def test_nobody_can_give_themselves_more(api: Api, cast: dict) -> None:
    for roles in (["usermgr", "admin"], ["usermgr", "rolemgr"], ["trainer"]):
        response = api.put("/users/uma", token=cast["uma"], json={"roles": roles})
        denied(response)
    assert api.get("/me", token=cast["uma"]).json()["permissions"] == ["user:all"]


def test_a_user_manager_cannot_take_over_a_more_powerful_user(api: Api, cast: dict) -> None:
    # uma (user:all) must not reset the super admin's password and sign in as them.
    denied(
        api.put("/users/admin", token=cast["uma"], json={"password": NEW_PASSWORD}),
        "role:all",
    )
    api.watch.secrets.add(NEW_PASSWORD)
    refused = api.post("/auth/login", json={"username": "admin", "password": NEW_PASSWORD})
    assert refused.status_code == 401
    # Nor that of a peer holding one permission more, nor strip or delete them.
    denied(api.put("/users/tess", token=cast["uma"], json={"password": NEW_PASSWORD}), "train:all")
    denied(api.put("/users/tess", token=cast["uma"], json={"roles": []}), "train:all")
    denied(api.delete("/users/tess", token=cast["uma"]), "train:all")
    denied(api.delete("/users/admin", token=cast["uma"]), "role:all")
    api.login("tess", PASSWORD)


def test_a_user_manager_may_manage_its_equals_and_lessers(api: Api, cast: dict) -> None:
    api.create_user(cast["admin"], "plain", [])
    response = api.put("/users/plain", token=cast["tess"], json={"roles": ["trainer"]})
    assert response.status_code == 200
    response = api.put("/users/uma", token=cast["tess"], json={"password": NEW_PASSWORD})
    assert response.status_code == 200
    assert api.delete("/users/uma", token=cast["tess"]).status_code == 204


def test_nobody_deletes_themselves(api: Api, cast: dict) -> None:
    for name in ("admin", "uma"):
        response = api.delete(f"/users/{name}", token=cast[name])
        conflict(response)
        assert "yourself" in response.json()["detail"]


def test_the_last_holder_of_role_all_and_user_all_stays(api: Api, admin: str) -> None:
    # admin is the only user holding role:all and user:all.
    conflict(api.put("/users/admin", token=admin, json={"roles": []}))
    conflict(api.put("/roles/admin", token=admin, json={"permissions": ["user:all"]}))
    conflict(api.put("/roles/admin", token=admin, json={"permissions": ["role:all"]}))
    response = api.put("/roles/admin", token=admin, json={"permissions": []})
    conflict(response)
    assert "nobody holding" in response.json()["detail"]
    assert len(api.get("/me", token=admin).json()["permissions"]) == 6


def test_a_holder_may_step_down_once_someone_else_holds_the_permission(
    api: Api, admin: str
) -> None:
    api.create_role(admin, "managers", ["role:all", "user:all"])
    api.create_user(admin, "heir", ["managers"])
    response = api.put("/users/admin", token=admin, json={"roles": []})
    assert response.status_code == 200
    assert api.get("/me", token=admin).json()["permissions"] == []
    # Now heir is the last holder, through the role `managers`.
    heir = api.token("heir", PASSWORD)
    conflict(api.put("/roles/managers", token=heir, json={"permissions": ["user:all"]}))
    conflict(api.put("/users/heir", token=heir, json={"roles": []}))
    assert api.put("/users/admin", token=heir, json={"roles": ["managers"]}).status_code == 200
