"""Job latency benchmark: what the middleware adds to a txt2img job, long poll vs polling.

Run by hand with the server environment (it starts the local stack as a real process):

    python benchmarks/latency.py              # 30 jobs of each kind (about a minute)
    python benchmarks/latency.py --jobs 5     # a quick check

The engine is instant: a local endpoint with the `webui` engine in front of a stand-in A1111
on 127.0.0.1 that answers txt2img at once with a 64x64 PNG (the one the tests use). So the
time from submitting a job to seeing its result is what our side costs: the API, the job
record, the local worker, the endpoint runtime process and its model cache, storing the PNG.
Jobs run one after the other, alternating between the two ways a client learns the result:

  (a) long poll: `GET /inferences/{id}?wait=25` until the job is final;
  (b) 1 s polling: `GET /inferences/{id}` right after submitting, then once a second.

For each it prints the median and 90th percentile of submit -> final status seen, the
requests per job (the POST included), and the ratio (b)/(a). "Middleware overhead" is the
long-poll latency minus the time the endpoint runtime reports for the job (its `timings`:
model fetch + load + generate), i.e. what the API, queueing, the worker's HTTP call and the
result's storage add.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aws_extension.client.api import ApiClient  # noqa: E402
from aws_extension.client.uploader import Uploader  # noqa: E402
from aws_extension.contract import INFERENCE_FINAL_STATUSES, MAX_WAIT_SECONDS  # noqa: E402
from benchmarks.local_stack import LocalStack  # noqa: E402
from tests.server.a1111_for_jobs import running_a1111  # noqa: E402

PAYLOAD = {"prompt": "latency", "steps": 1, "width": 64, "height": 64, "seed": 1}


def _ready_endpoint(client: ApiClient, name: str, webui_url: str, models_dir: Path) -> None:
    client.create_endpoint(
        name=name,
        type="async",
        instance_type="local",
        initial_instance_count=1,
        engine="webui",
        webui_url=webui_url,
        webui_models_dir=str(models_dir),
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        endpoint = client.get_endpoint(name)
        if endpoint["status"] == "InService":
            return
        if endpoint["status"] == "Failed":
            raise SystemExit(f"The endpoint failed: {endpoint['failure_reason']}")
        time.sleep(0.2)
    raise SystemExit("The endpoint did not come into service within 120 s.")


def _model(client: ApiClient, folder: Path) -> str:
    """A small file uploaded as a checkpoint: the stand-in A1111 never reads it."""
    path = folder / "latency-model.safetensors"
    path.write_bytes(uuid.uuid4().bytes * 64)
    result = Uploader(client, state_dir=folder / "uploads").upload(path, "Stable-diffusion")
    return result.checkpoint_id


def _job(client: ApiClient, body: dict[str, Any], long_poll: bool) -> tuple[float, int, float]:
    """One job: (seconds from submit to final status seen, requests made, runtime seconds)."""
    started = time.perf_counter()
    job = client.create_inference(body, idempotency_key=uuid.uuid4().hex)
    requests = 1
    while True:
        if long_poll:
            job = client.get_inference(job["id"], wait=MAX_WAIT_SECONDS)
        else:
            job = client.get_inference(job["id"])
        requests += 1
        if job["status"] in INFERENCE_FINAL_STATUSES:
            break
        if not long_poll:
            time.sleep(1.0)
    seen = time.perf_counter() - started
    if job["status"] != "succeeded":
        raise SystemExit(f"Job {job['id']} ended {job['status']}: {job['error']}")
    runtime = sum((job.get("timings") or {}).values())
    client.delete_inference(job["id"])
    return seen, requests, runtime


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=30, help="jobs of each kind")
    args = parser.parse_args(argv)
    with running_a1111() as a1111, tempfile.TemporaryDirectory(prefix="latency-") as work_dir:
        work = Path(work_dir)
        (work / "a1111-models").mkdir()
        stack = LocalStack(work / "state")
        try:
            client = ApiClient(stack.url, stack.token)
            client.login("admin", stack.password)
            _ready_endpoint(client, "bench", a1111.url, work / "a1111-models")
            body = {
                "task": "txt2img",
                "endpoint": "bench",
                "models": {"Stable-diffusion": _model(client, work)},
                "payload": PAYLOAD,
            }
            _job(client, body, long_poll=True)  # warm-up: the runtime links the model once
            results: dict[bool, list[tuple[float, int, float]]] = {True: [], False: []}
            for _ in range(args.jobs):
                for long_poll in (True, False):
                    results[long_poll].append(_job(client, body, long_poll))
        finally:
            stack.stop()
    print(f"{args.jobs} jobs each, one at a time, instant engine (stand-in A1111)")
    medians = {}
    for long_poll, label in ((True, "(a) long poll ?wait=25"), (False, "(b) poll every 1 s")):
        seen = [item[0] for item in results[long_poll]]
        requests = [item[1] for item in results[long_poll]]
        medians[long_poll] = statistics.median(seen)
        print(
            f"{label:24} median {medians[long_poll] * 1000:7.1f} ms   "
            f"p90 {_percentile(seen, 0.9) * 1000:7.1f} ms   "
            f"requests/job {statistics.mean(requests):.2f}"
        )
    overhead = [seen - runtime for seen, _, runtime in results[True]]
    print(f"ratio (b)/(a) of median latency: {medians[False] / medians[True]:.1f}")
    print(
        "middleware overhead (long poll minus the runtime's own timings): "
        f"median {statistics.median(overhead) * 1000:.1f} ms, "
        f"p90 {_percentile(overhead, 0.9) * 1000:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
