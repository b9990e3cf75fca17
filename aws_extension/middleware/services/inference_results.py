"""Reading and storing what an endpoint answered, and dropping it again.

An endpoint's reply is not trusted: anything unusable in it (no images, text that is not
base64, bytes that are no image, an output object that is missing or not JSON) becomes a
`ReplyProblem` or a failed `JobOutcome` that names it, never an unhandled error, and no
image of a reply stays stored when a later one is unusable. A1111's `info` and the
per-image seed and infotext are extras: when unreadable they are dropped, not fatal.

The service decides whether a result is kept (only for a job still open); this class only
knows the blobs and the limits of the policy.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import logging
from typing import Any
from urllib.parse import urlsplit

from aws_extension.middleware.blobs import BlobNotFound, Blobs, InvalidKey
from aws_extension.middleware.compute import JobOutcome
from aws_extension.middleware.compute.base import (
    JOB_ERROR_ENDPOINT,
    JOB_ERROR_INVALID_REPLY,
    job_input_key,
    job_prefix,
)
from aws_extension.middleware.compute.job_replies import runtime_error
from aws_extension.middleware.inference_policy import InferencePolicy
from aws_extension.middleware.records import Doc

logger = logging.getLogger(__name__)


class ReplyProblem(Exception):
    """A runtime reply that holds no usable result."""


class InferenceResults:
    """A job's stored results: its images (`inferences/<id>/<n>.<suffix>`), their URLs, and
    the async output and failure objects SageMaker leaves in the bucket."""

    def __init__(self, blobs: Blobs, policy: InferencePolicy) -> None:
        self._blobs = blobs
        self._policy = policy

    def image_url(self, key: str) -> str:
        """A fresh download URL of a stored image, valid for `image_url_ttl` seconds."""
        return self._blobs.download_url(key, expires_in=self._policy.image_url_ttl)

    def store_images(self, job_id: str, reply: dict[str, Any]) -> tuple[list[Doc], Any]:
        """Decode and store the reply's images; return their entries and the parsed info.
        Nothing stays stored when a later image is unusable."""
        images = reply.get("images")
        if not isinstance(images, list) or not images:
            raise ReplyProblem("The endpoint's reply holds no images.")
        info = _parse_info(reply.get("info"))
        stored: list[Doc] = []
        try:
            for index, encoded in enumerate(images):
                data, suffix = _decode(index, encoded)
                key = f"{job_prefix(job_id)}{index}{suffix}"
                self._blobs.put_stream(
                    key, io.BytesIO(data), size_limit=self._policy.max_image_bytes
                )
                seed, infotext = _seed_and_infotext(info, index)
                stored.append({"key": key, "seed": seed, "infotext": infotext})
        except BaseException:
            self.discard(stored)
            raise
        return stored, info

    def discard(self, images: list[Doc]) -> None:
        """Delete images stored by `store_images` that are not kept after all."""
        for image in images:
            self._blobs.delete(image["key"])

    def read_output(self, key: str | None) -> JobOutcome:
        """The outcome of an async job SageMaker reported as completed, from its output."""
        if key is None:
            return JobOutcome(
                error_code=JOB_ERROR_INVALID_REPLY,
                error_detail="SageMaker reported success without an output location.",
            )
        try:
            reply = self._read_json(key)
        except (BlobNotFound, InvalidKey):
            detail = "The endpoint's output is not in this deployment's bucket."
            return JobOutcome(error_code=JOB_ERROR_INVALID_REPLY, error_detail=detail)
        except ValueError:
            detail = "The endpoint's output is not JSON."
            return JobOutcome(error_code=JOB_ERROR_INVALID_REPLY, error_detail=detail)
        if not isinstance(reply, dict):
            detail = "The endpoint's output is not a JSON object."
            return JobOutcome(error_code=JOB_ERROR_INVALID_REPLY, error_detail=detail)
        return JobOutcome(reply=reply)

    def read_failure(self, key: str | None, reason: Any) -> JobOutcome:
        """The runtime's own error (`{"status", "detail", "code"}`) when SageMaker stored it,
        else SageMaker's `failureReason`."""
        if key is not None:
            try:
                error = self._read_json(key)
            except (BlobNotFound, InvalidKey, ValueError):
                error = None
            outcome = runtime_error(error)
            if outcome is not None:
                return outcome
        detail = reason if isinstance(reason, str) and reason else "SageMaker gave no reason."
        return JobOutcome(error_code=JOB_ERROR_ENDPOINT, error_detail=detail)

    def drop_job(self, job_id: str, doc: Doc) -> None:
        """Delete a removed job's images and its async input."""
        for image in doc.get("images") or ():
            self.delete_quietly(image["key"])
        self.delete_quietly(job_input_key(job_id))

    def delete_quietly(self, key: str) -> None:
        """Delete an object if there is one; a key that is none of ours (named by a
        notification) is logged, not raised."""
        try:
            self._blobs.delete(key)
        except InvalidKey:
            logger.warning("Not deleting %r: not a valid object key", key)

    def _read_json(self, key: str) -> Any:
        with contextlib.closing(self._blobs.open_read(key)) as stream:
            return json.loads(stream.read())


def s3_key(location: Any) -> str | None:
    """The key of an `s3://bucket/key` location; None for anything else."""
    if not isinstance(location, str):
        return None
    parts = urlsplit(location)
    key = parts.path.lstrip("/")
    return key if parts.scheme == "s3" and key else None


def _decode(index: int, encoded: Any) -> tuple[bytes, str]:
    if not isinstance(encoded, str):
        raise ReplyProblem(f"Image {index} of the endpoint's reply is not base64 text.")
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ReplyProblem(f"Image {index} of the endpoint's reply is not base64.") from None
    suffix = _image_suffix(data)
    if suffix is None:
        raise ReplyProblem(f"Image {index} of the endpoint's reply is not a PNG, JPEG or WebP.")
    return data, suffix


def _image_suffix(data: bytes) -> str | None:
    """The file suffix of an image a reply may carry (A1111 encodes in its
    `samples_format`: PNG by default), by its magic bytes; None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if data.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP":
        return ".webp"
    return None


def _parse_info(raw: Any) -> dict[str, Any] | None:
    """A1111 sends `info` as a JSON string; anything else unusable is dropped, not fatal."""
    if isinstance(raw, dict):
        return raw
    if isinstance(raw, str):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, dict) else None
    return None


def _seed_and_infotext(info: dict[str, Any] | None, index: int) -> tuple[int | None, str | None]:
    """Image `index`'s seed and infotext from A1111's info: a grid, when there is one, comes
    first and has the first infotext but no seed of its own."""
    if info is None:
        return None, None
    infotexts = info.get("infotexts")
    infotext = None
    if isinstance(infotexts, list) and index < len(infotexts):
        text = infotexts[index]
        infotext = text if isinstance(text, str) else None
    first = info.get("index_of_first_image", 0)
    seeds = info.get("all_seeds")
    seed = None
    if isinstance(first, int) and isinstance(seeds, list) and 0 <= index - first < len(seeds):
        value = seeds[index - first]
        seed = value if isinstance(value, int) else None
    return seed, infotext
