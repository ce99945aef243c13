"""`make demo`: the whole loop on the embedded local default, narrated step by step.

generate data -> train + register (MLflow's SQLite registry, artifacts on disk) -> promote -> API under
uvicorn on 127.0.0.1 -> key-authenticated predictions over real HTTP. The demo keeps all its state,
its generated database included, in <state_dir>/demo: it never touches your data (``data/fraud.db``,
whatever you imported) nor the registry of your `make up` stack.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time

from pydantic import SecretStr

from fraudops.core.config import Settings

LEGIT_PAYMENT = {
    "step": 130,
    "type": "PAYMENT",
    "amount": 9839.64,
    "oldbalanceOrg": 170136.0,
    "newbalanceOrig": 160296.36,
    "oldbalanceDest": 0.0,
    "newbalanceDest": 0.0,
}


# The smallest generated table the demo learns from on every seed we tried: below it, too few fraud
# rows (PaySim's 0.129%) reach the held-out steps for the model to pass the promotion floor, and the
# demo would end in a 503. Measured with `measure_minimum` below (python -m fraudops_dev.demo;
# docs/data.md#demo-size): 20,000 rows hold 26 fraud rows and fail.
MIN_DEMO_ROWS = 50_000


def check_demo_rows(rows: int) -> None:
    """Refuse up front, before anything is generated or trained, a size the model cannot learn from."""
    if rows < MIN_DEMO_ROWS:
        raise ValueError(
            f"--rows {rows:,} is too few to learn from (about {rows * 0.00129:.0f} fraud rows): the model would "
            f"not pass the promotion floor and the demo would end without a served model. Use at least "
            f"{MIN_DEMO_ROWS:,} (make demo ROWS={MIN_DEMO_ROWS})"
        )


def _step(number: int, title: str) -> float:
    print(f"\n[{number}/5] {title}", flush=True)
    return time.perf_counter()


def _done(started: float, detail: str = "") -> None:
    print(f"      done in {time.perf_counter() - started:.1f}s {detail}", flush=True)


def run_demo(settings: Settings, rows: int, seed: int) -> int:
    from fraudops.api import EXAMPLE_TRANSACTION, build_default_app
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops.stages.promote import run_promotion
    from fraudops.stages.train import run_training
    from fraudops_dev.datagen import GeneratorConfig, generate_frames
    from fraudops_dev.local import free_port, get_json, post_json, serve_in_thread

    check_demo_rows(rows)
    total = time.perf_counter()
    state = settings.state_dir / "demo"
    shutil.rmtree(state, ignore_errors=True)
    database = state / "fraud.db"  # the demo's own: your FRAUDOPS_DB_PATH is never written
    api_key = secrets.token_urlsafe(24)  # made for this run only; never written to the repo
    demo = settings.model_copy(
        update={
            "storage": "local",
            "state_dir": state,
            "db_path": database,
            "tracking_uri": None,
            "registry_s3_key": None,
            "lake_uri": None,
            "api_keys": SecretStr(api_key),
            "model_refresh_seconds": 1.0,
        }
    )

    lake = Lake(demo)
    print(
        f"demo state (data, registry, artifacts): {state.resolve()}; your {settings.db_path} and lake are not touched"
    )
    started = _step(1, f"generate {rows:,} PaySim-schema transactions into the lake at {lake.root_uri}")
    write_transaction_frames(lake.transactions, generate_frames(GeneratorConfig(n_rows=rows, seed=seed)))
    _done(started)

    started = _step(2, "train XGBoost, log the run to MLflow and register a version")
    result = run_training(demo)
    _done(started, f"(registry {state / 'mlflow.db'}, artifacts {demo.local_artifact_dir})")
    print("      " + json.dumps(result.summary()))

    started = _step(3, "promote: compare with Production on the held-out steps")
    decision = run_promotion(demo)
    _done(started, f"-> {decision.outcome}: {decision.reason}")
    if decision.production_version is None:
        print(
            f"\nthe model did not reach Production, so there is nothing to serve: generate more rows "
            f"(make demo ROWS={2 * rows}). The state is kept in {state.resolve()}."
        )
        return 1

    started = _step(4, "serve the Production model: FastAPI under uvicorn on 127.0.0.1")
    with serve_in_thread(build_default_app(demo), free_port()) as base:
        _done(started, f"({base}, docs at {base}/docs)")

        _step(5, "send key-authenticated predictions over HTTP")
        for label, body in (("account takeover", EXAMPLE_TRANSACTION), ("ordinary payment", LEGIT_PAYMENT)):
            status, answer = post_json(f"{base}/predict", body, api_key)
            print(f"      POST /predict ({label}) -> {status} {json.dumps(_shown(answer))}")
            if status != 200:
                return 1
        status, info = get_json(f"{base}/model", api_key)
        print(f"      GET /model -> {status} {bands_line(info)}")
        if status != 200:
            return 1
        status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, None)
        print(f"      POST /predict without a key -> {status} {json.dumps(answer)}")
        if status != 401:
            return 1
    print(
        f"\ndemo finished in {time.perf_counter() - total:.1f}s: model version {result.version} is Production "
        f"in the demo's own state, {state.resolve()} (`make clean` removes it)."
    )
    return 0


def _shown(answer: object) -> object:
    """A /predict answer as the demo prints it: every field, the reasons by label and direction only (the
    full reasons, with values and contributions, are in the API's answer; docs/decisions.md)."""
    if not isinstance(answer, dict) or "reasons" not in answer:
        return answer
    reasons = [f"{r.get('label', r.get('feature'))} ({r.get('direction')})" for r in answer["reasons"]]
    return {**answer, "reasons": reasons}


def bands_line(info: object) -> str:
    """The served bands, the rule that chose them and what they flag: why the review queue is its size."""
    if not isinstance(info, dict) or not isinstance(info.get("decision_bands"), dict):
        return json.dumps(info)
    bands, metrics = info["decision_bands"], info.get("metrics", {})
    block = "never" if bands.get("block_at") is None else f"{bands['block_at']:.6g}"
    line = f"bands review_at {bands['review_at']:.6g}, block_at {block}"
    if "rule" in bands:
        line += (f"; rule {bands['rule']} ({bands.get('reason', '')}); validation: "
                 f"{bands['alerts_per_1000']:.2f} alerts and {bands['flagged_per_1000']:.2f} flagged per 1,000 "
                 f"(budget {bands['alert_budget_per_1000']:g})")  # fmt: skip
    if "money_alerts_per_1000" in metrics:
        line += f"; holdout: {metrics['money_alerts_per_1000']:.2f} alerts per 1,000"
        if "money_flagged_per_1000" in metrics:
            line += f", {metrics['money_flagged_per_1000']:.2f} flagged"
    return line


def measure_minimum(settings: Settings, sizes: list[int], seeds: list[int]) -> list[dict[str, object]]:
    """How MIN_DEMO_ROWS was chosen: the demo's own generate -> train -> promote, at each size and
    seed, in a throwaway folder; a size works when every seed ends with a Production model."""
    import tempfile
    from pathlib import Path

    from fraudops.core.errors import TrainingError
    from fraudops.stages.promote import run_promotion
    from fraudops.stages.train import run_training
    from fraudops_dev.datagen import GeneratorConfig, generate_frames
    from fraudops_dev.sqlite_io import write_transactions

    results: list[dict[str, object]] = []
    for rows in sizes:
        for seed in seeds:
            with tempfile.TemporaryDirectory(prefix="fraudops-demo-size-") as folder:
                trial = settings.model_copy(
                    update={"storage": "local", "state_dir": Path(folder), "db_path": Path(folder) / "fraud.db",
                            "tracking_uri": None, "registry_s3_key": None, "seed": seed}
                )  # fmt: skip
                config = GeneratorConfig(n_rows=rows, seed=seed)
                write_transactions(trial.db_path, generate_frames(config))
                try:
                    result = run_training(trial)
                except TrainingError as error:  # too few fraud rows to split: as much a failure
                    results.append({"rows": rows, "seed": seed, "promoted": False, "error": str(error)})
                else:
                    decision = run_promotion(trial)
                    results.append({"rows": rows, "seed": seed, "holdout_auprc": result.summary()["holdout_auprc"],
                                    "promoted": decision.production_version is not None})  # fmt: skip
                print(json.dumps(results[-1], default=str), flush=True)
    return results


if __name__ == "__main__":  # python -m fraudops_dev.demo 20000 30000 40000 [--seeds 42 7 2026]
    import sys

    from fraudops.core.config import get_settings

    sizes, _, seeds = " ".join(sys.argv[1:]).partition("--seeds")
    measure_minimum(get_settings(), [int(n) for n in sizes.split()], [int(n) for n in seeds.split()] or [42, 7, 2026])
