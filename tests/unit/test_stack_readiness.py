"""Issue 27 item 5: `make up` waits for each service's own readiness signal (its health URL answering)
for a configurable time, says that it is waiting, and reports a service that died at once, with the
end of its log, instead of waiting out a fixed 60 s and stopping a service that was about to answer."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest
from fraudops_dev.local import (
    LOCALHOST,
    Service,
    StackError,
    free_port,
    running_pid,
    start_service,
    stop_service,
    stop_services,
)

from fraudops.core.config import Settings

# A real HTTP server that answers /health only after DELAY seconds (as MLflow's UI does after its imports).
SLOW_SERVER = """
import http.server, sys, time
print("importing, slowly", flush=True)
time.sleep(float(sys.argv[2]))
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b"OK")
    def log_message(self, *args):
        pass
print("listening", flush=True)
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Health).serve_forever()
"""


def _service(name: str, port: int, code: str, *arguments: str) -> Service:
    return Service(
        name, port, "FRAUDOPS_X_PORT", [sys.executable, "-c", code, *arguments], f"http://{LOCALHOST}:{port}/health"
    )


def _settings(tmp_path: Path, limit: float) -> Settings:
    return Settings(state_dir=tmp_path / "state", stack_ready_timeout_seconds=limit)


def test_a_service_that_exits_at_once_is_reported_at_once_with_its_log(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 120)
    code = "import sys; print('cannot open the backend store: disk I/O error', flush=True); sys.exit(3)"
    started = time.monotonic()
    with pytest.raises(StackError) as raised:
        start_service(settings, _service("broken", free_port(), code), dict(os.environ))
    assert time.monotonic() - started < 15  # not the whole limit
    assert "broken exited (code 3)" in str(raised.value) and "\n" not in str(raised.value)  # one line
    assert "cannot open the backend store: disk I/O error" in raised.value.detail  # the log's tail, not its path
    assert running_pid(settings, "broken") is None


def test_up_prints_the_log_tail_of_a_service_that_died(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """As a user sees it: `fraudops up` (what `make up` runs) names the service and shows its last words."""
    from fraudops_dev import cli, local

    code = "import sys; print('Error: no such option: --workers', flush=True); sys.exit(2)"
    monkeypatch.setattr(local, "services", lambda settings: [_service("mlflow-ui", free_port(), code)])
    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(tmp_path / "state"))
    started = time.monotonic()
    assert cli.main(["up"]) == 2
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert "fraudops up: error: mlflow-ui exited (code 2)" in err
    assert "| Error: no such option: --workers" in err


@pytest.mark.slow
def test_a_slow_service_is_waited_for_with_progress_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path, 40)
    port = free_port()
    try:
        pid = start_service(settings, _service("slow-ui", port, SLOW_SERVER, str(port), "6.5"), dict(os.environ))
        assert running_pid(settings, "slow-ui") == pid
    finally:
        stop_service(settings, "slow-ui")
    out = capsys.readouterr().out
    assert "waiting for slow-ui (5 s of 40 s)" in out
    assert f"slow-ui    http://{LOCALHOST}:{port}" in out and "ready after" in out


def test_the_limit_is_the_setting_and_a_service_past_it_is_stopped_with_its_log(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 3)
    port = free_port()
    started = time.monotonic()
    with pytest.raises(StackError) as raised:
        start_service(settings, _service("stuck", port, SLOW_SERVER, str(port), "600"), dict(os.environ))
    assert time.monotonic() - started < 15
    message = str(raised.value)
    assert "stuck did not answer" in message and "within 3 s" in message
    assert "FRAUDOPS_STACK_READY_TIMEOUT_SECONDS" in message and "importing, slowly" in raised.value.detail
    assert running_pid(settings, "stuck") is None  # stopped, not left behind


def test_the_readiness_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().stack_ready_timeout_seconds == 180
    monkeypatch.setenv("FRAUDOPS_STACK_READY_TIMEOUT_SECONDS", "400")
    assert Settings().stack_ready_timeout_seconds == 400
    monkeypatch.setenv("FRAUDOPS_STACK_READY_TIMEOUT_SECONDS", "0")
    with pytest.raises(ValueError, match="stack_ready_timeout_seconds"):
        Settings()


# A service that ignores SIGTERM (as a worker stuck in an import may): `down` must not wait on it forever.
STUBBORN_SERVER = (
    """
import signal, sys
signal.signal(signal.SIGTERM, signal.SIG_IGN)
"""
    + SLOW_SERVER
)


def test_down_kills_a_service_that_ignores_sigterm_once_its_grace_is_spent(tmp_path: Path) -> None:
    settings = _settings(tmp_path, 120)
    port = free_port()
    pid = start_service(settings, _service("stubborn", port, STUBBORN_SERVER, str(port), "0"), dict(os.environ))
    sleeps: list[float] = []
    real_sleep = time.sleep

    def counted_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        real_sleep(seconds)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "sleep", counted_sleep)
        stopped = stop_services(settings, ["stubborn"], grace=0.3)
    assert stopped == {"stubborn": True} and running_pid(settings, "stubborn") is None
    assert sum(sleeps) <= 0.3 + 0.05  # it waited out its grace and no more, however loaded the machine
    stat = Path(f"/proc/{pid}/stat")  # SIGKILLed: gone, or a zombie this process has not reaped yet
    for _ in range(200):  # the kernel delivers the kill asynchronously
        if not stat.exists() or stat.read_text().split(")")[-1].split()[0] == "Z":
            break
        real_sleep(0.05)
    else:
        raise AssertionError(f"pid {pid} still runs after stop_services: SIGTERM ignored and no SIGKILL")
