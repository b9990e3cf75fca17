"""The records behind models: their documents, safe state changes, and the claims that
keep names unique.

The records offer conditional writes per key but no unique indexes, so two small kinds
stand in for them beside `checkpoint` (key: the model's id):

- `checkpoint_name`, key `<type>/<casefolded name>`: the id holding that name;
- `checkpoint_sha256`, key `<type>/<sha256>`: the id of an `Active` model with that
  content. Advisory: it only lets clients skip re-uploading a file.

A claim whose holder is gone, `Failed` or renamed is stale and may be taken over, so a crash
between two writes never locks a name for good. Every change of a model is
version-conditional (`CheckpointStore.change`), so concurrent writers never lose each
other's updates and a state can be left only once.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_extension.contract import (
    CHECKPOINT_ACTIVE,
    CHECKPOINT_COMPLETING,
    CHECKPOINT_FAILED,
    CHECKPOINT_IMPORTING,
    CHECKPOINT_UPLOADING,
)
from aws_extension.middleware.blobs import Blobs
from aws_extension.middleware.checkpoint_policy import GIB, MIB
from aws_extension.middleware.errors import Conflict, DuplicateContent, NotFound
from aws_extension.middleware.records import AlreadyExists, Doc, Item, Records, VersionConflict
from aws_extension.middleware.services.entities import timestamp

CHECKPOINT = "checkpoint"
NAME_CLAIM = "checkpoint_name"
CONTENT = "checkpoint_sha256"

#: Optimistic writes retried this often before the caller is told to try again.
_WRITE_ATTEMPTS = 8


@dataclass(frozen=True)
class Progress:
    bytes_done: int
    bytes_total: int | None


@dataclass(frozen=True)
class Checkpoint:
    id: str
    name: str
    type: str
    #: Declared size while uploading, unknown (None) while importing, stored size once Active.
    size: int | None
    #: Set when Active (from the client at completion, or computed by an import).
    sha256: str | None
    status: str
    allowed_roles: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    #: Imports only: the URL without credentials, query or fragment.
    source: str | None
    progress: Progress | None
    error: str | None


def checkpoint_from(item: Item) -> Checkpoint:
    doc = item.doc
    progress = doc.get("progress")
    return Checkpoint(
        id=item.key,
        name=doc["name"],
        type=doc["type"],
        size=doc["size"],
        sha256=doc["sha256"],
        status=doc["status"],
        allowed_roles=list(doc["allowed_roles"]),
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        source=doc.get("source"),
        progress=Progress(progress["bytes_done"], progress["bytes_total"]) if progress else None,
        error=doc.get("error"),
    )


def new_id(clock: Callable[[], float]) -> str:
    """Milliseconds (hex) then randomness: ids sort by creation time, so listing the records
    in reverse key order lists the newest models first."""
    return f"{int(clock() * 1000):012x}{secrets.token_hex(6)}"


def human_size(size: int) -> str:
    for unit, scale in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= scale:
            return f"{size // scale} {unit}" if size % scale == 0 else f"{size / scale:.1f} {unit}"
    return f"{size} bytes"


def name_key(model_type: str, name: str) -> str:
    return f"{model_type}/{name.casefold()}"


def content_key(model_type: str, sha256: str) -> str:
    return f"{model_type}/{sha256}"


class CheckpointStore:
    """Model records and their claims; `blobs` only to drop the bytes of what it removes."""

    def __init__(self, records: Records, blobs: Blobs, clock: Callable[[], float]) -> None:
        self.records = records
        self._blobs = blobs
        self._clock = clock

    # -- reading and words -----------------------------------------------------------------

    def item(self, checkpoint_id: str) -> Item:
        item = self.records.get(CHECKPOINT, checkpoint_id)
        if item is None:
            raise self.gone(checkpoint_id)
        return item

    @staticmethod
    def gone(checkpoint_id: str) -> NotFound:
        return NotFound(f"No model with id {checkpoint_id!r}.")

    @staticmethod
    def busy(doc: Doc) -> Conflict:
        return Conflict(f"Model {doc['name']!r} is being changed by others; try again.")

    @staticmethod
    def not_now(doc: Doc, action: str, advice: str = "") -> Conflict:
        reasons = {
            CHECKPOINT_UPLOADING: "its upload is still in progress",
            CHECKPOINT_COMPLETING: "its upload is being completed right now",
            CHECKPOINT_IMPORTING: "the server is importing it",
            CHECKPOINT_ACTIVE: "it is already complete",
            CHECKPOINT_FAILED: f"it failed ({doc.get('error') or 'no reason kept'})",
        }
        tail = f"; {advice}" if advice else ""
        return Conflict(f"Cannot {action} model {doc['name']!r}: {reasons[doc['status']]}{tail}.")

    # -- writing ---------------------------------------------------------------------------

    def create(self, checkpoint_id: str, doc: Doc) -> Item:
        """Store a new model and claim its name; 409 if the name is taken.

        The record comes first, then the claim: a claim then always names an existing model,
        which is what lets a claim without one count as stale.
        """
        item = self.records.create(CHECKPOINT, checkpoint_id, doc)
        try:
            self.claim_name(doc["type"], doc["name"], checkpoint_id)
        except BaseException:
            with contextlib.suppress(NotFound):
                self.records.delete(CHECKPOINT, checkpoint_id)
            raise
        return item

    def moving(self, status: str, action: str) -> Callable[[Doc], Doc]:
        """A `change` check: refuse unless the model is (still) in `status`."""

        def check(doc: Doc) -> Doc:
            if doc["status"] != status:
                raise self.not_now(doc, action)
            return doc

        return check

    def change(self, item: Item, check: Callable[[Doc], Doc], **changes: Any) -> Item:
        """Write `changes` over the newest version of the model.

        When someone else wrote in between (a rename during an import's progress writes),
        the record is read again and `check` decides on the fresh document whether the
        change still applies. Raises NotFound once the model is deleted.
        """
        for _ in range(_WRITE_ATTEMPTS):
            doc = {**check(dict(item.doc)), **changes, "updated_at": timestamp(self._clock)}
            try:
                return self.records.update(CHECKPOINT, item.key, doc, expected_version=item.version)
            except VersionConflict:
                item = self.item(item.key)
            except NotFound:
                raise self.gone(item.key) from None
        raise self.busy(item.doc)

    def fail(self, item: Item, status: str, error: str) -> bool:
        """Mark the model `Failed` if it is still in `status` and drop its bytes; False when
        it was deleted or moved on meanwhile."""
        try:
            self.change(item, self.moving(status, "fail"), status=CHECKPOINT_FAILED, error=error)
        except (NotFound, Conflict):
            return False
        if item.doc.get("upload_id"):
            self._blobs.abort_multipart(item.doc["object_key"], item.doc["upload_id"])
        if status != CHECKPOINT_UPLOADING:
            self._blobs.delete(item.doc["object_key"])
        return True

    def remove(self, item: Item, allowed: Callable[[Doc], None] = lambda doc: None) -> Item:
        """Delete the model (re-reading it while others write), then free its claims and
        drop its bytes; `allowed` raises to refuse the document as it is now."""
        for _ in range(_WRITE_ATTEMPTS):
            allowed(item.doc)
            try:
                self.records.delete(CHECKPOINT, item.key, expected_version=item.version)
            except VersionConflict:
                item = self.item(item.key)
                continue
            except NotFound:
                raise self.gone(item.key) from None
            self._clean_up(item)
            return item
        raise self.busy(item.doc)

    def _clean_up(self, item: Item) -> None:
        """After the record is gone: free its name and content claims, drop its bytes."""
        doc = item.doc
        self.release_name(doc["type"], doc["name"], item.key)
        if doc["sha256"]:
            self._release(CONTENT, content_key(doc["type"], doc["sha256"]), item.key)
        if doc.get("upload_id"):
            self._blobs.abort_multipart(doc["object_key"], doc["upload_id"])
        self._blobs.delete(doc["object_key"])

    # -- names -----------------------------------------------------------------------------

    def ensure_name_free(self, model_type: str, name: str) -> None:
        """Fail early, before any storage is touched; `claim_name` decides for real."""
        key = name_key(model_type, name)
        claim = self.records.get(NAME_CLAIM, key)
        if claim is not None:
            holder = self._holder(claim, key)
            if holder is not None:
                raise self._taken(holder)

    def claim_name(self, model_type: str, name: str, checkpoint_id: str) -> None:
        key = name_key(model_type, name)
        for _ in range(_WRITE_ATTEMPTS):
            try:
                self.records.create(NAME_CLAIM, key, {"id": checkpoint_id})
                return
            except AlreadyExists:
                pass
            claim = self.records.get(NAME_CLAIM, key)
            if claim is None:
                continue
            if claim.doc["id"] == checkpoint_id:
                return
            holder = self._holder(claim, key)
            if holder is not None:
                raise self._taken(holder)
            try:
                self.records.update(
                    NAME_CLAIM, key, {"id": checkpoint_id}, expected_version=claim.version
                )
            except (VersionConflict, NotFound):
                continue
            self._replace_failed(claim.doc["id"], key)
            return
        raise Conflict(f"The name {name!r} is being taken right now; try again.")

    def release_name(self, model_type: str, name: str, checkpoint_id: str) -> None:
        self._release(NAME_CLAIM, name_key(model_type, name), checkpoint_id)

    def _holder(self, claim: Item, key: str) -> Item | None:
        """The model a name claim really belongs to: it exists, is not Failed, and still has
        that name. None means the claim is stale."""
        holder = self.records.get(CHECKPOINT, claim.doc["id"])
        if (
            holder is None
            or holder.doc["status"] == CHECKPOINT_FAILED
            or name_key(holder.doc["type"], holder.doc["name"]) != key
        ):
            return None
        return holder

    @staticmethod
    def _taken(holder: Item) -> Conflict:
        doc = holder.doc
        return Conflict(
            f"A {doc['type']} model named {doc['name']!r} already exists; pick another name or "
            "delete that model first."
        )

    def _replace_failed(self, checkpoint_id: str, key: str) -> None:
        """Drop a Failed model whose name a new model just took over."""
        item = self.records.get(CHECKPOINT, checkpoint_id)
        if (
            item is None
            or item.doc["status"] != CHECKPOINT_FAILED
            or name_key(item.doc["type"], item.doc["name"]) != key
        ):
            return
        try:
            self.records.delete(CHECKPOINT, checkpoint_id, expected_version=item.version)
        except (NotFound, VersionConflict):
            return
        self._clean_up(item)

    def _release(self, kind: str, key: str, checkpoint_id: str) -> None:
        """Delete a claim if it is still this model's."""
        claim = self.records.get(kind, key)
        if claim is None or claim.doc["id"] != checkpoint_id:
            return
        # Failing means it was taken over meanwhile.
        with contextlib.suppress(NotFound, VersionConflict):
            self.records.delete(kind, key, expected_version=claim.version)

    # -- content ---------------------------------------------------------------------------

    def duplicate_of(self, model_type: str, sha256: str) -> Item | None:
        entry = self.records.get(CONTENT, content_key(model_type, sha256))
        if entry is None:
            return None
        holder = self.records.get(CHECKPOINT, entry.doc["id"])
        if (
            holder is None
            or holder.doc["status"] != CHECKPOINT_ACTIVE
            or holder.doc["sha256"] != sha256
            or holder.doc["type"] != model_type
        ):
            return None
        return holder

    def refuse_duplicate(self, model_type: str, sha256: str) -> None:
        existing = self.duplicate_of(model_type, sha256)
        if existing is not None:
            raise DuplicateContent(
                f"The {model_type} model {existing.doc['name']!r} already has this content "
                "(same SHA-256); use it instead of uploading the file again.",
                existing_id=existing.key,
            )

    def index_content(self, model_type: str, sha256: str, checkpoint_id: str) -> None:
        """Remember an Active model with this content, unless another one is remembered."""
        key = content_key(model_type, sha256)
        try:
            self.records.create(CONTENT, key, {"id": checkpoint_id})
            return
        except AlreadyExists:
            pass
        entry = self.records.get(CONTENT, key)
        if entry is None or self.duplicate_of(model_type, sha256) is not None:
            return
        # Advisory: if another writer got there first, its choice is as good.
        with contextlib.suppress(NotFound, VersionConflict):
            self.records.update(CONTENT, key, {"id": checkpoint_id}, expected_version=entry.version)
