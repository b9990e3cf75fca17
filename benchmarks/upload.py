"""Upload benchmark: our uploader against boto3's `upload_file`, and against the machine.

Run by hand with the server environment (it needs boto3, moto and the local stack):

    python benchmarks/upload.py                       # 1 GiB, 3 runs of each (a few minutes)
    python benchmarks/upload.py --size-mib 64 --runs 1   # a quick check, seconds

It makes one file of `--size-mib` (random 1 MiB blocks, each stamped with a counter, so no
part repeats and nothing compresses) and times, `--runs` times each, in this order per run:

  (a) ours -> S3: our part engine (`client.transfer.PartEngine`) PUTs the parts to S3
      presigned part URLs (made by `S3Blobs`) on moto's `ThreadedMotoServer` on 127.0.0.1;
  (b) boto3 -> S3: `upload_file` with the default `TransferConfig` to the same server;
  (c) ours -> local stack: the whole API flow (`Uploader.upload`: create, parts, complete)
      into the folder backend of a real `python -m aws_extension local` process;
  (d) the machine's own limit: read the file and SHA-256 it, in one thread.

Each runs in a child process of its own, so its CPU time and peak memory are its alone:
throughput and CPU are measured around the transfer (not the interpreter's start), peak RSS
is the child's VmHWM (not `ru_maxrss`, which carries the forking parent's peak over exec).
The server side's CPU time is measured too (moto runs in this process, the stack in its own),
which shows what bounds each figure: a side that burns about one core per second of
transfer is saturated when it is bound to one core by the GIL (moto's server is; the local
stack's part threads hash and write with the GIL released, so it is bound by the machine's
cores, which it shares with the uploader: add both sides' "cores"). The file is in the
page cache for every run (it was just written), so the disk plays no part. MB/s is 10^6 B/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.local_stack import LocalStack  # noqa: E402

MIB = 1024 * 1024
GIB = 1024 * MIB
REGION = "us-east-1"
METHODS = {
    "a": "ours -> moto S3 (presigned part URLs)",
    "b": "boto3 upload_file -> moto S3",
    "c": "ours -> local stack (API + folder backend)",
    "d": "machine: read + sha256",
}


# -- children: each measures itself and prints one JSON line -----------------------------------


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _peak_rss() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def _measured(work: Any) -> dict[str, Any]:
    cpu, start = _cpu(), time.perf_counter()
    extra = work()
    return {
        "seconds": time.perf_counter() - start,
        "cpu": _cpu() - cpu,
        "peak_rss": _peak_rss(),
        **(extra or {}),
    }


def child_ours_s3(spec: dict[str, Any]) -> dict[str, Any]:
    from aws_extension.client.transfer import FilePlan, PartEngine, UrlBook

    path = Path(spec["path"])
    status = path.stat()
    plan = FilePlan(path, status.st_size, spec["part_size"], status.st_mtime_ns)

    def no_more(numbers: list[int]) -> tuple[dict[int, str], float | None]:
        raise RuntimeError("the benchmark signs every URL up front")

    book = UrlBook(no_more, [])
    book.add({int(n): url for n, url in spec["urls"].items()}, None)
    etags: dict[int, str] = {}

    def work() -> dict[str, Any]:
        with PartEngine(workers=spec["workers"]) as engine:
            digest = engine.run(
                plan, range(1, plan.part_count + 1), book, on_part=etags.__setitem__
            )
        return {"sha256": digest, "etags": etags}

    return _measured(work)


def child_boto3(spec: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=spec["endpoint"],
        region_name=REGION,
        config=Config(s3={"addressing_style": "path"}, proxies={}),
    )
    return _measured(lambda: client.upload_file(spec["path"], spec["bucket"], spec["key"]))


def child_ours_stack(spec: dict[str, Any]) -> dict[str, Any]:
    from aws_extension.client.api import ApiClient, ClientOptions
    from aws_extension.client.uploader import Uploader

    password = sys.stdin.readline().strip()
    with ApiClient(spec["url"], spec["token"], options=ClientOptions(timeout=120)) as client:
        client.login("admin", password)
        with Uploader(client, spec["state_dir"], workers=spec["workers"]) as uploader:
            result: dict[str, Any] = {}

            def work() -> dict[str, Any]:
                # The stack's CPU around the transfer only: signing in runs scrypt there.
                server_cpu = process_cpu(spec["server_pid"])
                done = uploader.upload(spec["path"], "Stable-diffusion", name=spec["name"])
                result.update(id=done.checkpoint_id, sha256=done.sha256)
                return {
                    "sha256": done.sha256,
                    "server_cpu": process_cpu(spec["server_pid"]) - server_cpu,
                }

            measured = _measured(work)
        # Not timed: frees the disk for the next run.
        client.delete_checkpoint(result["id"])
    return measured


def child_machine(spec: dict[str, Any]) -> dict[str, Any]:
    from aws_extension.client.transfer import sha256_file

    return _measured(lambda: {"sha256": sha256_file(Path(spec["path"]), chunk=8 * MIB)})


CHILDREN = {"a": child_ours_s3, "b": child_boto3, "c": child_ours_stack, "d": child_machine}


def child_main(mode: str) -> int:
    spec = json.loads(sys.stdin.readline())
    print(json.dumps(CHILDREN[mode](spec)), flush=True)
    return 0


# -- the parent: servers, runs, table ---------------------------------------------------------


@dataclass
class Run:
    method: str
    seconds: float
    cpu: float
    peak_rss: int
    server_cpu: float


def make_file(path: Path, size: int) -> str:
    """Random 1 MiB blocks stamped with their index; returns the file's SHA-256."""
    pool = os.urandom(MIB)
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        for index in range(-(-size // MIB)):
            block = index.to_bytes(8, "little") + pool[8:]
            block = block[: min(MIB, size - index * MIB)]
            handle.write(block)
            digest.update(block)
    return digest.hexdigest()


def run_child(mode: str, spec: dict[str, Any], stdin_extra: str = "") -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode],
        input=json.dumps(spec) + "\n" + stdin_extra,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) another process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="file size (default 1024)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each method (default 3)")
    parser.add_argument("--workers", type=int, default=4, help="our parallel parts (default 4)")
    parser.add_argument("--part-mib", type=int, default=8, help="part size towards S3 (default 8)")
    parser.add_argument("--child", choices=sorted(CHILDREN), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)

    import boto3
    from botocore.config import Config
    from moto.server import ThreadedMotoServer

    from aws_extension.middleware.blobs.s3 import S3Blobs

    # moto takes any credentials; the boto3 child inherits these.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ[name] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = REGION
    os.environ.pop("AWS_PROFILE", None)
    # moto's server logs every request through werkzeug, presigned signatures included.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    size = args.size_mib * MIB
    part_size = args.part_mib * MIB
    with tempfile.TemporaryDirectory(prefix="upload-bench-") as folder:
        work = Path(folder)
        path = work / "model.safetensors"
        started = time.perf_counter()
        expected = make_file(path, size)
        print(f"made {args.size_mib} MiB in {time.perf_counter() - started:.1f} s", flush=True)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, proxies={}),
        )
        bucket = "bench"
        s3.create_bucket(Bucket=bucket)
        blobs = S3Blobs(s3, bucket)
        stack = LocalStack(work / "state")
        runs: list[Run] = []
        try:
            for number in range(1, args.runs + 1):
                key = f"bench/{uuid.uuid4().hex}/model.safetensors"
                # (a) our engine to presigned part URLs; signed and completed out here.
                upload_id = blobs.create_multipart(key)
                count = -(-size // part_size)
                urls = {
                    n: blobs.part_url(key, upload_id, n, expires_in=3600)
                    for n in range(1, count + 1)
                }
                spec = {"path": str(path), "part_size": part_size, "workers": args.workers}
                server_cpu = _cpu()
                result = run_child("a", {**spec, "urls": urls})
                runs.append(_run("a", result, _cpu() - server_cpu))
                assert result["sha256"] == expected
                etags = sorted((int(n), e) for n, e in result["etags"].items())
                assert blobs.complete_multipart(key, upload_id, etags) == size
                blobs.delete(key)

                # (b) boto3 to the same server.
                server_cpu = _cpu()
                result = run_child(
                    "b", {"path": str(path), "endpoint": endpoint, "bucket": bucket, "key": key}
                )
                runs.append(_run("b", result, _cpu() - server_cpu))
                assert blobs.head(key) is not None and blobs.head(key).size == size  # type: ignore[union-attr]
                blobs.delete(key)

                # (c) the whole API flow into the local stack's folder backend.
                spec_c = {
                    "path": str(path),
                    "url": stack.url,
                    "token": stack.token,
                    "state_dir": str(work / "states"),
                    "workers": args.workers,
                    "name": f"bench-{number}.safetensors",
                    "server_pid": stack.process.pid,
                }
                result = run_child("c", spec_c, stack.password + "\n")
                runs.append(_run("c", result, result["server_cpu"]))
                assert result["sha256"] == expected

                # (d) the machine: read + hash.
                result = run_child("d", {"path": str(path)})
                runs.append(_run("d", result, 0.0))
                assert result["sha256"] == expected
                print(f"run {number} of {args.runs} done", flush=True)
        finally:
            stack.stop()
            moto.stop()
    report(runs, args, size)
    return 0


def _run(method: str, result: dict[str, Any], server_cpu: float) -> Run:
    return Run(method, result["seconds"], result["cpu"], result["peak_rss"], server_cpu)


def report(runs: list[Run], args: argparse.Namespace, size: int) -> None:
    gib = size / GIB
    print()
    print(
        f"upload of {args.size_mib} MiB, {args.runs} run(s) each, our workers {args.workers}, "
        f"part size {args.part_mib} MiB towards S3, {os.cpu_count()} CPUs; MB/s = 10^6 B/s"
    )
    header = (
        f"{'method':<44}{'MB/s median':>12}{'(min-max)':>12}{'CPU s/GiB':>11}"
        f"{'cores':>7}{'server CPU s/GiB':>18}{'cores':>7}{'peak RSS MiB':>14}"
    )
    print(header)
    print("-" * len(header))
    medians: dict[str, float] = {}
    for method, label in METHODS.items():
        mine = [r for r in runs if r.method == method]
        rates = [size / r.seconds / 1e6 for r in mine]
        medians[method] = statistics.median(rates)
        cpu = statistics.median(r.cpu for r in mine) / gib
        client_cores = statistics.median(r.cpu / r.seconds for r in mine)
        if method == "d":
            server = f"{'-':>18}{'-':>7}"
        else:
            server_cpu = statistics.median(r.server_cpu for r in mine) / gib
            server_cores = statistics.median(r.server_cpu / r.seconds for r in mine)
            server = f"{server_cpu:>18.2f}{server_cores:>7.2f}"
        peak = max(r.peak_rss for r in mine) / MIB
        print(
            f"{label:<44}{medians[method]:>12.1f}{f'({min(rates):.0f}-{max(rates):.0f})':>12}"
            f"{cpu:>11.2f}{client_cores:>7.2f}{server}{peak:>14.0f}"
        )
    print("cores: CPU seconds per second of transfer (1.00 = one core busy all the time)")
    print()
    print(f"ours / boto3 on the same S3 server:        {medians['a'] / medians['b']:.2f}")
    print(f"ours into the local stack / machine limit: {medians['c'] / medians['d']:.2f}")


if __name__ == "__main__":
    sys.exit(main())
