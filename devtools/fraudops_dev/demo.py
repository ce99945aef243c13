"""`make demo`: the whole loop on the embedded local default, narrated step by step.

generate data -> train + register (MLflow's SQLite registry, artifacts on disk) -> promote -> API under
uvicorn on 127.0.0.1 -> key-authenticated predictions over real HTTP. The demo keeps its own state in
<state_dir>/demo, so it never touches the registry of your `make up` stack.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time

from pydantic import SecretStr

from fraudops.config import Settings

LEGIT_PAYMENT = {
    "step": 130,
    "type": "PAYMENT",
    "amount": 9839.64,
    "oldbalanceOrg": 170136.0,
    "newbalanceOrig": 160296.36,
    "oldbalanceDest": 0.0,
    "newbalanceDest": 0.0,
}


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
    from fraudops_dev.local import free_port, post_json, serve_in_thread

    total = time.perf_counter()
    state = settings.state_dir / "demo"
    shutil.rmtree(state, ignore_errors=True)
    api_key = secrets.token_urlsafe(24)  # made for this run only; never written to the repo
    demo = settings.model_copy(
        update={
            "storage": "local",
            "state_dir": state,
            "tracking_uri": None,
            "registry_s3_key": None,
            "lake_uri": None,
            "api_keys": SecretStr(api_key),
            "model_refresh_seconds": 1.0,
        }
    )

    lake = Lake(demo)
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

    started = _step(4, "serve the Production model: FastAPI under uvicorn on 127.0.0.1")
    with serve_in_thread(build_default_app(demo), free_port()) as base:
        _done(started, f"({base}, docs at {base}/docs)")

        _step(5, "send key-authenticated predictions over HTTP")
        for label, body in (("account takeover", EXAMPLE_TRANSACTION), ("ordinary payment", LEGIT_PAYMENT)):
            status, answer = post_json(f"{base}/predict", body, api_key)
            print(f"      POST /predict ({label}) -> {status} {json.dumps(answer)}")
            if status != 200:
                return 1
        status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, None)
        print(f"      POST /predict without a key -> {status} {json.dumps(answer)}")
        if status != 401:
            return 1
    print(f"\ndemo finished in {time.perf_counter() - total:.1f}s: model version {result.version} is Production.")
    return 0
