"""Endpoints: deploy, list, delete, pick one for a job, and keep their status current.

Rules (docs/architecture.md, "Endpoints"):

- Names are unique (the records' conditional create decides); a name left out becomes
  `sd-<type>-<6 hex>`. What the backend offers decides the instance types.
- Everyone signed in sees the endpoints whose `allowed_roles` is empty or shares a role
  with them; `sagemaker_endpoint:all` holders see all (the routers require it for changes).
  An endpoint the caller may not see is 404.
- The record is written first (it claims the name), then the backend creates; a refusal of
  the backend removes the record again. Status comes from the backend: on every read while
  it is in flux (`Creating`, `Updating`; also `InService` when the backend can tell for
  free, as the local one can), and from SageMaker's EventBridge events on AWS.
- The first time an endpoint is `InService`, the backend's `in_service` runs (autoscaling);
  if that fails it is retried on the next refresh or event.
- Delete marks the endpoint `Deleting`, has the backend remove everything, then drops the
  record and tells `on_deleted` (the inference service fails the jobs that waited for it).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aws_extension.contract import (
    ENDPOINT_CREATING,
    ENDPOINT_DELETING,
    ENDPOINT_FAILED,
    ENDPOINT_IN_SERVICE,
    ENDPOINT_UPDATING,
    LOCAL_INSTANCE_TYPE,
    PERMISSION_ENDPOINT,
)
from aws_extension.middleware.compute import Compute, EndpointSpec, EndpointState
from aws_extension.middleware.compute.sagemaker_names import endpoint_status
from aws_extension.middleware.errors import Conflict, DomainError, Invalid, NoEndpoint, NotFound
from aws_extension.middleware.records import Doc, Item, Records
from aws_extension.middleware.records.base import encode_cursor
from aws_extension.middleware.services.access import Access, visible
from aws_extension.middleware.services.endpoint_store import (
    ENDPOINT,
    Endpoint,
    EndpointStore,
    endpoint_from,
    new_doc,
    spec_from,
)
from aws_extension.middleware.services.entities import Listing, Principal, timestamp

logger = logging.getLogger(__name__)

#: Records one list request examines at most (as for models).
_SCAN_LIMIT = 1000
_SCAN_BATCH = 200
#: Names that would shadow a route under /endpoints/.
RESERVED_NAMES = frozenset({"instance-types"})
NO_ENDPOINT = "No endpoint you may use is in service; deploy one in Inference Endpoint Management."


@dataclass(frozen=True)
class UsableEndpoint:
    """An endpoint a job may be sent to, with what the job backend needs to reach it."""

    name: str
    spec: EndpointSpec
    refs: dict[str, Any]
    status: str


def _always(doc: Doc) -> bool:
    return True


def _not_deleting(doc: Doc) -> bool:
    return doc["status"] != ENDPOINT_DELETING


def _unusable(name: str, doc: Doc) -> Conflict:
    reasons = {
        ENDPOINT_CREATING: "is still being created; try again once it is InService",
        ENDPOINT_UPDATING: "is updating; try again shortly",
        ENDPOINT_DELETING: "is being deleted",
        ENDPOINT_FAILED: f"failed ({doc['failure_reason'] or 'no reason given'}); delete it "
        "and deploy it again",
    }
    return Conflict(f"Endpoint {name!r} {reasons.get(doc['status'], 'cannot take jobs')}.")


def _desired_count(detail: dict[str, Any]) -> int | None:
    """The first variant's DesiredInstanceCount of a state-change event (a float there)."""
    variants = detail.get("ProductionVariants")
    if isinstance(variants, list) and variants and isinstance(variants[0], dict):
        count = variants[0].get("DesiredInstanceCount")
        if isinstance(count, int | float) and not isinstance(count, bool):
            return int(count)
    return None


class EndpointService:
    def __init__(
        self, records: Records, access: Access, compute: Compute, clock: Callable[[], float]
    ) -> None:
        self._records = records
        self._access = access
        self._backend = compute.endpoints
        self._clock = clock
        self._store = EndpointStore(records, clock)
        #: Called with the name of each deleted endpoint once its record is gone; the
        #: inference service registers itself here to fail the jobs that waited for it.
        self.on_deleted: list[Callable[[str], None]] = []

    def instance_types(self) -> list[str]:
        return list(self._backend.instance_types)

    # -- reading ---------------------------------------------------------------------------

    def list(
        self, caller: Principal, *, limit: int = 50, cursor: str | None = None
    ) -> Listing[Endpoint]:
        """The visible endpoints in name order. Visibility is applied while paging, over at
        most `_SCAN_LIMIT` records per call, so a page may be short and still have a cursor."""
        roles = self._access.reader_roles(caller, PERMISSION_ENDPOINT)
        batch = limit if roles is None else _SCAN_BATCH
        found: list[Item] = []
        scanned = 0
        while True:
            page = self._store.page(batch, cursor)
            for index, item in enumerate(page.items):
                scanned += 1
                if visible(item.doc, roles):
                    found.append(item)
                if len(found) == limit or scanned >= _SCAN_LIMIT:
                    more = index < len(page.items) - 1 or page.next_cursor is not None
                    after = encode_cursor(ENDPOINT, item.key) if more else None
                    return Listing(self._current(found), after)
            if page.next_cursor is None:
                return Listing(self._current(found), None)
            cursor = page.next_cursor

    def get(self, caller: Principal, name: str) -> Endpoint:
        item = self._refresh(self._visible_item(caller, name))
        if item is None:
            raise self._store.gone(name)
        return endpoint_from(item)

    # -- changes ---------------------------------------------------------------------------

    def create(
        self,
        caller: Principal,
        *,
        name: str | None,
        type: str,
        instance_type: str,
        initial_instance_count: int,
        autoscaling: tuple[int, int] | None,
        concurrency_per_instance: int,
        allowed_roles: Sequence[str],
        engine: str,
        webui_url: str | None = None,
        webui_models_dir: str | None = None,
    ) -> Endpoint:
        """Record the endpoint as `Creating` and have the backend start creating it."""
        self._check_instances(type, instance_type, initial_instance_count, autoscaling)
        self._check_webui(instance_type, engine, webui_url, webui_models_dir)
        roles = self._access.role_list(allowed_roles)
        if name is None:
            name = f"sd-{type}-{secrets.token_hex(3)}"
        elif name in RESERVED_NAMES:
            raise Invalid(f"{name!r} cannot name an endpoint; pick another name.")
        low, high = autoscaling if autoscaling is not None else (None, None)
        spec = EndpointSpec(
            name=name,
            type=type,
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            engine=engine,
            min_instances=low,
            max_instances=high,
            concurrency_per_instance=concurrency_per_instance,
            webui_url=webui_url,
            webui_models_dir=webui_models_dir,
        )
        item = self._store.create(
            name, new_doc(spec, roles, caller.username, timestamp(self._clock))
        )
        try:
            refs = self._backend.create(spec)
        except BaseException:
            self._store.remove(name)
            raise
        try:
            written = self._store.change(item, _always, refs=refs)
        except NotFound:
            # Deleted while the backend created it: what it made must not stay behind.
            self._backend.delete(spec, refs)
            raise
        assert written is not None
        return endpoint_from(written)

    def delete(self, caller: Principal, name: str) -> None:
        """Remove the endpoint everywhere; a backend failure leaves it `Deleting` with the
        reason, and deleting again retries."""
        item = self._visible_item(caller, name)
        marked = self._store.change(item, _always, status=ENDPOINT_DELETING, failure_reason=None)
        assert marked is not None
        refs = marked.doc["refs"]
        if refs is not None:
            try:
                self._backend.delete(spec_from(marked), refs)
            except Exception as error:
                reason = (
                    error.detail
                    if isinstance(error, DomainError)
                    else "Removing it failed; delete it again."
                )
                with contextlib.suppress(NotFound):
                    self._store.change(marked, _always, failure_reason=reason)
                raise
        self._forget(name)

    # -- for the inference service ---------------------------------------------------------

    def pick(
        self, caller: Principal, name: str | None, *, queues_while_creating: bool
    ) -> UsableEndpoint:
        """The endpoint a job of `caller` goes to.

        Named: it must be visible (else 404) and `InService`, or `Creating` when the backend
        queues jobs until it is ready (else 409). Not named: among the visible endpoints in
        name order, the first `InService` one, else the first `Creating` one (when queuing),
        else 409 `no_endpoint`.
        """
        usable = {ENDPOINT_IN_SERVICE}
        if queues_while_creating:
            usable.add(ENDPOINT_CREATING)
        if name is not None:
            item = self._refresh(self._visible_item(caller, name))
            if item is None:
                raise self._store.gone(name)
            if item.doc["status"] not in usable:
                raise _unusable(name, item.doc)
            return self._usable(item)
        roles = self._access.reader_roles(caller, PERMISSION_ENDPOINT)
        waiting: Item | None = None
        for stored in self._store.scan():
            if not visible(stored.doc, roles):
                continue
            item = self._refresh(stored)
            if item is None:
                continue
            status = item.doc["status"]
            if status == ENDPOINT_IN_SERVICE:
                return self._usable(item)
            if status in usable and waiting is None:
                waiting = item
        if waiting is not None:
            return self._usable(waiting)
        raise NoEndpoint(NO_ENDPOINT)

    # -- events and start-up ---------------------------------------------------------------

    def handle_state_change(self, detail: dict[str, Any]) -> None:
        """Apply the `detail` of an EventBridge "SageMaker Endpoint State Change" event.

        Events of endpoints that are not ours are ignored; so are events older than the last
        one applied (by `LastModifiedTime`), since EventBridge does not promise order.
        """
        backend_name = detail.get("EndpointName")
        raw_status = detail.get("EndpointStatus")
        if not isinstance(backend_name, str) or not isinstance(raw_status, str):
            logger.warning("An endpoint state change without EndpointName/EndpointStatus")
            return
        status = endpoint_status(raw_status)
        if status is None:
            logger.warning("Endpoint %s: unknown status %r ignored", backend_name, raw_status)
            return
        item = self._by_backend_name(backend_name)
        if item is None:
            logger.info("Endpoint %s is not one of ours; its event is ignored", backend_name)
            return
        doc = item.doc
        modified = detail.get("LastModifiedTime")
        if not isinstance(modified, int | float) or isinstance(modified, bool):
            modified = None
        seen = doc.get("event_time")
        if modified is not None and seen is not None and modified < seen:
            return
        reason = None
        if status == ENDPOINT_FAILED:
            reason = str(detail.get("FailureReason") or "SageMaker reported it Failed.")
        elif status == ENDPOINT_DELETING:
            # Our own deletions leave the record `Deleting`, which events do not change:
            # this one was deleted outside this deployment.
            status = ENDPOINT_FAILED
            reason = (
                "Its SageMaker endpoint was deleted outside this deployment; delete it here too."
            )
        elif status == ENDPOINT_CREATING and doc["status"] != ENDPOINT_CREATING:
            return
        desired = _desired_count(detail)
        # SageMaker says InService once the variant runs what it asked for.
        current = desired if status == ENDPOINT_IN_SERVICE else None
        state = EndpointState(status, current, desired, failure_reason=reason)
        self._apply(item, state, event_time=modified if modified is not None else seen)

    def resume(self) -> None:
        """At start-up of the local stack: start again the endpoints that were running,
        finish deletions a stop interrupted, and fail creations it interrupted."""
        for item in list(self._store.scan()):
            status, refs = item.doc["status"], item.doc["refs"]
            spec = spec_from(item)
            if status == ENDPOINT_DELETING:
                try:
                    if refs is not None:
                        self._backend.delete(spec, refs)
                except Exception:
                    logger.exception("Endpoint %r could not be removed; delete it again", item.key)
                    continue
                self._forget(item.key)
            elif status == ENDPOINT_FAILED:
                continue
            elif refs is None:
                self._fail(
                    item, "The server stopped while creating it; delete it and deploy again."
                )
            else:
                try:
                    self._backend.resume(spec, refs)
                except Exception as error:
                    logger.exception("Endpoint %r could not be started again", item.key)
                    detail = error.detail if isinstance(error, DomainError) else repr(error)
                    self._fail(item, f"It could not be started again: {detail}")
                    continue
                self._refresh(item)

    # -- helpers ---------------------------------------------------------------------------

    def _check_instances(
        self,
        endpoint_type: str,
        instance_type: str,
        initial: int,
        autoscaling: tuple[int, int] | None,
    ) -> None:
        offered = self._backend.instance_types
        if instance_type not in offered:
            raise Invalid(
                f"Instance type {instance_type!r} is not offered here; pick one of: "
                f"{', '.join(offered)}."
            )
        if autoscaling is None:
            return
        low, high = autoscaling
        if high < low:
            raise Invalid(f"autoscaling.max ({high}) is below autoscaling.min ({low}).")
        if not low <= initial <= high:
            raise Invalid(
                f"initial_instance_count ({initial}) must lie between autoscaling.min ({low}) "
                f"and autoscaling.max ({high})."
            )
        if endpoint_type == "realtime" and low < 1:
            raise Invalid(
                "Only async endpoints can scale to zero; give a realtime endpoint "
                "autoscaling.min 1 or more, or make it async."
            )

    @staticmethod
    def _check_webui(
        instance_type: str, engine: str, webui_url: str | None, models_dir: str | None
    ) -> None:
        this_machine = instance_type == LOCAL_INSTANCE_TYPE and engine == "webui"
        if (webui_url is not None or models_dir is not None) and not this_machine:
            raise Invalid(
                "webui_url and webui_models_dir are only for instance type 'local' with engine "
                "'webui' (an A1111 on this machine as the endpoint)."
            )
        if not this_machine:
            return
        if webui_url is None or models_dir is None:
            raise Invalid(
                "Engine 'webui' on instance type 'local' needs webui_url (an A1111 started "
                "with --api) and webui_models_dir (its models folder)."
            )
        parts = urlsplit(webui_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise Invalid("webui_url must be an http(s) URL such as http://127.0.0.1:7860.")

    def _visible_item(self, caller: Principal, name: str) -> Item:
        item = self._store.get(name)
        # An endpoint the caller may not see does not exist for it.
        roles = self._access.reader_roles(caller, PERMISSION_ENDPOINT)
        if item is None or not visible(item.doc, roles):
            raise self._store.gone(name)
        return item

    def _current(self, items: Iterable[Item]) -> list[Endpoint]:
        fresh = (self._refresh(item) for item in items)
        return [endpoint_from(item) for item in fresh if item is not None]

    def _refresh(self, item: Item) -> Item | None:
        """The endpoint with its status read from the backend when that may have moved;
        None when it was deleted meanwhile."""
        doc = item.doc
        status = doc["status"]
        moving = status in (ENDPOINT_CREATING, ENDPOINT_UPDATING) or (
            status == ENDPOINT_IN_SERVICE and self._backend.cheap_describe
        )
        if doc["refs"] is None or not moving:
            return item
        try:
            state = self._backend.describe(spec_from(item), doc["refs"])
        except Exception:
            # A read must not fail because the backend is slow to answer; next time.
            logger.exception("Could not read the state of endpoint %r", item.key)
            return item
        return self._apply(item, state)

    def _apply(self, item: Item, state: EndpointState, **extra: Any) -> Item | None:
        """Write the backend's `state` unless the endpoint is being deleted; run
        `in_service` the first time it is InService."""
        changes: dict[str, Any] = {
            "status": state.status,
            "failure_reason": state.failure_reason if state.status == ENDPOINT_FAILED else None,
            **extra,
        }
        if state.current_instance_count is not None:
            changes["current_instance_count"] = state.current_instance_count
        if state.desired_instance_count is not None:
            changes["desired_instance_count"] = state.desired_instance_count
        if state.status == ENDPOINT_IN_SERVICE and not item.doc["scaling_applied"]:
            changes["scaling_applied"] = self._set_up_scaling(item)
        if all(item.doc.get(key) == value for key, value in changes.items()):
            return item
        try:
            written = self._store.change(item, _not_deleting, **changes)
        except NotFound:
            return None
        return written if written is not None else self._store.get(item.key)

    def _set_up_scaling(self, item: Item) -> bool:
        try:
            self._backend.in_service(spec_from(item), item.doc["refs"])
        except Exception:
            logger.exception(
                "Setting up autoscaling of endpoint %r failed; retried later", item.key
            )
            return False
        return True

    def _fail(self, item: Item, reason: str) -> None:
        with contextlib.suppress(NotFound):
            self._store.change(item, _not_deleting, status=ENDPOINT_FAILED, failure_reason=reason)

    def _forget(self, name: str) -> None:
        """Drop the record and tell the hooks, once."""
        if not self._store.remove(name):
            return
        for hook in list(self.on_deleted):
            try:
                hook(name)
            except Exception:
                logger.exception("A hook failed after endpoint %r was deleted", name)

    def _by_backend_name(self, backend_name: str) -> Item | None:
        """The endpoint whose backend resources carry `backend_name`: a scan, since
        endpoints are few and events rare."""
        for item in self._store.scan():
            refs = item.doc["refs"]
            if refs is not None and refs.get("endpoint_name") == backend_name:
                return item
        return None

    def _usable(self, item: Item) -> UsableEndpoint:
        return UsableEndpoint(
            item.key, spec_from(item), dict(item.doc["refs"] or {}), item.doc["status"]
        )
