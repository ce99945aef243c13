"""Issue 22: one change of Production (promote, manual promotion, rollback, reconcile) is all or nothing.

Each command is run once to count its storage writes, then again from the same state with a fault at
each write in turn: a ``kill -9`` (nothing more is written) and a full disk (every later write fails).
After each fault the registry's alias and the history agree (the old state, or the new one with its
event), the manifest serves the alias's version or the change is pending; the message says which; one
``reconcile`` converges all three; and running the command again never changes Production twice."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fraudops.core.config import Settings
from fraudops.core.errors import FraudopsError, PromotionError
from fraudops.production.history import read_history, read_intents
from fraudops.stages.promote import run_promotion
from fraudops.stages.rollback import reconcile, rollback
from fraudops.stages.train import run_training
from fraudops.store import ModelStore
from tests.helpers.faults import Killed, WriteFaults, write_faults
from tests.helpers.stack import manifest_version, production_version

pytestmark = pytest.mark.e2e

ANYTHING_GOES = {"promotion_floor": 0.0, "promotion_margin": -1.0, "guardrail_tolerance": 1.0,
                 "promotion_bootstrap_resamples": 20}  # fmt: skip


@pytest.fixture(scope="module")
def three_versions(tmp_path_factory: pytest.TempPathFactory, small_db: Path) -> Settings:
    """v1 and v2 promoted in turn (Production = 2), v3 registered: made once, copied per case."""
    from tests.helpers.stack import fast_settings

    state_dir = tmp_path_factory.mktemp("faults") / "state"
    settings = fast_settings(db_path=small_db, state_dir=state_dir).model_copy(update=ANYTHING_GOES)
    for _ in range(2):
        version = run_training(settings, feature_set="seed").version
        assert run_promotion(settings, version).production_version == version
    assert run_training(settings, feature_set="seed").version == "3"
    return settings


def move_alias(settings: Settings, version: str) -> None:
    """What a person does in the MLflow UI."""
    with ModelStore(settings).session() as client:
        client.set_registered_model_alias(settings.model_name, settings.production_alias, version)


# name -> (prepare, command, the version Production moves to, the history action)
Command = Callable[[Settings], Any]
COMMANDS: dict[str, tuple[Callable[[Settings], None], Command, str, str]] = {
    "promote": (lambda s: None, lambda s: run_promotion(s), "3", "promoted"),
    "force": (lambda s: None, lambda s: run_promotion(s, "3", force_reason="a person decided"), "3", "manual"),
    "rollback": (lambda s: None, lambda s: rollback(s, "v2 misbehaves", from_version="2"), "1", "rolled_back"),
    "reconcile": (lambda s: move_alias(s, "1"), lambda s: reconcile(s), "1", "reconciled"),
}


def state(settings: Settings) -> tuple[str | None, str | None, list[tuple[str, str | None, str | None]]]:
    events = [(c.action, c.from_version, c.to_version) for c in read_history(settings)]
    return production_version(settings), manifest_version(settings), events


def fresh_copy(source: Settings, target: Path) -> Settings:
    shutil.copytree(source.state_dir, target, ignore=shutil.ignore_patterns("*.lock"))
    return source.model_copy(update={"state_dir": target})


@pytest.mark.parametrize("name", list(COMMANDS))
def test_a_fault_at_any_write_leaves_the_old_state_or_the_new_one_with_its_event(
    three_versions: Settings, tmp_path: Path, name: str
) -> None:
    prepare, command, new, action = COMMANDS[name]
    original_alias = production_version(three_versions)  # restored after: the fixture is shared by the module
    prepare(three_versions)
    try:
        old_alias, old_manifest, old_events = state(three_versions)
        settings = fresh_copy(three_versions, tmp_path / "count")
        with write_faults(WriteFaults()) as counting:
            command(settings)
        total = len(counting.writes)
        assert total >= 3, counting.writes
        assert state(settings) == (new, new, [*old_events, (action, old_manifest if name == "reconcile"
                                                             else old_alias, new)])  # fmt: skip
        new_events = state(settings)[2]
        for kind in ("kill", "disk_full"):
            for at in range(1, total + 1):
                case = f"{kind} at write {at} ({counting.writes[at - 1]})"
                settings = fresh_copy(three_versions, tmp_path / f"{kind}-{at}")  # MLflow caches a store per path
                with write_faults(WriteFaults(fail_at=at, kind=kind)) as faults:
                    try:
                        command(settings)
                        failure: BaseException | None = None
                    except (Killed, FraudopsError) as error:
                        failure = error
                if failure is None:  # a full disk still lets a file be deleted: only deletes were left
                    assert not faults.failed and state(settings) == (new, new, new_events), case
                    continue
                assert faults.failed, f"{case}: {failure!r}"
                alias, published, events = state(settings)
                if (alias == old_alias and name != "reconcile") or (name == "reconcile" and events == old_events):
                    assert events == old_events, case  # the old state, untouched
                    assert published == old_manifest, case
                    if kind == "disk_full" and not isinstance(failure, Killed):
                        assert "nothing was changed" in str(failure), f"{case}: {failure}"
                    if name in {"promote", "force"}:  # no decision shown on a version that is not Production
                        with ModelStore(settings).session() as client:
                            tags = client.get_model_version(settings.model_name, "3").tags
                        assert "fraudops.promotion.decision" not in tags, case
                else:
                    assert alias == new and events == new_events, f"{case}: {alias}, {events}"  # new, with its event
                    assert published in {old_manifest, new}, case
                    if published != new:
                        assert read_intents(settings), f"{case}: the manifest lags and nothing will complete it"
                    if kind == "disk_full" and not isinstance(failure, Killed):
                        assert f"version {new} is Production in the registry" in str(failure), f"{case}: {failure}"
                reconcile(settings)  # space is back / the process is restarted: one reconcile converges
                alias, published, events = state(settings)
                assert alias == published and events[-1][2] == alias, case
                assert not read_intents(settings), case
                assert events in (old_events, new_events), f"{case}: {events}"
                try:  # the obvious retry never changes Production twice
                    command(settings)
                except PromotionError as error:
                    assert name == "rollback" and "not 2" in str(error), f"{case}: {error}"
                assert state(settings) == (new, new, new_events), case
    finally:
        move_alias(three_versions, original_alias or "2")


# --- retries and doubles never change Production twice (item 4) --------------------------------------------


def test_a_retried_or_doubled_rollback_rolls_back_once(three_versions: Settings, tmp_path: Path) -> None:
    import multiprocessing

    from tests.helpers.faults import rollback_in_child

    settings = fresh_copy(three_versions, tmp_path / "state")
    values = settings.model_dump(mode="json", exclude={"api_keys", "promotion_margin"})
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        outcomes = sorted(pool.map(rollback_in_child, [values, values]))
    assert outcomes[0] == "refused: Production is version 1, not 2" + outcomes[0].split("not 2", 1)[1]
    assert "rolled_back 2 -> 1" in outcomes[0] and outcomes[1] == "rolled_back"
    with pytest.raises(PromotionError, match="Production is version 1, not 2"):  # the obvious retry
        rollback(settings, "v2 misbehaves (retry)", from_version="2")
    assert state(settings)[:2] == ("1", "1")
    assert [event[0] for event in state(settings)[2]].count("rolled_back") == 1


def test_an_idempotency_key_replays_the_change_and_changes_nothing(three_versions: Settings, tmp_path: Path) -> None:
    settings = fresh_copy(three_versions, tmp_path / "state")
    first = run_promotion(settings, "3", force_reason="a person decided", idempotency_key="ticket-42")
    assert first.outcome == "manual" and production_version(settings) == "3"
    assert rollback(settings, "3 misbehaves", from_version="3").to_version == "2"
    again = run_promotion(settings, "3", force_reason="a person decided", idempotency_key="ticket-42")
    assert again == first  # the retry of the ticket reports it: v3 is not promoted a second time
    assert production_version(settings) == "2" and manifest_version(settings) == "2"
    assert [event[0] for event in state(settings)[2]][-2:] == ["manual", "rolled_back"]
    with pytest.raises(PromotionError, match="not 3"):
        run_promotion(settings, "3", force_reason="again", from_version="3")


def test_rollback_without_from_is_refused_naming_the_current_version(
    three_versions: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fraudops_dev.cli import main

    settings = fresh_copy(three_versions, tmp_path / "state")
    with pytest.raises(PromotionError, match="--from 2"):
        rollback(settings, "no from")
    monkeypatch.setenv("FRAUDOPS_STATE_DIR", str(settings.state_dir))
    monkeypatch.setenv("FRAUDOPS_DB_PATH", str(settings.db_path))
    assert main(["rollback", "--reason", "x", "--from", "3"]) == 2
    assert "Production is version 2, not 3" in capsys.readouterr().err
    assert state(settings)[:2] == ("2", "2")


# --- what reconcile repairs and what it refuses (items 6 and 10) ------------------------------------------


def test_a_truncated_manifest_is_republished_by_reconcile_and_by_promote(
    three_versions: Settings, tmp_path: Path
) -> None:
    from fraudops.serving.provider import load_from_manifest
    from fraudops.store import blob_store
    from fraudops.store.manifest import manifest_key

    settings = fresh_copy(three_versions, tmp_path / "state")
    store = blob_store(settings)
    whole = store.get(manifest_key(settings))
    store.put(manifest_key(settings), whole[: len(whole) // 2])
    action = reconcile(settings)
    assert action.action == "reconciled" and action.to_version == "2" and "could not be read" in action.reason
    loaded = load_from_manifest(settings)
    assert loaded is not None and loaded.manifest.version == "2"
    store.put(manifest_key(settings), whole[:40])
    assert run_promotion(settings, "2").outcome == "already_production"
    assert manifest_version(settings) == "2"


def test_a_corrupted_production_model_is_not_in_sync_and_cannot_be_forced(
    three_versions: Settings, tmp_path: Path
) -> None:
    from fraudops.model.fraud_model import BOOSTER_ARTIFACT
    from fraudops.stages.promote import artifact_location
    from fraudops.store import model_file_uri

    settings = fresh_copy(three_versions, tmp_path / "state")

    def corrupt(version: str) -> None:
        with ModelStore(settings).session() as client:
            location = artifact_location(client, client.get_model_version(settings.model_name, version))
        Path(model_file_uri(location, BOOSTER_ARTIFACT).removeprefix("file://")).write_bytes(b"not a booster")

    corrupt("2")
    with pytest.raises(PromotionError, match=r"version 2 cannot be served .*nothing was changed"):
        reconcile(settings)  # never "in sync" while the API cannot load it
    corrupt("3")
    before = state(settings)
    with pytest.raises(PromotionError, match=r"version 3 cannot be served.*nothing was changed"):
        run_promotion(settings, "3", force_reason="a person decided")
    assert state(settings) == before
    with ModelStore(settings).session() as client:
        tags = client.get_model_version(settings.model_name, "3").tags
    assert "fraudops.promotion.decision" not in tags


# --- training on a full disk, or killed (item 9) -------------------------------------------------------------


def runs_and_models(settings: Settings) -> tuple[list[str], list[str]]:
    with ModelStore(settings).session() as client:
        experiment = client.get_experiment_by_name(settings.experiment_name)
        assert experiment is not None
        runs = client.search_runs([experiment.experiment_id])
        models = client.search_logged_models(experiment_ids=[experiment.experiment_id])
    return sorted(run.info.status for run in runs), sorted(str(model.status) for model in models)


def test_training_on_a_full_disk_leaves_no_run_running(
    local_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sqlite3

    import mlflow

    from fraudops.core.errors import StoreError

    settings = local_settings
    run_training(settings, feature_set="seed")
    real_terminated = mlflow.MlflowClient.set_terminated
    calls = {"n": 0}

    def full_once(self: Any, *args: Any, **kwargs: Any) -> Any:  # MLflow's own end_run(FAILED) meets the full disk
        calls["n"] += 1
        if calls["n"] == 1:
            raise sqlite3.OperationalError("database or disk is full")
        return real_terminated(self, *args, **kwargs)

    def full(*args: Any, **kwargs: Any) -> Any:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(mlflow.MlflowClient, "set_terminated", full_once)
    monkeypatch.setattr(mlflow.MlflowClient, "create_model_version", full)
    with pytest.raises(StoreError) as error:
        run_training(settings, feature_set="seed")
    monkeypatch.undo()
    assert "database or disk is full" in str(error.value) and "autoflush" not in str(error.value)
    assert "FAILED" in str(error.value)
    statuses, models = runs_and_models(settings)
    assert statuses == ["FAILED", "FINISHED"], statuses
    assert "LoggedModelStatus.PENDING" not in models and "PENDING" not in models, models
    with ModelStore(settings).session() as client:
        experiment = client.get_experiment_by_name(settings.experiment_name)
        assert experiment is not None
        failed = client.search_runs([experiment.experiment_id], filter_string="attributes.status = 'FAILED'")
    orphan = Path(failed[0].info.artifact_uri.removeprefix("file://"))
    assert not orphan.exists(), "the failed run's artifacts were left behind"


def test_a_run_left_running_by_a_kill_is_marked_failed_by_the_next_training(local_settings: Settings) -> None:
    settings = local_settings
    run_training(settings, feature_set="seed")
    with ModelStore(settings).session() as client:  # what a kill -9 in the middle of logging leaves
        experiment = client.get_experiment_by_name(settings.experiment_name)
        assert experiment is not None
        client.create_run(experiment.experiment_id)
    assert runs_and_models(settings)[0] == ["FINISHED", "RUNNING"]
    run_training(settings, feature_set="seed")
    assert runs_and_models(settings)[0] == ["FAILED", "FINISHED", "FINISHED"]
