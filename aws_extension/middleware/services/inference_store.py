"""The records behind inference jobs: where each job lives, which are still open, and the
idempotency keys.

Four kinds, so that no request scans everybody's jobs:

- `inference_of/<username>`, key: the job id: the job's document. One kind (one DynamoDB
  partition) per user, so a user's history is one query, newest first (ids start with the
  creation time).
- `inference`, key: the job id: `{"owner"}`, written once. `GET /inferences/{id}` carries
  only the id, so this says in which user's kind to look.
- `inference_open`, key: the job id: `{"owner", "endpoint", "deadline_at"}` while the job is
  queued or running. The deadline sweep, the start-up clean-up of the local stack and the
  failing of a deleted endpoint's jobs read only this, never the finished jobs.
- `inference_idempotency`, key: `<username>/<sha256 of the Idempotency-Key>`:
  `{"id", "body_sha256", "claimed_at"}`; it lives as long as the job.

A job is created open entry first, then the pointer, then the document, and removed in the
reverse order, so a crash in between leaves at worst an open entry without a job (the sweep
drops it) or a pointer without a document (read as "no such job"), never a job that nothing
would ever finish. Every change of a document is version-conditional (`change`), so a
status can be left only once: of a completion and a cancellation racing, exactly one wins.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aws_extension.contract import INFERENCE_FINAL_STATUSES
from aws_extension.middleware.errors import Conflict, NotFound
from aws_extension.middleware.records import AlreadyExists, Doc, Item, Records, VersionConflict
from aws_extension.middleware.services.entities import timestamp

OWNER = "inference"
OPEN = "inference_open"
IDEMPOTENCY = "inference_idempotency"

#: Optimistic writes retried this often before the caller is told to try again.
_WRITE_ATTEMPTS = 8
#: Seconds after which an idempotency claim without a job is a crash's leftover, not a
#: job being created right now.
_CLAIM_SETTLE_S = 60.0


def jobs_of(username: str) -> str:
    """The kind holding `username`'s jobs."""
    return f"inference_of/{username}"


def idempotency_key(username: str, key: str) -> str:
    """Hashed, so any printable key of up to 200 characters makes a short record key."""
    return f"{username}/{hashlib.sha256(key.encode()).hexdigest()}"


@dataclass(frozen=True)
class Job:
    """A job's record: its owner (the kind it lives in) and its versioned document."""

    owner: str
    item: Item

    @property
    def id(self) -> str:
        return self.item.key

    @property
    def doc(self) -> Doc:
        return self.item.doc

    @property
    def final(self) -> bool:
        return self.doc["status"] in INFERENCE_FINAL_STATUSES


class InferenceStore:
    def __init__(self, records: Records, clock: Callable[[], float]) -> None:
        self.records = records
        self._clock = clock

    # -- reading ---------------------------------------------------------------------------

    def find(self, job_id: str) -> Job | None:
        pointer = self.records.get(OWNER, job_id)
        if pointer is None:
            return None
        owner = pointer.doc["owner"]
        item = self.records.get(jobs_of(owner), job_id)
        return None if item is None else Job(owner, item)

    def reread(self, job: Job) -> Job | None:
        item = self.records.get(jobs_of(job.owner), job.id)
        return None if item is None else Job(job.owner, item)

    def open_entries(self) -> Iterator[Item]:
        """The open entries (queued or running jobs), for the sweeps."""
        return self.records.scan(OPEN)

    # -- writing ---------------------------------------------------------------------------

    def create(self, owner: str, job_id: str, doc: Doc) -> Job:
        """Store a new job: open entry, pointer, document (see the module's docstring)."""
        entry = {"owner": owner, "endpoint": doc["endpoint"], "deadline_at": doc["deadline_at"]}
        self.records.create(OPEN, job_id, entry)
        try:
            self.records.create(OWNER, job_id, {"owner": owner})
            try:
                item = self.records.create(jobs_of(owner), job_id, doc)
            except BaseException:
                with contextlib.suppress(NotFound):
                    self.records.delete(OWNER, job_id)
                raise
        except BaseException:
            with contextlib.suppress(NotFound):
                self.records.delete(OPEN, job_id)
            raise
        return Job(owner, item)

    def change(self, job: Job, check: Callable[[Doc], bool], **changes: Any) -> Job | None:
        """Write `changes` over the newest version of the job if `check` still accepts it.

        Returns the new record, or None when the job is gone or `check` refused it (read
        again after someone else wrote in between). A change to a final status also closes
        the job's open entry.
        """
        for _ in range(_WRITE_ATTEMPTS):
            if not check(job.doc):
                return None
            doc = {**job.doc, **changes, "updated_at": timestamp(self._clock)}
            try:
                item = self.records.update(
                    jobs_of(job.owner), job.id, doc, expected_version=job.item.version
                )
            except VersionConflict:
                fresh = self.reread(job)
                if fresh is None:
                    return None
                job = fresh
                continue
            except NotFound:
                return None
            changed = Job(job.owner, item)
            if changed.final:
                self.close(job.id)
            return changed
        raise Conflict(f"Job {job.id} is being changed by others; try again.")

    def close(self, job_id: str) -> None:
        """Drop the job's open entry: nothing needs to finish it any more."""
        with contextlib.suppress(NotFound):
            self.records.delete(OPEN, job_id)

    def remove(self, job: Job) -> Job:
        """Delete the job's document, then its pointer, open entry and idempotency key.

        Raises NotFound when someone else deleted it first. Returns the document as it was
        deleted (its image keys, for the caller to drop).
        """
        for _ in range(_WRITE_ATTEMPTS):
            try:
                self.records.delete(jobs_of(job.owner), job.id, expected_version=job.item.version)
            except VersionConflict:
                fresh = self.reread(job)
                if fresh is None:
                    raise NotFound(f"No job with id {job.id!r}.") from None
                job = fresh
                continue
            break
        else:
            raise Conflict(f"Job {job.id} is being changed by others; try again.")
        for kind in (OWNER, OPEN):
            with contextlib.suppress(NotFound):
                self.records.delete(kind, job.id)
        key = job.doc.get("idempotency_key")
        if key:
            self.release_idempotency(key, job.id)
        return job

    # -- idempotency -----------------------------------------------------------------------

    def claim_idempotency(self, key: str, job_id: str, body_sha256: str) -> Doc | None:
        """Claim `key` for a new job: None when claimed, else the holder's claim
        (`{"id", "body_sha256", "claimed_at"}`) for the caller to compare bodies.

        A claim whose job does not exist is either being created right now (a concurrent
        request with the same key: 409, try again) or was left by a crash between the
        claim and the job (older than a minute): that one is taken over.
        """
        for _ in range(_WRITE_ATTEMPTS):
            now = self._clock()
            claim_doc = {"id": job_id, "body_sha256": body_sha256, "claimed_at": now}
            try:
                self.records.create(IDEMPOTENCY, key, claim_doc)
                return None
            except AlreadyExists:
                pass
            claim = self.records.get(IDEMPOTENCY, key)
            if claim is None:
                continue
            if self.find(claim.doc["id"]) is not None:
                return claim.doc
            if now - claim.doc["claimed_at"] < _CLAIM_SETTLE_S:
                break
            with contextlib.suppress(NotFound, VersionConflict):
                self.records.delete(IDEMPOTENCY, key, expected_version=claim.version)
        raise Conflict("A job with this Idempotency-Key is being created right now; try again.")

    def idempotent_job(self, key: str) -> Doc | None:
        """The claim of `key` if its job exists."""
        claim = self.records.get(IDEMPOTENCY, key)
        if claim is None or self.find(claim.doc["id"]) is None:
            return None
        return claim.doc

    def release_idempotency(self, key: str, job_id: str) -> None:
        claim = self.records.get(IDEMPOTENCY, key)
        if claim is None or claim.doc["id"] != job_id:
            return
        with contextlib.suppress(NotFound, VersionConflict):
            self.records.delete(IDEMPOTENCY, key, expected_version=claim.version)
