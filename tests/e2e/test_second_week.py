"""Issue 18: what a returning user hits in the second week. The demo never touches your data, a too
small demo is refused up front, the local state can move, the stack remembers its ports, keys in URLs
are not logged, and the CLI reads state only from a folder that holds some."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fraudops_dev.cli import main
from fraudops_dev.datagen import GeneratorConfig, generate_frames
from fraudops_dev.local import LOCALHOST, free_port, get_json, wait_for_http
from fraudops_dev.sqlite_io import write_transactions

from fraudops.core.config import get_settings
from fraudops.production import history
from tests.helpers.stack import fast_settings, train_and_promote

pytestmark = pytest.mark.e2e


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def use_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def promoted_state(tmp_path_factory: pytest.TempPathFactory, small_db: Path) -> Path:
    """A state folder with a trained and promoted version (copied by each test that changes it)."""
    state = tmp_path_factory.mktemp("promoted") / "state"
    train_and_promote(fast_settings(db_path=small_db, state_dir=state))
    return state


# --- item 1 and 2: the demo ------------------------------------------------------------------------------


def test_the_demo_leaves_an_imported_table_byte_identical_and_says_where_its_state_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudops_dev.demo import MIN_DEMO_ROWS

    yours = tmp_path / "data" / "fraud.db"  # as `fraudops import-csv` leaves it
    write_transactions(yours, generate_frames(GeneratorConfig(3_000, seed=11)))
    before = digest(yours)
    use_env(monkeypatch, FRAUDOPS_DB_PATH=str(yours), FRAUDOPS_STATE_DIR=str(tmp_path / "state"))
    assert main(["demo", "--rows", str(MIN_DEMO_ROWS)]) == 0  # the smallest size the demo accepts works
    out = capsys.readouterr().out
    assert digest(yours) == before
    demo_state = (tmp_path / "state" / "demo").resolve()
    assert f"demo state (data, registry, artifacts): {demo_state}" in out
    assert (demo_state / "lake" / "transactions").is_dir() and "Production" in out  # the demo writes its own lake


def test_a_demo_too_small_to_learn_from_is_refused_before_anything_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fraudops_dev.demo import MIN_DEMO_ROWS

    use_env(monkeypatch, FRAUDOPS_DB_PATH=str(tmp_path / "fraud.db"), FRAUDOPS_STATE_DIR=str(tmp_path / "state"))
    assert main(["demo", "--rows", "20000"]) == 2
    err = capsys.readouterr().err
    assert f"ROWS={MIN_DEMO_ROWS}" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "state").exists() and not (tmp_path / "fraud.db").exists()


def test_make_clean_keeps_your_tables_and_says_so(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "fraud.db").write_bytes(b"imported")
    (tmp_path / ".fraudops").mkdir()
    done = subprocess.run(
        ["make", "-f", str(root / "Makefile"), "clean", f"VENV={tmp_path / 'v'}", f"TOOLS_VENV={tmp_path / 't'}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "data" / "fraud.db").read_bytes() == b"imported"
    assert "kept data/fraud.db" in done.stdout and not (tmp_path / ".fraudops").exists()


# --- item 6: the local state can move --------------------------------------------------------------------


def test_a_moved_state_folder_serves_batch_scores_reconciles_and_trains_from_its_new_place(
    promoted_state: Path, tmp_path: Path, small_db: Path
) -> None:
    from fraudops_dev.batch_local import RunOptions, results_rows, run_batch_locally
    from fraudops_dev.local import post_json, serve_in_thread

    from fraudops.api.app import build_default_app
    from fraudops.api.schemas import EXAMPLE_TRANSACTION
    from fraudops.stages.rollback import reconcile
    from fraudops.stages.train import run_training

    old = tmp_path / "old" / "state"
    shutil.copytree(promoted_state, old)
    settings = fast_settings(db_path=small_db, state_dir=old, api_keys="key-one")
    new = tmp_path / "elsewhere" / "state"
    shutil.move(old, new)  # as `mv .fraudops` or a copy to another machine
    moved = settings.model_copy(update={"state_dir": new})

    with serve_in_thread(build_default_app(moved), free_port()) as base:
        status, health = get_json(f"{base}/health")
        assert status == 200 and health["status"] == "ok", health
        status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, "key-one")
        assert status == 200 and answer["model_version"] == "1", answer

    source = tmp_path / "day.csv"
    source.write_text(
        "step,type,amount,oldbalanceOrg,newbalanceOrig,oldbalanceDest,newbalanceDest\n"
        "212,TRANSFER,181000.0,181000.0,0.0,0.0,0.0\n"
    )
    run = run_batch_locally(moved, source, str(tmp_path / "out"), workers=1, progress=lambda _: None,
                            options=RunOptions(100, 1, 0))  # fmt: skip
    assert run.scored == 1 and [r["model_version"] for r in results_rows(run.output)] == ["1"]

    action = reconcile(moved)
    assert action.action == "in_sync" and "load" in action.reason
    assert run_training(moved).version == "2"
    assert not old.exists()  # nothing was written to the old place


def test_reconcile_reports_in_sync_only_after_loading_the_model(promoted_state: Path, tmp_path: Path) -> None:
    from fraudops.core.errors import PromotionError
    from fraudops.stages.rollback import reconcile

    state = tmp_path / "state"
    shutil.copytree(promoted_state, state)
    settings = fast_settings(state_dir=state)
    reconcile(settings)
    boosters = list((state / "artifacts").rglob("booster.ubj")) or list((state / "artifacts").rglob("*.ubj"))
    assert boosters
    for booster in boosters:
        booster.write_bytes(b"damaged")
    with pytest.raises(PromotionError, match="cannot be served"):
        reconcile(settings)


# --- item 9: the stack remembers its ports ---------------------------------------------------------------


@pytest.fixture
def stack_on_other_ports(promoted_state: Path, tmp_path: Path) -> Iterator[tuple[dict[str, str], int, int]]:
    state = tmp_path / "state"
    shutil.copytree(promoted_state, state)
    api, ui = free_port(), free_port()
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(state), "FRAUDOPS_API_KEYS": "key-one",
           "FRAUDOPS_API_PORT": str(api), "FRAUDOPS_MLFLOW_UI_PORT": str(ui)}  # fmt: skip
    yield env, api, ui
    subprocess.run([sys.executable, "-m", "fraudops_dev.cli", "down"], env=env, capture_output=True, timeout=60)


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fraudops_dev.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


def test_the_stack_remembers_its_ports(stack_on_other_ports: tuple[dict[str, str], int, int]) -> None:
    env, api, ui = stack_on_other_ports
    started = cli(env, "up")
    assert started.returncode == 0, started.stderr
    plain = {k: v for k, v in env.items() if k not in {"FRAUDOPS_API_PORT", "FRAUDOPS_MLFLOW_UI_PORT"}}
    again = cli(plain, "up")  # a new shell without the port variables
    assert again.returncode == 0, again.stderr
    assert f"already running: http://{LOCALHOST}:{api}" in again.stdout
    assert f"MLflow UI: http://{LOCALHOST}:{ui}" in again.stdout and f":{5001}" not in again.stdout
    predicted = cli(plain, "predict")
    assert predicted.returncode == 0 and '"status": 200' in predicted.stdout, predicted.stdout + predicted.stderr


# --- item 10: a key in the URL is never logged -----------------------------------------------------------


def test_a_key_sent_in_the_query_string_is_masked_in_the_api_log(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    env = {**os.environ, "FRAUDOPS_STATE_DIR": str(tmp_path / "state"), "FRAUDOPS_API_KEYS": "key-one"}
    server = subprocess.Popen(
        [sys.executable, "-m", "fraudops_dev.cli", "serve", "--port", str(port), "--log-file", str(log)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_http(f"http://{LOCALHOST}:{port}/health", timeout=60, accept=(200, 503))
        for query in ("api_key=sup3r-s3cret-1", "x=1&apikey=sup3r-s3cret-2&y=2", "key=sup3r-s3cret-3"):
            request = urllib.request.Request(f"http://{LOCALHOST}:{port}/model?{query}")
            with contextlib.suppress(urllib.error.HTTPError):  # 401 (no header key): logged all the same
                urllib.request.urlopen(request, timeout=10).close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and log.read_text().count("/model?") < 3:
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert text.count("/model?") == 3 and "[REDACTED]" in text
    assert "sup3r-s3cret" not in text and "x=1&apikey=[REDACTED]&y=2" in text


# --- item 13: the CLI ------------------------------------------------------------------------------------


def test_history_shows_the_whole_actor(
    promoted_state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    shutil.copytree(promoted_state, state)
    actor = "arn:aws:states:us-east-1:123456789012:execution:RetrainStateMachine-abc:drift-2026-11-29T10-00"
    settings = fast_settings(state_dir=state)
    history.commit(settings, history.new_change(settings, "rolled_back", "2", "1", "a test", actor))
    use_env(monkeypatch, FRAUDOPS_STATE_DIR=str(state))
    assert main(["history"]) == 0
    assert actor in capsys.readouterr().out


def test_a_state_dir_that_holds_no_state_is_refused_and_left_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = tmp_path / ".fraudpos"
    use_env(monkeypatch, FRAUDOPS_STATE_DIR=str(typo))
    for argv in (["history"], ["rollback", "--reason", "bad model"], ["reconcile"], ["promote"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert "holds no fraudops state" in err and "FRAUDOPS_STATE_DIR" in err and len(err.splitlines()) == 1
    assert not (typo / "mlflow.db").exists()


def test_retrain_local_is_the_same_command_as_retrain() -> None:
    from fraudops_dev.cli import build_parser

    commands = dict(build_parser()._subparsers._group_actions[0].choices or {})  # type: ignore[union-attr]
    assert commands["retrain-local"] is commands["retrain"]
    assert build_parser().format_help().count("run the retraining state machine") == 1
