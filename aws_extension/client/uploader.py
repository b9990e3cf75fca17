"""Upload model files to the API: fast (parallel parts), resumable, bounded in memory.

`Uploader.upload(path, type)` runs the whole flow of docs/architecture.md ("Models"):
`POST /checkpoints` for the part URLs, the parts through `transfer.PartEngine` (ordered
read + SHA-256, parallel PUTs with retries, ETag checks), then `POST .../complete` with the
ETags and the SHA-256, and it checks that the answer is an `Active` model of the file's size
and hash. Progress goes to a callback as `UploadProgress` (bytes, parts, rate, ETA).

Resuming: after each stored part a small state file (`upload_state`) records it. Uploading
the same unchanged file again (same API URL, path, size and mtime) asks fresh URLs only for
the missing parts and sends only those. If the server no longer knows that upload, it starts
over cleanly. A finished upload deletes its state; a failed one keeps it, and the error says
that uploading the file again resumes.

Duplicates: the SHA-256 is computed while the parts are sent, so by default the server learns
it only at completion, and a file is read once. A caller that knows the hash already (A1111
keeps one per model in its cache.json), or asks for `hash_first` (one extra read, at disk
speed, before sending), sends it with `POST /checkpoints`; then a model of the same type and
content already in the cloud is reported as skipped before any byte is sent. A taken
(type, name) is refused by the server with 409 whatever the hash. In every case the hash of
the bytes actually read is what completes the upload, and a given hash that differs from it
fails the upload instead of labelling the model wrongly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient
from aws_extension.client.transfer import (
    FileChanged,
    FilePlan,
    PartEngine,
    RateMeter,
    UploadProgress,
    UrlBook,
    parse_expiry,
    sha256_file,
)
from aws_extension.client.upload_state import UploadState, UploadStates

__all__ = [
    "SKIPPED",
    "UPLOADED",
    "ProgressCallback",
    "UploadFailed",
    "UploadProgress",
    "UploadResult",
    "Uploader",
]

log = logging.getLogger(__name__)

#: How long to wait for a completion whose answer was lost and that is still joining parts.
COMPLETION_WAIT = 120.0
#: Outcomes of `UploadResult`.
UPLOADED = "uploaded"
SKIPPED = "skipped"

ProgressCallback = Callable[[UploadProgress], None]


class UploadFailed(errors.ApiError):
    """An upload stopped. `resumable` says whether uploading the file again continues it.

    `state_file` is where the resume state is kept (None when nothing is left to resume),
    `parts_stored`/`parts_total` how far it got.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        resumable: bool = False,
        state_file: Path | None = None,
        parts_stored: int = 0,
        parts_total: int = 0,
    ):
        super().__init__(message, status=status, code=code)
        self.resumable = resumable
        self.state_file = state_file
        self.parts_stored = parts_stored
        self.parts_total = parts_total


@dataclass(frozen=True)
class UploadResult:
    """How one file went. `outcome` is `UPLOADED` or `SKIPPED` (content already there).

    `checkpoint` is the `Active` model as the server returned it (None when skipped);
    `checkpoint_id` is the model that holds the file either way. `sent_bytes` is what this
    run sent; `reused_parts` how many parts an earlier, interrupted run had sent.
    """

    path: str
    name: str
    type: str
    outcome: str
    checkpoint_id: str | None
    checkpoint: dict | None
    sha256: str | None
    size: int
    sent_bytes: int
    reused_parts: int
    seconds: float
    message: str


class Uploader:
    """Uploads files for one signed-in `ApiClient`, one file at a time, parts in parallel.

    `state_dir` holds the resume states (the WebUI keeps them next to its settings).
    `workers` parts travel at once; memory stays about (workers + 1) x the part size the
    server chose. `attempts` tries per part with `backoff` x 2^n s between them.
    `session` carries the part PUTs (they go to S3 or the local stack, not to the API, and
    carry no API credentials). The instance may be reused for many files; `close()` it.
    """

    def __init__(
        self,
        client: ApiClient,
        state_dir: Path | str,
        *,
        workers: int = 4,
        attempts: int = 5,
        backoff: float = 0.5,
        connect_timeout: float = 10.0,
        read_timeout: float = 120.0,
        hash_first: bool = False,
        session: requests.Session | None = None,
        tick_seconds: float = 0.25,
    ) -> None:
        self._client = client
        self._states = UploadStates(state_dir)
        self._engine = PartEngine(
            workers=workers,
            attempts=attempts,
            backoff=backoff,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            session=session,
        )
        self._hash_first = hash_first
        self._tick_seconds = tick_seconds
        self._busy: set[Path] = set()
        self._busy_lock = threading.Lock()

    def close(self) -> None:
        self._engine.close()

    def __enter__(self) -> Uploader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def state_file(self, path: Path | str) -> Path:
        """Where the resume state of `path` lives (whether or not there is one)."""
        return self._states.file_for(self._client.api_url, Path(path).resolve())

    def resume_state(self, path: Path | str) -> UploadState | None:
        """What an interrupted upload of `path` left to resume (parts stored, part count)."""
        return self._states.load(self._client.api_url, Path(path).resolve())

    def upload(
        self,
        path: Path | str,
        type: str,
        *,
        name: str | None = None,
        allowed_roles: Iterable[str] | None = None,
        sha256: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> UploadResult:
        """Upload one file as a model of `type` (A1111's folder name, e.g. "Lora").

        `name` defaults to the file's name. `sha256`, when known, lets the server report a
        duplicate before anything is sent. `on_progress` is called in this thread about
        every `tick_seconds`; if it raises, the upload stops (resumable) and the exception
        propagates as it is. Raises `UploadFailed` (with `resumable`), or the client's
        `ApiError`s for refusals before anything was sent (e.g. `Conflict` for a taken name).
        """
        file = Path(path).resolve()
        if type not in contract.MODEL_TYPES:
            raise errors.InvalidRequest(
                f"{type!r} is not a model type; use one of {', '.join(contract.MODEL_TYPES)}."
            )
        problem = contract.model_name_problem(name or file.name)
        if problem is not None:
            raise errors.InvalidRequest(f"{name or file.name!r} cannot name a model: {problem}.")
        with self._busy_lock:
            if file in self._busy:
                raise UploadFailed(f"{file.name} is being uploaded already.")
            self._busy.add(file)
        try:
            return self._upload(file, type, name or file.name, allowed_roles, sha256, on_progress)
        finally:
            with self._busy_lock:
                self._busy.discard(file)

    # -- the flow ------------------------------------------------------------------------

    def _upload(
        self,
        file: Path,
        model_type: str,
        name: str,
        allowed_roles: Iterable[str] | None,
        sha256: str | None,
        on_progress: ProgressCallback | None,
    ) -> UploadResult:
        started = time.monotonic()
        try:
            status = file.stat()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UploadFailed(f"Cannot read {file}: {reason}.") from None
        if not file.is_file():
            raise UploadFailed(f"{file} is not a file.")
        if status.st_size == 0:
            raise UploadFailed(f"{file.name} is empty; a model file never is.")
        size, mtime_ns = status.st_size, status.st_mtime_ns
        roles = list(allowed_roles) if allowed_roles is not None else None
        api_url = self._client.api_url
        report = _Reporter(str(file), name, size, on_progress, self._tick_seconds)

        state = self._states.load(api_url, file)
        if state is not None and (not state.matches(size, mtime_ns) or state.type != model_type):
            log.info("%s changed, or its type differs, since the last try: starting over.", file)
            self._abandon(state)
            state = None
        if state is not None:
            resumed, book, finished = self._resume(state, name, roles)
            if finished is not None:
                return self._result(file, state, finished, UPLOADED, 0, 0, started)
            if resumed is not None and book is not None:
                return self._send(file, resumed, book, sha256, report, started)
        if sha256 is None and self._hash_first:
            sha256 = sha256_file(file, report.hashing)
        try:
            reply = self._client.create_checkpoint(
                name, model_type, size, sha256=sha256, allowed_roles=roles
            )
        except errors.DuplicateContent as exc:
            existing = exc.existing_id
            return UploadResult(
                path=str(file),
                name=name,
                type=model_type,
                outcome=SKIPPED,
                checkpoint_id=existing,
                checkpoint=None,
                sha256=sha256,
                size=size,
                sent_bytes=0,
                reused_parts=0,
                seconds=time.monotonic() - started,
                message=f"{name} is already in the cloud as {existing or 'another model'}.",
            )
        state, book = self._start(reply, api_url, file, size, mtime_ns, model_type, name)
        return self._send(file, state, book, sha256, report, started)

    def _start(
        self,
        reply: dict,
        api_url: str,
        file: Path,
        size: int,
        mtime_ns: int,
        model_type: str,
        name: str,
    ) -> tuple[UploadState, UrlBook]:
        checkpoint = reply.get("checkpoint")
        upload = reply.get("upload")
        try:
            if not isinstance(checkpoint, dict) or not isinstance(upload, dict):
                raise TypeError("checkpoint and upload must be objects")
            state = UploadState(
                api_url=api_url,
                path=str(file),
                size=size,
                mtime_ns=mtime_ns,
                type=model_type,
                name=name,
                checkpoint_id=str(checkpoint["id"]),
                upload_id=str(upload["upload_id"]),
                part_size=int(upload["part_size"]),
                part_count=int(upload["part_count"]),
            )
            if state.part_size < 1:
                raise ValueError("the part size must be positive")
            initial = _urls_of(upload)
        except (KeyError, TypeError, ValueError, errors.IncompatibleServer):
            raise errors.IncompatibleServer(
                "The server started the upload but its answer lacks the upload's parts: "
                "is it the sd-webui-sagemaker API of this version?"
            ) from None
        plan = FilePlan(file, size, state.part_size, mtime_ns)
        if plan.part_count != state.part_count:
            self._abort_quietly(state.checkpoint_id)
            raise errors.IncompatibleServer(
                f"The server cut {size} bytes into {state.part_count} parts of "
                f"{state.part_size} bytes, which does not add up."
            )
        self._states.save(state)
        book = self._book(state)
        book.add(initial, parse_expiry(upload.get("expires_at")))
        return state, book

    def _resume(
        self, state: UploadState, name: str, roles: list[str] | None
    ) -> tuple[UploadState | None, UrlBook | None, dict | None]:
        """Check an earlier upload is still open; (state, urls, None), or (None, None, None)
        to start over, or (state, None, checkpoint) when it turns out to be complete."""
        missing = state.missing()
        try:
            reply = self._client.checkpoint_parts(state.checkpoint_id, missing or [1])
        except (errors.NotFound, errors.Conflict):
            checkpoint = self._get_quietly(state.checkpoint_id)
            if (
                checkpoint is not None
                and checkpoint.get("status") == contract.CHECKPOINT_ACTIVE
                and checkpoint.get("size") == state.size
            ):
                # Completed by the run that crashed before deleting its state.
                self._states.delete(state.api_url, state.path)
                return state, None, checkpoint
            log.info("The server no longer knows the upload of %s; starting over.", state.path)
            self._abandon(state)
            return None, None, None
        if name != state.name or roles is not None:
            self._client.update_checkpoint(state.checkpoint_id, name=name, allowed_roles=roles)
            state.name = name
            self._states.save(state)
        book = self._book(state)
        book.add(_urls_of(reply), parse_expiry(reply.get("expires_at")))
        return state, book, None

    def _send(
        self,
        file: Path,
        state: UploadState,
        book: UrlBook,
        sha256: str | None,
        report: _Reporter,
        started: float,
    ) -> UploadResult:
        plan = FilePlan(file, state.size, state.part_size, state.mtime_ns)
        todo = state.missing()
        reused = state.part_count - len(todo)
        report.begin(state.part_count)

        def stored(number: int, etag: str) -> None:
            state.parts[number] = etag
            self._states.save(state)

        sent = 0

        def tick(done: int, sent_now: int, parts_done: int) -> None:
            nonlocal sent
            sent = sent_now
            report.uploading(done, sent_now, parts_done)

        try:
            digest = self._engine.run(
                plan, todo, book, on_part=stored, on_tick=tick, tick_seconds=self._tick_seconds
            )
        except FileChanged as exc:
            self._abandon(state)
            raise UploadFailed(str(exc)) from None
        except errors.ApiError as exc:
            raise self._failed(state, exc) from None
        except OSError as exc:
            raise self._failed(
                state, errors.ApiError(f"Reading {file.name} failed: {exc.strerror or exc}.")
            ) from None
        if sha256 is not None and sha256.lower() != digest:
            self._abandon(state)
            raise UploadFailed(
                f"The SHA-256 given for {file.name} ({sha256[:10]}...) is not the file's "
                f"({digest[:10]}...); the upload was abandoned so the model is not mislabelled."
            )
        report.completing(state.part_count)
        checkpoint = self._complete(state, digest)
        self._states.delete(state.api_url, state.path)
        return self._result(file, state, checkpoint, UPLOADED, sent, reused, started, digest)

    def _complete(self, state: UploadState, digest: str) -> dict:
        """Complete the upload and check what the server says it stored."""
        parts = sorted(state.parts.items())
        try:
            checkpoint = self._client.complete_checkpoint(state.checkpoint_id, parts, sha256=digest)
        except (errors.ConnectionFailed, errors.RequestTimeout, errors.ServerError) as exc:
            # The answer may be lost while the completion went through: look before failing.
            checkpoint = self._await_completion(state.checkpoint_id)
            if checkpoint is None or checkpoint.get("status") != contract.CHECKPOINT_ACTIVE:
                raise self._failed(state, exc) from None
        except errors.InvalidRequest as exc:
            # The server's parts do not match the ones recorded here (say, another process
            # sent the same file meanwhile): the next try sends every part again, rather
            # than meet the same refusal on every resume.
            state.parts.clear()
            self._states.save(state)
            raise self._failed(state, exc) from None
        except errors.ApiError as exc:
            raise self._failed(state, exc) from None
        if (
            checkpoint.get("status") != contract.CHECKPOINT_ACTIVE
            or checkpoint.get("size") != state.size
            or checkpoint.get("sha256") not in (None, digest)
        ):
            raise UploadFailed(
                f"The server completed {state.name} as {checkpoint.get('status')!r} with "
                f"{checkpoint.get('size')} bytes, not Active with {state.size} bytes and "
                f"SHA-256 {digest[:10]}...; check it in the Cloud Models table."
            )
        return checkpoint

    # -- helpers -------------------------------------------------------------------------

    def _book(self, state: UploadState) -> UrlBook:
        client, checkpoint_id = self._client, state.checkpoint_id

        def fetch(numbers: list[int]) -> tuple[dict[int, str], float | None]:
            reply = client.checkpoint_parts(checkpoint_id, numbers)
            return _urls_of(reply), parse_expiry(reply.get("expires_at"))

        return UrlBook(fetch, state.missing())

    def _failed(self, state: UploadState, cause: errors.ApiError) -> UploadFailed:
        stored = len(state.parts)
        return UploadFailed(
            f"Uploading {state.name} stopped: {cause} {stored} of {state.part_count} parts "
            "are in the cloud; upload the same file again to resume.",
            status=cause.status,
            code=cause.code,
            resumable=True,
            state_file=self._states.file_for(state.api_url, state.path),
            parts_stored=stored,
            parts_total=state.part_count,
        )

    def _abandon(self, state: UploadState) -> None:
        """Forget a state that cannot be resumed and free its upload on the server."""
        self._states.delete(state.api_url, state.path)
        self._abort_quietly(state.checkpoint_id)

    def _abort_quietly(self, checkpoint_id: str) -> None:
        try:
            self._client.abort_checkpoint(checkpoint_id)
        except errors.ApiError as exc:
            log.info("Could not abort the upload of model %s: %s", checkpoint_id, exc)

    def _await_completion(self, checkpoint_id: str) -> dict | None:
        """The checkpoint once it is no longer `Completing` (bounded wait), or None."""
        deadline = time.monotonic() + COMPLETION_WAIT
        while True:
            checkpoint = self._get_quietly(checkpoint_id)
            if (
                checkpoint is None
                or checkpoint.get("status") != contract.CHECKPOINT_COMPLETING
                or time.monotonic() >= deadline
            ):
                return checkpoint
            time.sleep(1.0)

    def _get_quietly(self, checkpoint_id: str) -> dict | None:
        try:
            checkpoint = self._client.get_checkpoint(checkpoint_id)
        except errors.ApiError:
            return None
        return checkpoint if isinstance(checkpoint, dict) else None

    @staticmethod
    def _result(
        file: Path,
        state: UploadState,
        checkpoint: dict,
        outcome: str,
        sent: int,
        reused: int,
        started: float,
        digest: str | None = None,
    ) -> UploadResult:
        seconds = time.monotonic() - started
        sha256 = digest or checkpoint.get("sha256")
        rate = f", {sent / seconds / 1024**2:.1f} MiB/s" if sent and seconds > 0 else ""
        resumed = f", {reused} of {state.part_count} parts from an earlier try" if reused else ""
        return UploadResult(
            path=str(file),
            name=str(checkpoint.get("name", state.name)),
            type=state.type,
            outcome=outcome,
            checkpoint_id=state.checkpoint_id,
            checkpoint=checkpoint,
            sha256=sha256,
            size=state.size,
            sent_bytes=sent,
            reused_parts=reused,
            seconds=seconds,
            message=(
                f"Uploaded {checkpoint.get('name', state.name)} as {state.checkpoint_id} "
                f"(sha256 {str(sha256)[:10]}, {state.size / 1024**2:.1f} MiB in "
                f"{seconds:.1f} s{rate}{resumed})."
            ),
        )


def _urls_of(reply: dict) -> dict[int, str]:
    """{part_number: url} from an `Upload` or a `POST .../parts` reply."""
    parts = reply.get("parts")
    if not isinstance(parts, list):
        raise errors.IncompatibleServer("The server's answer lists no part URLs.")
    urls: dict[int, str] = {}
    for part in parts:
        if not isinstance(part, dict):
            continue
        number, url = part.get("part_number"), part.get("url")
        if isinstance(number, int) and isinstance(url, str) and url:
            urls[number] = url
    return urls


class _Reporter:
    """Turns the engine's counts into `UploadProgress` reports with a moving-average rate."""

    def __init__(
        self,
        path: str,
        name: str,
        size: int,
        callback: ProgressCallback | None,
        tick_seconds: float,
    ) -> None:
        self._path = path
        self._name = name
        self._size = size
        self._callback = callback
        self._tick_seconds = tick_seconds
        self._last_hashing = 0.0
        self._meter = RateMeter()
        self._parts_total = 0

    def _emit(self, phase: str, done: int, parts_done: int, rate: float | None) -> None:
        if self._callback is None:
            return
        eta = (self._size - done) / rate if rate else None
        self._callback(
            UploadProgress(
                path=self._path,
                name=self._name,
                phase=phase,
                bytes_done=done,
                bytes_total=self._size,
                parts_done=parts_done,
                parts_total=self._parts_total,
                rate=rate,
                eta=eta,
            )
        )

    def hashing(self, done: int) -> None:
        """Called per chunk read; reports at the tick rate and at the end."""
        now = time.monotonic()
        if done == self._size or now - self._last_hashing >= self._tick_seconds:
            self._last_hashing = now
            self._emit("hashing", done, 0, None)

    def begin(self, parts_total: int) -> None:
        self._parts_total = parts_total
        self._meter = RateMeter()

    def uploading(self, done: int, sent: int, parts_done: int) -> None:
        self._emit("uploading", done, parts_done, self._meter.add(sent))

    def completing(self, parts_total: int) -> None:
        self._emit("completing", self._size, parts_total, None)
