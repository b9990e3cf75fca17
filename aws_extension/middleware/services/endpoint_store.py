"""The records behind endpoints: their documents and safe state changes.

Kind `endpoint`, key: the endpoint's name. The records' conditional create is what makes
names unique (two concurrent deploys of one name: one gets 409), and every later change is
version-conditional (`EndpointStore.change`), so a state-change event and a user's delete
arriving together never lose each other's writes.

The document holds what POST /endpoints asked for (`EndpointSpec`'s fields), who may use
the endpoint, its status and instance counts as last seen, and `refs`: what the backend
needs to find its resources again (None while the backend is still creating them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_extension.contract import ENDPOINT_CREATING
from aws_extension.middleware.compute import EndpointSpec
from aws_extension.middleware.errors import Conflict, NotFound
from aws_extension.middleware.records import AlreadyExists, Doc, Item, Records, VersionConflict
from aws_extension.middleware.records.base import Page
from aws_extension.middleware.services.entities import timestamp

ENDPOINT = "endpoint"

#: Optimistic writes retried this often before the caller is told to try again.
_WRITE_ATTEMPTS = 8


@dataclass(frozen=True)
class Autoscaling:
    min: int
    max: int


@dataclass(frozen=True)
class Endpoint:
    """An endpoint as the API shows it: never the backend's references or paths."""

    name: str
    type: str
    instance_type: str
    initial_instance_count: int
    autoscaling: Autoscaling | None
    concurrency_per_instance: int
    engine: str
    webui_url: str | None
    allowed_roles: list[str]
    status: str
    current_instance_count: int | None
    desired_instance_count: int | None
    failure_reason: str | None
    created_by: str
    created_at: datetime
    updated_at: datetime


def endpoint_from(item: Item) -> Endpoint:
    doc = item.doc
    low, high = doc["min_instances"], doc["max_instances"]
    return Endpoint(
        name=item.key,
        type=doc["type"],
        instance_type=doc["instance_type"],
        initial_instance_count=doc["initial_instance_count"],
        autoscaling=Autoscaling(low, high) if low is not None and high is not None else None,
        concurrency_per_instance=doc["concurrency_per_instance"],
        engine=doc["engine"],
        webui_url=doc["webui_url"],
        allowed_roles=list(doc["allowed_roles"]),
        status=doc["status"],
        current_instance_count=doc["current_instance_count"],
        desired_instance_count=doc["desired_instance_count"],
        failure_reason=doc["failure_reason"],
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )


def spec_from(item: Item) -> EndpointSpec:
    doc = item.doc
    return EndpointSpec(
        name=item.key,
        type=doc["type"],
        instance_type=doc["instance_type"],
        initial_instance_count=doc["initial_instance_count"],
        engine=doc["engine"],
        min_instances=doc["min_instances"],
        max_instances=doc["max_instances"],
        concurrency_per_instance=doc["concurrency_per_instance"],
        webui_url=doc["webui_url"],
        webui_models_dir=doc["webui_models_dir"],
    )


def new_doc(spec: EndpointSpec, allowed_roles: list[str], created_by: str, now: str) -> Doc:
    """The document of an endpoint just asked for: `Creating`, no backend references yet."""
    return {
        "type": spec.type,
        "instance_type": spec.instance_type,
        "initial_instance_count": spec.initial_instance_count,
        "min_instances": spec.min_instances,
        "max_instances": spec.max_instances,
        "concurrency_per_instance": spec.concurrency_per_instance,
        "engine": spec.engine,
        "webui_url": spec.webui_url,
        "webui_models_dir": spec.webui_models_dir,
        "allowed_roles": allowed_roles,
        "status": ENDPOINT_CREATING,
        "current_instance_count": 0,
        "desired_instance_count": spec.initial_instance_count,
        "failure_reason": None,
        "created_by": created_by,
        "created_at": now,
        "updated_at": now,
        "refs": None,
        #: Whether `EndpointBackend.in_service` (autoscaling) has run successfully.
        "scaling_applied": False,
    }


class EndpointStore:
    def __init__(self, records: Records, clock: Callable[[], float]) -> None:
        self.records = records
        self._clock = clock

    @staticmethod
    def gone(name: str) -> NotFound:
        return NotFound(f"No endpoint named {name!r}.")

    def get(self, name: str) -> Item | None:
        return self.records.get(ENDPOINT, name)

    def item(self, name: str) -> Item:
        item = self.get(name)
        if item is None:
            raise self.gone(name)
        return item

    def create(self, name: str, doc: Doc) -> Item:
        try:
            return self.records.create(ENDPOINT, name, doc)
        except AlreadyExists:
            raise Conflict(
                f"An endpoint named {name!r} already exists; pick another name or delete it first."
            ) from None

    def change(self, item: Item, check: Callable[[Doc], bool], **changes: Any) -> Item | None:
        """Write `changes` over the newest version of the endpoint, if `check` (run on the
        fresh document after every conflict) still allows it; None when it does not.

        Raises NotFound once the endpoint is deleted.
        """
        for _ in range(_WRITE_ATTEMPTS):
            if not check(item.doc):
                return None
            doc = {**item.doc, **changes, "updated_at": timestamp(self._clock)}
            try:
                return self.records.update(ENDPOINT, item.key, doc, expected_version=item.version)
            except VersionConflict:
                item = self.item(item.key)
            except NotFound:
                raise self.gone(item.key) from None
        raise Conflict(f"Endpoint {item.key!r} is being changed by others; try again.")

    def remove(self, name: str) -> bool:
        """Delete the record; False when it was gone already."""
        try:
            self.records.delete(ENDPOINT, name)
        except NotFound:
            return False
        return True

    def page(self, limit: int, cursor: str | None) -> Page:
        return self.records.list(ENDPOINT, limit=limit, cursor=cursor)

    def scan(self) -> Iterator[Item]:
        return self.records.scan(ENDPOINT)
