"""How the deployment treats model files: size limit, part size, URL lifetime, deadlines.

A module of its own (not under `services/`) because `Config` holds it, and the services
package imports `Config`.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class CheckpointPolicy:
    #: Largest model accepted by upload or import. Flux-sized checkpoints are ~24 GB, so the
    #: default leaves room; S3 itself would take 5 TiB.
    max_size: int = 64 * GIB
    #: Part size handed to uploaders (raised to the backend's minimum, and further for files
    #: that would need more than S3's 10,000 parts). 8 MiB keeps several parts in flight
    #: cheap in memory and retries of a failed part short.
    part_size: int = 8 * MIB
    #: Seconds a part URL stays usable; the uploader asks for fresh ones after that.
    part_url_ttl: int = 3600
    #: An upload not completed this long after it started is failed and its parts dropped
    #: by the sweep, so abandoned uploads cost nothing forever.
    upload_deadline: int = 24 * 3600
    #: A completion or import whose record has not changed for this long is failed by the
    #: sweep: the process that ran it died (imports write progress every few seconds).
    stall_deadline: int = 15 * 60
    #: Imports one process runs at once; more wait in line.
    import_workers: int = 2
    #: Seconds between two progress writes of a running import.
    progress_interval: float = 2.0

    def __post_init__(self) -> None:
        if min(self.max_size, self.part_size, self.part_url_ttl, self.import_workers) < 1:
            raise ValueError("checkpoint sizes, URL lifetime and import workers must be positive")
        if self.upload_deadline <= self.part_url_ttl:
            raise ValueError("the upload deadline must exceed the part URL lifetime")
        if not 0 < self.progress_interval < self.stall_deadline:
            raise ValueError("imports must report progress well within the stall deadline")
