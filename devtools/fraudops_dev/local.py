"""The local stack: the MLflow UI and the API (plus moto's S3 server in S3 mode) as background
processes on 127.0.0.1, and the small HTTP helpers the CLI, the demo and the tests share.

The stack holds no state of its own: the registry, the artifacts and the serving manifest are files
under ``state_dir`` that every process reads, so ``down``/``up``, a reboot or a ``kill -9`` lose nothing.
Used by `fraudops up/down/logs` (and so `make up/down/logs`). Nothing here runs in AWS.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fraudops.core.config import Settings
from fraudops.core.files import atomic_write

LOCALHOST = "127.0.0.1"
LOG_ROTATE_BYTES = 10_000_000  # a log above this is rotated (kept as .1) when its service starts
LOG_BACKUPS = 3


class StackError(RuntimeError):
    """The local stack could not start or be reached; the message (one line) names the fix, ``detail``
    (e.g. the end of a service's log) is printed below it."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.detail = detail


# One MLflow UI worker on a laptop. With more, uvicorn's supervisor pings each worker and kills one that
# does not answer within 5 s (uvicorn/supervisors/multiprocess.py, keep_subprocess_alive): on a busy
# machine a worker still importing MLflow, or holding the GIL over an S3 listing, was killed in the
# middle of a request ("Remote end closed connection without response"). One user needs one worker.
ONE_WORKER = ("--workers", "1")


def _call(request: urllib.request.Request, timeout: float) -> tuple[int, Any]:
    """(status, parsed body); HTTP errors are answers, not exceptions; no answer is a StackError."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")
    except (urllib.error.URLError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise StackError(f"nothing answers at {request.full_url} ({reason}): run `make up`") from None


def post_json(url: str, body: Any, api_key: str | None, timeout: float = 10.0) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    return _call(urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST"), timeout)


def get_json(url: str, api_key: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
    return _call(urllib.request.Request(url, headers={"x-api-key": api_key} if api_key else {}), timeout)


def local_aws_environment(endpoint_url: str | None = None, region: str = "us-east-1") -> dict[str, str]:
    """The one fake AWS environment of every local process: moto's placeholder credentials (never
    real ones), a region, and the local S3 endpoint for fraudops and for MLflow's own client."""
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region}
    if endpoint_url:
        env |= {"FRAUDOPS_S3_ENDPOINT_URL": endpoint_url, "MLFLOW_S3_ENDPOINT_URL": endpoint_url}
    return env


@contextlib.contextmanager
def serve_in_thread(app: Any, port: int) -> Iterator[str]:
    """The app under a real uvicorn server on 127.0.0.1 for the length of the block."""
    import threading

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host=LOCALHOST, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://{LOCALHOST}:{port}"
    try:
        wait_for_http(f"{base}/health", timeout=30, accept=(200, 503))
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOCALHOST) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def wait_for_http(url: str, timeout: float = 30.0, accept: tuple[int, ...] = (200,)) -> None:
    """Poll ``url`` until it answers with one of ``accept`` (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in accept:
                    return
                last = response.status
        except urllib.error.HTTPError as error:
            if error.code in accept:
                return
            last = error.code
        except (urllib.error.URLError, OSError) as error:
            last = error
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up within {timeout:.0f}s (last: {last})")


@contextlib.contextmanager
def moto_s3_server(port: int | None = None) -> Iterator[str]:
    """moto's S3 server in this process (a thread), on 127.0.0.1. Yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per S3 call otherwise
    port = port or free_port()
    server = ThreadedMotoServer(ip_address=LOCALHOST, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{LOCALHOST}:{port}"
    finally:
        server.stop()


def local_api_key(settings: Settings, create: bool = False) -> str | None:
    """The local stack's API key: FRAUDOPS_API_KEYS, else <state_dir>/api-key (made on `up`, gitignored)."""
    keys = settings.api_key_values()
    if keys:
        return keys[0]
    path = settings.state_dir / "api-key"
    saved = path.read_text().strip() if path.exists() else ""
    if saved:
        return saved
    if not create:
        return None
    # Written whole or not at all (a full disk must not leave an empty key file that locks every call
    # out); an empty file left by an older version is replaced. mkstemp makes the file 0600.
    key = secrets.token_urlsafe(24)
    atomic_write(path, (key + "\n").encode())
    return key


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    port_variable: str
    command: list[str]
    ready_url: str
    ready_status: tuple[int, ...] = (200,)


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / "pids" / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / "logs" / f"{name}.log"


def services(settings: Settings) -> list[Service]:
    """What `up` starts. The UI reads the same registry file the CLI and the API use."""
    python = sys.executable
    tracking = settings.tracking_uri or f"sqlite:///{(settings.state_dir / 'mlflow.db').resolve()}"
    stack: list[Service] = []
    if settings.storage == "s3":
        stack.append(
            Service(
                "s3",
                settings.s3_port,
                "FRAUDOPS_S3_PORT",
                [python, "-m", "fraudops_dev.cli", "s3-server", "--port", str(settings.s3_port)],
                f"http://{LOCALHOST}:{settings.s3_port}/moto-api/",
            )
        )
    stack += [
        Service(
            "mlflow-ui",
            settings.mlflow_ui_port,
            "FRAUDOPS_MLFLOW_UI_PORT",
            [
                python,
                "-m",
                "mlflow",
                "ui",
                "--backend-store-uri",
                tracking,
                "--default-artifact-root",
                settings.artifact_root,
                "--host",
                LOCALHOST,
                "--port",
                str(settings.mlflow_ui_port),
                *ONE_WORKER,
            ],
            f"http://{LOCALHOST}:{settings.mlflow_ui_port}/health",
        ),
        Service(
            "api",
            settings.api_port,
            "FRAUDOPS_API_PORT",
            [
                python,
                "-m",
                "fraudops_dev.cli",
                "serve",
                "--port",
                str(settings.api_port),
                "--log-file",
                str(log_file(settings, "api")),
            ],
            f"http://{LOCALHOST}:{settings.api_port}/health",
            (200, 503),  # 503 = up, but nothing promoted yet
        ),
    ]
    return stack


def check_ports(settings: Settings, stack: list[Service]) -> None:
    """Before starting anything: every port we need is free (or already ours)."""
    for service in stack:
        if running_pid(settings, service.name) is None and port_open(service.port):
            raise StackError(
                f"port {service.port} on {LOCALHOST} is taken, so {service.name} cannot start: free it, or pick "
                f"another port with {service.port_variable}=<port> (e.g. {service.port_variable}={service.port + 10} "
                "make up); nothing was started"
            )


def rotate_log(path: Path, max_bytes: int = LOG_ROTATE_BYTES, backups: int = LOG_BACKUPS) -> None:
    if not path.exists() or path.stat().st_size < max_bytes:
        return
    for number in range(backups - 1, 0, -1):
        older = path.with_name(f"{path.name}.{number}")
        if older.exists():
            older.replace(path.with_name(f"{path.name}.{number + 1}"))
    path.replace(path.with_name(f"{path.name}.1"))


def running_pid(settings: Settings, name: str) -> int | None:
    path = _pid_file(settings, name)
    if not path.exists():
        return None
    pid = int((path.read_text().split() or ["0"])[0])
    if pid <= 0 or not _alive(pid):  # gone, or a zombie left by a kill -9
        path.unlink(missing_ok=True)
        return None
    return pid


def running_port(settings: Settings, name: str) -> int | None:
    """The port a running service was started on (recorded beside its pid), None if it is not running."""
    if running_pid(settings, name) is None:
        return None
    fields = _pid_file(settings, name).read_text().split()
    return int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None


_PORT_SETTINGS = {"api": "api_port", "mlflow-ui": "mlflow_ui_port", "s3": "s3_port"}


def with_running_ports(settings: Settings) -> Settings:
    """``settings`` with the ports of the stack that is running from this state folder: a command
    that talks to the stack (predict, smoke, up's summary) finds it where `up` put it, whatever the
    environment of this shell says."""
    ports = {field: port for name, field in _PORT_SETTINGS.items() if (port := running_port(settings, name))}
    return settings.model_copy(update=ports) if ports else settings


def start_service(settings: Settings, service: Service, env: dict[str, str]) -> int:
    if (pid := running_pid(settings, service.name)) is not None:
        port = running_port(settings, service.name) or service.port
        print(f"  {service.name:<10} already running: http://{LOCALHOST}:{port}  (pid {pid})")
        return pid
    log_path = log_file(settings, service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    rotate_log(log_path)
    _pid_file(settings, service.name).parent.mkdir(parents=True, exist_ok=True)
    log_start = log_path.stat().st_size if log_path.exists() else 0  # this start's lines begin here
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            service.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    _pid_file(settings, service.name).write_text(f"{process.pid} {service.port}\n")  # the port: see running_port
    try:
        seconds = wait_until_ready(service, process, settings.stack_ready_timeout_seconds)
    except StackError as error:
        stop_service(settings, service.name)
        raise StackError(f"{error}; the end of its log ({log_path}) follows", log_tail(log_path, log_start)) from None
    print(f"  {service.name:<10} http://{LOCALHOST}:{service.port}  (pid {process.pid}, ready after {seconds:.0f} s, "
          f"log {log_path})")  # fmt: skip
    return process.pid


READY_PROGRESS_SECONDS = 5.0  # a "waiting for" line this often, so a slow start does not look like a hang


def wait_until_ready(
    service: Service, process: subprocess.Popen[bytes], limit: float, progress_every: float = READY_PROGRESS_SECONDS
) -> float:
    """Wait for the service's own readiness signal, its health URL answering with ``ready_status``
    (MLflow's server has answered ``GET /health`` with 200 "OK" since mlflow/mlflow#2725,
    https://github.com/mlflow/mlflow/pull/2725), for at most ``limit`` seconds; returns how long it took.
    A process that exits first is reported at once, not after the whole limit."""
    started = time.monotonic()
    next_progress = started + progress_every
    last: object = "no answer yet"
    while True:
        code = process.poll()
        elapsed = time.monotonic() - started
        if code is not None:
            raise StackError(f"{service.name} exited (code {code}) after {elapsed:.0f} s, before it answered "
                             f"{service.ready_url}")  # fmt: skip
        try:
            with urllib.request.urlopen(service.ready_url, timeout=2) as response:
                if response.status in service.ready_status:
                    return time.monotonic() - started
                last = response.status
        except urllib.error.HTTPError as error:
            if error.code in service.ready_status:
                return time.monotonic() - started
            last = error.code
        except (urllib.error.URLError, OSError) as error:
            last = getattr(error, "reason", error)
        elapsed = time.monotonic() - started
        if elapsed >= limit:
            raise StackError(
                f"{service.name} did not answer {service.ready_url} within {limit:.0f} s (last: {last}) and was "
                f"stopped: give it longer with FRAUDOPS_STACK_READY_TIMEOUT_SECONDS=<seconds> (a loaded machine)"
            )
        if time.monotonic() >= next_progress:
            print(f"  waiting for {service.name} ({elapsed:.0f} s of {limit:.0f} s)", flush=True)
            next_progress += progress_every
        time.sleep(0.2)


def log_tail(path: Path, start: int = 0, lines: int = 20) -> str:
    """The last ``lines`` lines a service wrote to its log since byte ``start`` (this start's output)."""
    try:
        with path.open("rb") as log:
            log.seek(start)
            text = log.read().decode(errors="replace")
    except OSError as error:
        return f"  (cannot read it: {error})"
    tail = text.splitlines()[-lines:]
    return "\n".join(f"  | {line}" for line in tail) if tail else "  (empty)"


def stop_services(settings: Settings, names: list[str], grace: float = 1.5) -> dict[str, bool]:
    """SIGTERM every group at once, wait at most ``grace`` seconds in all, then SIGKILL what is left.
    Nothing is lost by the kill: every write the services make is atomic on disk."""
    pids = {name: running_pid(settings, name) for name in names}
    for pid in pids.values():
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids.values() if pid is not None):
        time.sleep(0.05)
    for pid in pids.values():
        if pid is not None and _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
    for name in names:
        _pid_file(settings, name).unlink(missing_ok=True)
    return {name: pid is not None for name, pid in pids.items()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our own child not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def stop_service(settings: Settings, name: str) -> bool:
    return stop_services(settings, [name])[name]
