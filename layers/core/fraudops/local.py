"""The local stack: moto's S3 server, the MLflow UI and the API as background processes on 127.0.0.1.

Used by `fraudops up/down/logs` (and so `make up/down/logs`) and by the demo. Nothing here runs in AWS.
"""

from __future__ import annotations

import contextlib
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

from fraudops.config import Settings

LOCALHOST = "127.0.0.1"


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
    if path.exists():
        return path.read_text().strip()
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(24)
    path.write_text(key + "\n")
    path.chmod(0o600)
    return key


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    command: list[str]
    ready_url: str
    ready_status: tuple[int, ...] = (200,)


def _pid_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / "pids" / f"{name}.pid"


def log_file(settings: Settings, name: str) -> Path:
    return settings.state_dir / "logs" / f"{name}.log"


def services(settings: Settings) -> list[Service]:
    python = sys.executable
    tracking = f"sqlite:///{(settings.state_dir / 'mlflow.db').resolve()}"
    return [
        Service(
            "s3",
            settings.s3_port,
            [python, "-m", "fraudops.cli", "s3-server", "--port", str(settings.s3_port)],
            f"http://{LOCALHOST}:{settings.s3_port}/moto-api/",
        ),
        Service(
            "mlflow-ui",
            settings.mlflow_ui_port,
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
            ],
            f"http://{LOCALHOST}:{settings.mlflow_ui_port}/health",
        ),
        Service(
            "api",
            settings.api_port,
            [python, "-m", "fraudops.cli", "serve", "--port", str(settings.api_port)],
            f"http://{LOCALHOST}:{settings.api_port}/health",
            (200, 503),  # 503 = up, but nothing promoted yet
        ),
    ]


def running_pid(settings: Settings, name: str) -> int | None:
    path = _pid_file(settings, name)
    if not path.exists():
        return None
    pid = int(path.read_text().strip() or 0)
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        path.unlink(missing_ok=True)
        return None
    return pid


def start_service(settings: Settings, service: Service, env: dict[str, str]) -> int:
    if (pid := running_pid(settings, service.name)) is not None:
        print(f"  {service.name:<10} already running (pid {pid})")
        return pid
    if port_open(service.port):
        raise RuntimeError(f"port {service.port} on {LOCALHOST} is taken; free it or set the port variable")
    log_path = log_file(settings, service.name)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    _pid_file(settings, service.name).parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            service.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    _pid_file(settings, service.name).write_text(str(process.pid))
    try:
        wait_for_http(service.ready_url, timeout=60, accept=service.ready_status)
    except TimeoutError:
        stop_service(settings, service.name)
        raise RuntimeError(f"{service.name} did not start; see {log_path}") from None
    print(f"  {service.name:<10} http://{LOCALHOST}:{service.port}  (pid {process.pid}, log {log_path})")
    return process.pid


def stop_service(settings: Settings, name: str) -> bool:
    pid = running_pid(settings, name)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    _pid_file(settings, name).unlink(missing_ok=True)
    return True
