"""`python -m aws_extension local`: run the middleware on this machine.

Binds the listening socket itself before anything else, so that `--port 0` prints the port
really in use and a busy port fails before a first-start password could be made and lost.
Then prints the banner (the labelled lines are parsed by tests and the demo, keep them),
and serves with uvicorn until Ctrl-C or SIGTERM, which end it with exit code 0.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import signal
import socket
import sys
import threading
from pathlib import Path

import uvicorn
from fastapi import FastAPI

from aws_extension.local.bootstrap import SUPER_ADMIN, bootstrap
from aws_extension.local.demo_setup import prepare_demo
from aws_extension.local.state import LocalState, StateError, default_state_dir, open_state
from aws_extension.local.sweeper import JOB_SWEEP_INTERVAL, PeriodicSweep
from aws_extension.middleware.app import create_app
from aws_extension.middleware.blobs.folder import FolderBlobs
from aws_extension.middleware.blobs.folder_part_protocol import part_put_protocol
from aws_extension.middleware.blobs.folder_routes import make_blob_router
from aws_extension.middleware.compute import Compute
from aws_extension.middleware.compute.local_endpoints import LocalComputeSettings, LocalEndpoints
from aws_extension.middleware.compute.local_jobs import LocalJobs
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.outbound import OutboundPolicy
from aws_extension.middleware.security.passwords import PasswordHasher


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension local",
        description="Run the sd-webui-sagemaker middleware locally on SQLite.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"folder for secrets and records (default: {default_state_dir()})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (there is no TLS: trusted networks only)",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="address clients reach this server at, for the signed model upload URLs"
        " (default: the listening address; set it with --allow-remote)",
    )
    parser.add_argument(
        "--allow-private-import",
        action="store_true",
        help="let model imports download from private and loopback addresses (a model"
        " server on this machine or your network); off, only public hosts are fetched",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="make sure a local endpoint and the tiny demo model (random weights, made on the"
        " spot, no download) exist, so Generate works at once",
    )
    parser.add_argument(
        "--endpoint-python",
        default=sys.executable,
        help="interpreter of the local endpoints' runtime processes: one with the engine's"
        " packages (torch, diffusers: requirements/endpoint.txt) for the diffusers engine"
        " (default: this one)",
    )
    parser.add_argument(
        "--endpoint-cpu-threads",
        type=_positive,
        default=1,
        help="torch CPU threads of each local diffusers endpoint (default: 1)",
    )
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("use 1 or more")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY on accepted connections only
    # when the protocol says TCP. Without it, every answer on a kept-alive connection (the
    # client's requests.Session) waited ~40 ms for a delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening now lets clients that read the banner connect at once; uvicorn accepts
        # the queued connections as soon as it runs.
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def print_banner(url: str, state: LocalState, password: str | None) -> None:
    lines = [
        f"sd-webui-sagemaker local stack (state in {state.directory})",
        f"API URL:   {url}",
        f"API token: {state.api_token}",
    ]
    if password is not None:
        lines += [
            f"Username:  {SUPER_ADMIN}",
            f"Password:  {password}",
            "The password is shown only this once: sign in with it in the Amazon SageMaker"
            " tab, then change it there.",
        ]
    else:
        lines.append(
            "Existing credentials kept: sign in with the users created before (the admin"
            " password was shown on the first start)."
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def serve(app: FastAPI, sock: socket.socket, http: type[asyncio.Protocol] | None = None) -> None:
    """Run uvicorn on `sock` until a signal stops it; `http` is its protocol class, if not
    its own (the local stack's serves part PUTs on threads: `folder_part_protocol`).

    uvicorn handles SIGINT/SIGTERM itself and, after shutting down, re-raises the signal
    with the previous handlers restored; routing SIGTERM to the same handler as SIGINT makes
    both end as KeyboardInterrupt, which the caller turns into exit code 0.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            http=http or "auto",
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main_thread else None
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"Refusing to listen on {args.host}: the local stack speaks plain HTTP, so anyone"
            " who can reach it could read tokens and try passwords. Use 127.0.0.1, or pass"
            " --allow-remote on a network you trust.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        state = open_state(args.state_dir or default_state_dir())
    except (StateError, OSError) as error:
        print(f"Cannot use the state folder: {error}", file=sys.stderr)
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        print(
            f"Cannot listen on {args.host}:{args.port} ({error.strerror}); pick another --port"
            " (0 picks a free one).",
            file=sys.stderr,
        )
        return 1
    config = Config(
        api_tokens=(state.api_token,),
        signing_secret=state.signing_secret,
        outbound=OutboundPolicy(allow_private=args.allow_private_import),
    )
    records = SqliteRecords(state.records_path)
    url = url_of(args.host, sock)
    blobs = FolderBlobs(
        state.blobs_folder(),
        base_url=args.public_url or url,
        secret=state.blob_secret.encode(),
    )
    endpoints = LocalEndpoints(
        LocalComputeSettings(
            state_dir=state.directory,
            python=args.endpoint_python,
            cpu_threads=args.endpoint_cpu_threads,
        )
    )
    compute = Compute(
        endpoints,
        LocalJobs(endpoints, queue_size=config.inferences.local_queue_size),
        queues_while_creating=True,
    )
    app = create_app(
        config, records, blobs=blobs, signed_routes=make_blob_router(blobs), compute=compute
    )
    services = app.state.services
    assert services.endpoints is not None  # built with compute
    assert services.checkpoints is not None  # built with blobs
    assert services.inferences is not None  # built with compute and blobs
    sweeps = [
        PeriodicSweep(services.checkpoints.sweep),
        PeriodicSweep(services.inferences.sweep, JOB_SWEEP_INTERVAL),
    ]
    try:
        password = bootstrap(records, PasswordHasher(config.scrypt))
        # Jobs a previous run left queued or running died with its workers.
        services.inferences.fail_leftovers()
        # The endpoints that ran when the stack stopped run again.
        services.endpoints.resume()
        print_banner(url, state, password)
        for sweep in sweeps:
            sweep.start()
        if args.demo:
            # In the background: making the model imports torch (seconds), and the server
            # should answer meanwhile.
            threading.Thread(
                target=prepare_demo,
                args=(services, args.endpoint_python),
                name="demo-setup",
                daemon=True,
            ).start()
        serve(app, sock, part_put_protocol(blobs))
    except KeyboardInterrupt:
        pass
    finally:
        for sweep in sweeps:
            sweep.stop()
        services.close()
        records.close()
        sock.close()
    print("Stopped.", flush=True)
    return 0
