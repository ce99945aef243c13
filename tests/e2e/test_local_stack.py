"""Issue 8: the local default keeps your work across restarts, `make up` fails cleanly, `make retrain`
acts on your stack, and the CLI says what is wrong in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fraudops_dev.cli import main
from fraudops_dev.emulation import retrain_locally
from fraudops_dev.local import LOCALHOST, free_port, get_json, running_pid, wait_for_http

from fraudops.config import Settings
from tests.helpers.stack import production_version, train_and_promote, version_count

pytestmark = pytest.mark.e2e


@pytest.fixture
def stack_env(local_settings: Settings) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "FRAUDOPS_STATE_DIR": str(local_settings.state_dir),
        "FRAUDOPS_DB_PATH": str(local_settings.db_path),
        "FRAUDOPS_LAKE_URI": str(local_settings.lake_uri),
        "FRAUDOPS_API_PORT": str(free_port()),
        "FRAUDOPS_MLFLOW_UI_PORT": str(free_port()),
        "FRAUDOPS_API_KEYS": "key-one",
        "FRAUDOPS_MODEL_REFRESH_SECONDS": "0",
    }
    yield env
    subprocess.run([sys.executable, "-m", "fraudops_dev.cli", "down"], env=env, capture_output=True, timeout=60)


def fraudops(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudops_dev.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def served_version(env: dict[str, str]) -> str | None:
    status, body = get_json(f"http://{LOCALHOST}:{env['FRAUDOPS_API_PORT']}/health")
    return body.get("model_version") if status == 200 else None


def ui_production_version(env: dict[str, str], settings: Settings) -> str:
    url = (f"http://{LOCALHOST}:{env['FRAUDOPS_MLFLOW_UI_PORT']}/api/2.0/mlflow/registered-models/alias"
           f"?name={settings.model_name}&alias={settings.production_alias}")  # fmt: skip
    status, body = get_json(url)
    assert status == 200, body
    return str(body["model_version"]["version"])


@pytest.mark.serial
def test_a_restart_and_a_kill_9_lose_nothing(local_settings: Settings, stack_env: dict[str, str]) -> None:
    train_and_promote(local_settings)
    train_and_promote(local_settings)  # version 2 is Production
    up = fraudops(stack_env, "up")
    assert up.returncode == 0, up.stderr
    assert served_version(stack_env) == "2" and ui_production_version(stack_env, local_settings) == "2"

    started = time.perf_counter()
    assert fraudops(stack_env, "down").returncode == 0
    down_seconds = time.perf_counter() - started
    assert down_seconds < 4.0  # the stop itself is bounded at 1.5 s; the rest is interpreter start-up

    assert fraudops(stack_env, "up").returncode == 0
    assert served_version(stack_env) == "2" and ui_production_version(stack_env, local_settings) == "2"
    for name in ("api", "mlflow-ui"):  # kill -9, as a crash or a reboot would
        pid = running_pid(local_settings, name)
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
    time.sleep(0.5)
    assert fraudops(stack_env, "up").returncode == 0
    assert served_version(stack_env) == "2" and ui_production_version(stack_env, local_settings) == "2"
    assert version_count(local_settings) == 2 and production_version(local_settings) == "2"
    assert not list(local_settings.state_dir.glob("*.stale-*"))


def test_up_on_a_busy_port_names_the_variable_and_touches_nothing(
    local_settings: Settings, stack_env: dict[str, str]
) -> None:
    with socket.socket() as busy:
        busy.bind((LOCALHOST, int(stack_env["FRAUDOPS_API_PORT"])))
        busy.listen()
        result = fraudops(stack_env, "up")
    assert result.returncode == 2
    assert "FRAUDOPS_API_PORT" in result.stderr and "Traceback" not in result.stderr
    assert not (local_settings.state_dir / "pids").exists() or not list((local_settings.state_dir / "pids").iterdir())
    assert not (local_settings.state_dir / "mlflow.db").exists()  # nothing created, nothing moved


def test_retrain_acts_on_the_stack(local_settings: Settings, stack_env: dict[str, str]) -> None:
    train_and_promote(local_settings)
    assert fraudops(stack_env, "up").returncode == 0
    results = retrain_locally(local_settings, progress=lambda _: None)
    assert [r.status for r in results] == ["SUCCEEDED"]
    promotion = results[0].output["promotion"]
    assert version_count(local_settings) == 2  # in the stack's own registry, visible to its UI
    url = (f"http://{LOCALHOST}:{stack_env['FRAUDOPS_MLFLOW_UI_PORT']}/api/2.0/mlflow/model-versions/get"
           f"?name={local_settings.model_name}&version=2")  # fmt: skip
    status, body = get_json(url)
    tags = {t["key"]: t["value"] for t in body["model_version"]["tags"]}
    assert status == 200 and tags["fraudops.promotion.decision"] == promotion["outcome"]
    expected = "2" if promotion["outcome"] == "promoted" else "1"
    wait_for_http(f"http://{LOCALHOST}:{stack_env['FRAUDOPS_API_PORT']}/health")
    assert served_version(stack_env) == expected
    assert not [p for p in Path("/tmp").glob("fraudops-data*") if p.stat().st_mtime > time.time() - 60]


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["promote"], {"FRAUDOPS_PROMOTION_MARGIN": "-1"}, "FRAUDOPS_PROMOTION_MARGIN=-1"),
        (["train", "--lake", "/nonexistent/lake"], {}, "nonexistent/lake has no transactions"),
        (["predict"], {"FRAUDOPS_API_PORT": "9"}, "make up"),
        (["train"], {"FRAUDOPS_STORAGE": "s3", "FRAUDOPS_S3_PORT": "9"}, "error"),
    ],
)
def test_cli_problems_are_one_line_and_no_traceback(
    argv: list[str], env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], tmp_path: Path,
) -> None:  # fmt: skip
    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(tmp_path))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err  # one line, as the README promises


def test_no_command_reaches_aws_by_accident(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from fraudops.errors import ConfigError
    from fraudops.store import s3_client

    settings = Settings(storage="s3", state_dir=tmp_path)  # no endpoint, not in Lambda, no --aws
    with pytest.raises(ConfigError, match="--aws"):
        s3_client(settings)
    s3_client(settings.model_copy(update={"aws": True}))  # asked for: allowed (no call is made here)


def test_cli_version_and_help_describe_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    from fraudops_dev.cli import build_parser

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("fraudops ")
    parser = build_parser()
    for action in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        for option in action._actions:
            assert option.help, f"{action.prog} {option.option_strings} has no help"


def test_smoke_passes_on_a_working_stack_and_fails_on_a_broken_one(local_settings: Settings) -> None:
    from fraudops_dev.smoke import run_smoke

    from tests.helpers.stack import live_api

    with live_api(local_settings) as base:
        report = run_smoke(base, "key-one", retrain=lambda: {"status": "SUCCEEDED", "promotion": {"outcome": "kept"}})
        assert report.passed, report.checks
        assert [name for name, _, _ in report.checks][-1] == "one retraining execution"
        wrong = run_smoke(base, "not-the-key")
        assert not wrong.passed
        assert [name for name, ok, _ in wrong.checks if not ok] == ["POST /predict with the key", "GET /model"]
