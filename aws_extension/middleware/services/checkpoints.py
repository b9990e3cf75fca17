"""Models (checkpoints): uploads straight into the blob store, imports by URL, management.

Rules (docs/architecture.md, "Models (checkpoints) and blobs"):

- A model is `Active` only once all its bytes are stored and their size matched the
  declared one; before that it is `Uploading`, `Completing` or `Importing`, and a model that
  cannot get there is `Failed` with the reason in `error`.
- (type, name) is unique, case-insensitively: a name becomes a file name, and not every file
  system tells `A.safetensors` from `a.safetensors`. A `Failed` model does not keep its
  name: a new model under that name replaces it, so retrying after a failure just works.
- Objects live under `checkpoints/<id>/<file name at creation>`, so a rename only touches
  the record.
- Every state change is version-conditional: of two concurrent completions exactly one
  moves the model from `Uploading` to `Completing`, the other gets 409.
- Everyone signed in sees the models whose `allowed_roles` is empty or shares a role with
  them; `checkpoint:all` holders see and manage all (the routers require it for changes).

The records and claims are `checkpoint_store`'s business, the background downloads
`checkpoint_imports`'.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit, urlunsplit

from aws_extension.contract import (
    CHECKPOINT_ACTIVE,
    CHECKPOINT_COMPLETING,
    CHECKPOINT_FAILED,
    CHECKPOINT_IMPORTING,
    CHECKPOINT_UPLOADING,
    MAX_PART_URLS,
    PERMISSION_CHECKPOINT,
    model_name_problem,
)
from aws_extension.middleware.blobs import Blobs, UploadNotFound
from aws_extension.middleware.blobs.base import MAX_PART_NUMBER
from aws_extension.middleware.checkpoint_policy import MIB, CheckpointPolicy
from aws_extension.middleware.errors import Conflict, Invalid, NotFound, TooLarge
from aws_extension.middleware.records import Doc, Item, Records
from aws_extension.middleware.records.base import encode_cursor
from aws_extension.middleware.security.outbound import Fetcher
from aws_extension.middleware.services.access import Access, visible
from aws_extension.middleware.services.checkpoint_imports import Importer
from aws_extension.middleware.services.checkpoint_store import (
    CHECKPOINT,
    Checkpoint,
    CheckpointStore,
    checkpoint_from,
    human_size,
    name_key,
    new_id,
)
from aws_extension.middleware.services.entities import Listing, Principal, timestamp

#: Records one list request examines at most: a filter that matches little still answers
#: quickly, with a short page and a cursor to go on.
_SCAN_LIMIT = 1000
_SCAN_BATCH = 200


@dataclass(frozen=True)
class PartUrl:
    part_number: int
    url: str


@dataclass(frozen=True)
class PartUrls:
    parts: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True)
class Upload:
    upload_id: str
    part_size: int
    part_count: int
    parts: list[PartUrl]
    expires_at: datetime


@dataclass(frozen=True)
class StartedUpload:
    checkpoint: Checkpoint
    upload: Upload


def name_from_url(url: str) -> str:
    """The last segment of the URL's path, decoded: what a browser would save it as."""
    return PurePosixPath(unquote(urlsplit(url).path)).name


def public_source(url: str) -> str:
    """The URL as shown to everyone who may see the model: download links often carry
    tokens (in the query or as user:password), so only scheme, host, port and path stay."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme.lower(), netloc, parts.path, "", ""))


def _epoch(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def _numbers(values: Iterable[int]) -> str:
    """1, 2, 3, 5, 7, 8 -> "1-3, 5, 7-8": short words for long part lists."""
    spans: list[list[int]] = []
    for value in sorted(set(values)):
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def _parts_problem(numbers: Sequence[int], part_count: int) -> str | None:
    """What is wrong with a completion's part list, or None when it names 1..part_count once
    each. Every part must be there: a model is never shorter than declared."""
    counts = Counter(numbers)
    problems = []
    missing = [n for n in range(1, part_count + 1) if n not in counts]
    if missing:
        problems.append(f"part(s) {_numbers(missing)} are missing from the list")
    outside = [n for n in counts if not 1 <= n <= part_count]
    if outside:
        problems.append(f"it has parts 1 to {part_count}, not {_numbers(outside)}")
    repeated = [n for n, count in counts.items() if count > 1]
    if repeated:
        problems.append(f"part(s) {_numbers(repeated)} are listed more than once")
    return "; ".join(problems) or None


class CheckpointService:
    def __init__(
        self,
        records: Records,
        access: Access,
        blobs: Blobs,
        policy: CheckpointPolicy,
        fetcher: Fetcher,
        clock: Callable[[], float],
        *,
        imports: Importer | None = None,
    ) -> None:
        """`imports` runs the downloads; by default one with its own thread pool."""
        self._records = records
        self._access = access
        self._blobs = blobs
        self._policy = policy
        self._clock = clock
        self._store = CheckpointStore(records, blobs, clock)
        self.imports = imports or Importer(self._store, blobs, policy, fetcher)

    # -- reading ---------------------------------------------------------------------------

    def list(
        self,
        caller: Principal,
        *,
        model_type: str | None = None,
        status: str | None = None,
        name: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Listing[Checkpoint]:
        """Newest first, filtered, only what the caller may see.

        Filters are applied while paging the records, at most `_SCAN_LIMIT` records per
        call, so a page may hold fewer than `limit` items and still have a next cursor.
        """
        roles = self._access.reader_roles(caller, PERMISSION_CHECKPOINT)
        needle = name.casefold() if name else None

        def wanted(doc: Doc) -> bool:
            return (
                (model_type is None or doc["type"] == model_type)
                and (status is None or doc["status"] == status)
                and (needle is None or needle in doc["name"].casefold())
                and visible(doc, roles)
            )

        unfiltered = model_type is None and status is None and needle is None and roles is None
        batch = limit if unfiltered else _SCAN_BATCH
        found: list[Item] = []
        scanned = 0
        while True:
            page = self._records.list(CHECKPOINT, limit=batch, cursor=cursor, descending=True)
            for index, item in enumerate(page.items):
                scanned += 1
                if wanted(item.doc):
                    found.append(item)
                if len(found) == limit or scanned >= _SCAN_LIMIT:
                    more = index < len(page.items) - 1 or page.next_cursor is not None
                    after = encode_cursor(CHECKPOINT, item.key, descending=True) if more else None
                    return Listing([checkpoint_from(i) for i in found], after)
            if page.next_cursor is None:
                return Listing([checkpoint_from(i) for i in found], None)
            cursor = page.next_cursor

    def get(self, caller: Principal, checkpoint_id: str) -> Checkpoint:
        item = self._records.get(CHECKPOINT, checkpoint_id)
        # A model the caller may not see does not exist for it.
        roles = self._access.reader_roles(caller, PERMISSION_CHECKPOINT)
        if item is None or not visible(item.doc, roles):
            raise self._store.gone(checkpoint_id)
        return checkpoint_from(item)

    # -- uploads ---------------------------------------------------------------------------

    def start_upload(
        self,
        caller: Principal,
        *,
        name: str,
        model_type: str,
        size: int,
        sha256: str | None = None,
        allowed_roles: Sequence[str] = (),
    ) -> StartedUpload:
        """Record the model as `Uploading`, start a multipart upload and sign the first
        `MAX_PART_URLS` part URLs (the rest come from `part_urls`, batch by batch)."""
        if size > self._policy.max_size:
            raise TooLarge(
                f"The model is {human_size(size)}; this deployment takes models up to "
                f"{human_size(self._policy.max_size)}."
            )
        roles = self._access.role_list(allowed_roles)
        if sha256 is not None:
            self._store.refuse_duplicate(model_type, sha256)
        self._store.ensure_name_free(model_type, name)
        part_size, part_count = self._plan(size)
        checkpoint_id = new_id(self._clock)
        key = f"checkpoints/{checkpoint_id}/{name}"
        upload_id = self._blobs.create_multipart(key, part_size=part_size)
        doc = self._new_doc(caller, name, model_type, roles, key, sha256)
        doc.update(
            size=size,
            status=CHECKPOINT_UPLOADING,
            upload_id=upload_id,
            part_size=part_size,
            part_count=part_count,
        )
        try:
            item = self._store.create(checkpoint_id, doc)
        except BaseException:
            self._blobs.abort_multipart(key, upload_id)
            raise
        urls = self._sign(key, upload_id, range(1, min(part_count, MAX_PART_URLS) + 1))
        upload = Upload(upload_id, part_size, part_count, urls.parts, urls.expires_at)
        return StartedUpload(checkpoint_from(item), upload)

    def part_urls(
        self, caller: Principal, checkpoint_id: str, part_numbers: Sequence[int]
    ) -> PartUrls:
        """Fresh URLs for parts of an upload in progress: to resume, or after expiry."""
        doc = self._store.item(checkpoint_id).doc
        if doc["status"] != CHECKPOINT_UPLOADING:
            raise self._store.not_now(doc, "get part URLs for")
        count = doc["part_count"]
        outside = [n for n in part_numbers if not 1 <= n <= count]
        if outside:
            raise Invalid(f"Model {doc['name']!r} has parts 1 to {count}, not {_numbers(outside)}.")
        return self._sign(doc["object_key"], doc["upload_id"], sorted(set(part_numbers)))

    def complete(
        self,
        caller: Principal,
        checkpoint_id: str,
        parts: Sequence[tuple[int, str]],
        sha256: str | None = None,
    ) -> Checkpoint:
        """Join the parts, check the stored size, and only then mark the model `Active`.

        A part list the stored parts do not support (missing, wrong ETag) is 400 and leaves
        the upload open to fix; a stored size other than the declared one fails the model.
        """
        store = self._store
        item = store.item(checkpoint_id)
        doc = item.doc
        label = f"Model {doc['name']!r}"
        if doc["status"] != CHECKPOINT_UPLOADING:
            raise store.not_now(doc, "complete")
        ordered = sorted(parts)
        problem = _parts_problem([number for number, _ in ordered], doc["part_count"])
        if problem:
            raise Invalid(f"Cannot complete model {doc['name']!r}: {problem}.")
        declared = doc["declared_sha256"]
        if sha256 is not None and declared is not None and sha256 != declared:
            error = (
                f"The file changed during the upload: its SHA-256 was {declared} at the start "
                f"and {sha256} at the end. Upload it again."
            )
            store.fail(item, CHECKPOINT_UPLOADING, error)
            raise Invalid(f"{label} failed: {error}")
        # The claim: of concurrent completions only one gets past this write.
        item = store.change(
            item, store.moving(CHECKPOINT_UPLOADING, "complete"), status=CHECKPOINT_COMPLETING
        )
        key, upload_id = doc["object_key"], doc["upload_id"]
        try:
            self._blobs.complete_multipart(key, upload_id, ordered)
        except UploadNotFound:
            if self._blobs.head(key) is None:
                error = "Its upload no longer exists (aborted or abandoned). Upload it again."
                store.fail(item, CHECKPOINT_COMPLETING, error)
                raise Conflict(f"{label} failed: {error}") from None
            # An earlier completion went through but its answer was lost; the stored object
            # is checked below like any other.
        except BaseException:
            self._reopen(item)
            raise
        stored = self._blobs.head(key)
        size = stored.size if stored is not None else 0
        if size != doc["size"]:
            self._blobs.delete(key)
            error = (
                f"{size} bytes were stored but {doc['size']} were declared, so the file was "
                "not kept. Upload it again."
            )
            store.fail(item, CHECKPOINT_COMPLETING, error)
            raise Invalid(f"{label} failed: {error}")
        final = sha256 or declared
        try:
            item = store.change(
                item,
                store.moving(CHECKPOINT_COMPLETING, "complete"),
                status=CHECKPOINT_ACTIVE,
                sha256=final,
                upload_id=None,
            )
        except (NotFound, Conflict):
            # Deleted or failed by the sweep meanwhile: its bytes must not stay behind.
            self._blobs.delete(key)
            raise
        if final is not None:
            store.index_content(doc["type"], final, item.key)
        return checkpoint_from(item)

    def abort(self, caller: Principal, checkpoint_id: str) -> None:
        """Give up an upload (or forget a failed model): its parts and record go, which
        frees the name."""

        def abortable(doc: Doc) -> None:
            if doc["status"] not in (CHECKPOINT_UPLOADING, CHECKPOINT_FAILED):
                raise self._store.not_now(doc, "abort", "delete it instead")

        self._store.remove(self._store.item(checkpoint_id), abortable)

    # -- management ------------------------------------------------------------------------

    def update(
        self,
        caller: Principal,
        checkpoint_id: str,
        *,
        name: str | None = None,
        allowed_roles: Sequence[str] | None = None,
    ) -> Checkpoint:
        """Rename and/or change who may use the model; instant, since objects are keyed by
        id. Allowed in every status."""
        store = self._store
        item = store.item(checkpoint_id)
        roles = self._access.role_list(allowed_roles) if allowed_roles is not None else None
        model_type, old_name = item.doc["type"], item.doc["name"]
        renamed = name is not None and name_key(model_type, name) != name_key(model_type, old_name)
        if renamed:
            assert name is not None
            store.claim_name(model_type, name, item.key)
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if roles is not None:
            changes["allowed_roles"] = roles
        try:
            item = store.change(item, lambda doc: doc, **changes)
        except BaseException:
            if renamed:
                assert name is not None
                store.release_name(model_type, name, item.key)
            raise
        if renamed:
            store.release_name(model_type, old_name, item.key)
        return checkpoint_from(item)

    def delete(self, caller: Principal, checkpoint_id: str) -> None:
        """Remove the model in any status: its record, its object, an upload in progress;
        a running import stops."""
        self._store.remove(self._store.item(checkpoint_id))
        self.imports.cancel(checkpoint_id)

    # -- imports ---------------------------------------------------------------------------

    def import_url(
        self,
        caller: Principal,
        *,
        url: str,
        model_type: str,
        name: str | None = None,
        sha256: str | None = None,
        allowed_roles: Sequence[str] = (),
    ) -> Checkpoint:
        """Record the model as `Importing` and download it in the background.

        The URL is checked here too (scheme, addresses), so an obviously refused one is a
        400 at once; the download checks every hop again.
        """
        self.imports.check(url)
        if name is None:
            name = name_from_url(url)
            problem = model_name_problem(name)
            if problem is not None:
                raise Invalid(
                    f"The URL does not end in a usable file name ({problem}); give the model "
                    "a name."
                )
        roles = self._access.role_list(allowed_roles)
        if sha256 is not None:
            self._store.refuse_duplicate(model_type, sha256)
        self._store.ensure_name_free(model_type, name)
        checkpoint_id = new_id(self._clock)
        key = f"checkpoints/{checkpoint_id}/{name}"
        doc = self._new_doc(caller, name, model_type, roles, key, sha256)
        doc.update(
            status=CHECKPOINT_IMPORTING,
            source=public_source(url),
            progress={"bytes_done": 0, "bytes_total": None},
        )
        item = self._store.create(checkpoint_id, doc)
        return checkpoint_from(self.imports.start(item, url))

    def add_file(
        self,
        caller: Principal,
        path: Path,
        *,
        model_type: str,
        name: str,
        allowed_roles: Sequence[str] = (),
    ) -> Checkpoint:
        """Store a file of the server's own machine as an `Active` model.

        For what the deployment itself provides (the local stack's demo model), never for
        a path a request names. The bytes are hashed on the way; the record is created
        `Importing` first, so a crash in between leaves a model the sweep fails, not a
        half-stored one marked usable.
        """
        problem = model_name_problem(name)
        if problem is not None:
            raise Invalid(f"Cannot name a model {name!r}: {problem}.")
        roles = self._access.role_list(allowed_roles)
        self._store.ensure_name_free(model_type, name)
        checkpoint_id = new_id(self._clock)
        key = f"checkpoints/{checkpoint_id}/{name}"
        doc = self._new_doc(caller, name, model_type, roles, key, None)
        doc.update(status=CHECKPOINT_IMPORTING, source=f"file:{path.name}")
        item = self._store.create(checkpoint_id, doc)
        digest = hashlib.sha256()
        with path.open("rb") as file:
            size = self._blobs.put_stream(
                key, _Hashing(file, digest), size_limit=self._policy.max_size
            )
        sha256 = digest.hexdigest()
        store = self._store
        done = store.change(
            item,
            store.moving(CHECKPOINT_IMPORTING, "finish"),
            status=CHECKPOINT_ACTIVE,
            size=size,
            sha256=sha256,
        )
        store.index_content(model_type, sha256, checkpoint_id)
        return checkpoint_from(done)

    # -- housekeeping ----------------------------------------------------------------------

    def sweep(self) -> int:
        """Fail what no event will ever finish; return how many models were failed.

        Uploads not completed within `upload_deadline` (their parts are dropped, and so are
        multipart uploads no record knows of), and completions or imports whose record has
        not moved for `stall_deadline` (the process running them died). The local stack
        runs this periodically; on AWS a scheduled invocation will.
        """
        self._blobs.sweep_abandoned(self._policy.upload_deadline)
        now = self._clock()
        failed = 0
        for item in self._records.scan(CHECKPOINT):
            doc = item.doc
            status = doc["status"]
            if status == CHECKPOINT_UPLOADING:
                if now - _epoch(doc["created_at"]) <= self._policy.upload_deadline:
                    continue
                hours = self._policy.upload_deadline / 3600
                error = f"The upload was not completed within {hours:g} h. Upload it again."
            elif status in (CHECKPOINT_COMPLETING, CHECKPOINT_IMPORTING):
                stale = now - _epoch(doc["updated_at"]) > self._policy.stall_deadline
                if not stale or self.imports.running(item.key):
                    continue
                what = "completing the upload" if status == CHECKPOINT_COMPLETING else "importing"
                error = f"The server stopped while {what}. Try again."
            else:
                continue
            if self._store.fail(item, status, error):
                failed += 1
        return failed

    def close(self) -> None:
        """Stop running imports; they end `Failed`."""
        self.imports.close()

    # -- helpers ---------------------------------------------------------------------------

    def _new_doc(
        self,
        caller: Principal,
        name: str,
        model_type: str,
        roles: list[str],
        key: str,
        sha256: str | None,
    ) -> Doc:
        """The fields every new model starts with; the caller sets status and the rest."""
        now = timestamp(self._clock)
        return {
            "name": name,
            "type": model_type,
            "size": None,
            "sha256": None,
            "declared_sha256": sha256,
            "status": None,
            "allowed_roles": roles,
            "created_by": caller.username,
            "created_at": now,
            "updated_at": now,
            "object_key": key,
            "upload_id": None,
            "part_size": None,
            "part_count": None,
            "source": None,
            "progress": None,
            "error": None,
        }

    def _reopen(self, item: Item) -> None:
        """Back from `Completing` to `Uploading` after a completion that did not happen."""
        store = self._store
        try:
            store.change(
                item, store.moving(CHECKPOINT_COMPLETING, "reopen"), status=CHECKPOINT_UPLOADING
            )
        except NotFound:
            # Deleted while completing: the deletion could not drop the claimed upload.
            self._blobs.abort_multipart(item.doc["object_key"], item.doc["upload_id"])
        except Conflict:
            pass  # failed by the sweep meanwhile, which dropped the upload

    def _plan(self, size: int) -> tuple[int, int]:
        """Part size and count: the configured size (at least the backend's minimum), raised
        to whole MiB when the file would otherwise need more than S3's 10,000 parts."""
        part_size = max(self._policy.part_size, self._blobs.min_part_size)
        needed = -(-size // MAX_PART_NUMBER)
        if needed > part_size:
            part_size = -(-needed // MIB) * MIB
        return part_size, max(1, -(-size // part_size))

    def _sign(self, key: str, upload_id: str, numbers: Iterable[int]) -> PartUrls:
        ttl = self._policy.part_url_ttl
        parts = [
            PartUrl(number, self._blobs.part_url(key, upload_id, number, expires_in=ttl))
            for number in numbers
        ]
        return PartUrls(parts, datetime.fromtimestamp(self._clock() + ttl, tz=timezone.utc))


class _Hashing:
    """A readable that feeds what passes through it to `digest`."""

    def __init__(self, file: BinaryIO, digest: Any) -> None:
        self._file = file
        self._digest = digest

    def read(self, size: int = -1, /) -> bytes:
        chunk = self._file.read(size)
        self._digest.update(chunk)
        return chunk

    def close(self) -> None:
        self._file.close()
