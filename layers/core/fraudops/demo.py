"""`make demo`: the whole loop on the embedded local default, narrated step by step.

generate data -> moto S3 server on 127.0.0.1 -> train + register (MLflow, artifacts in S3) -> promote
-> API under uvicorn on 127.0.0.1 -> key-authenticated predictions over real HTTP.
"""

from __future__ import annotations

import json
import secrets
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

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


@contextmanager
def serve_in_thread(app: Any, port: int) -> Iterator[str]:
    """The app under a real uvicorn server on 127.0.0.1 for the length of the block."""
    import uvicorn

    from fraudops.local import LOCALHOST, wait_for_http

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


def _step(number: int, title: str) -> float:
    print(f"\n[{number}/6] {title}", flush=True)
    return time.perf_counter()


def _done(started: float, detail: str = "") -> None:
    print(f"      done in {time.perf_counter() - started:.1f}s {detail}", flush=True)


def run_demo(settings: Settings, rows: int, seed: int) -> int:
    from fraudops.api import EXAMPLE_TRANSACTION, build_default_app
    from fraudops.cli import _post_json
    from fraudops.data import write_transactions
    from fraudops.datagen import GeneratorConfig, generate_frames
    from fraudops.local import free_port, moto_s3_server
    from fraudops.promotion import run_promotion
    from fraudops.training import run_training

    total = time.perf_counter()
    state = settings.state_dir / "demo"
    shutil.rmtree(state, ignore_errors=True)
    api_key = secrets.token_urlsafe(24)  # made for this run only; never written to the repo

    started = _step(1, f"generate {rows:,} PaySim-schema transactions into {settings.db_path}")
    write_transactions(settings.db_path, generate_frames(GeneratorConfig(n_rows=rows, seed=seed)))
    _done(started)

    started = _step(2, "start moto's S3 server on 127.0.0.1 (the artifact store)")
    with moto_s3_server() as endpoint:
        demo = settings.model_copy(
            update={
                "s3_endpoint_url": endpoint,
                "state_dir": state,
                "tracking_uri": None,
                "registry_s3_key": None,
                "api_keys": SecretStr(api_key),
                "model_refresh_seconds": 1.0,
            }
        )
        _done(started, f"({endpoint}, bucket s3://{demo.model_bucket}, registry {state / 'mlflow.db'})")

        started = _step(3, "train XGBoost, log the run to MLflow and register a version")
        result = run_training(demo)
        _done(started)
        print("      " + json.dumps(result.summary()))

        started = _step(4, "promote: compare with Production on the held-out steps")
        decision = run_promotion(demo)
        _done(started, f"-> {decision.outcome}: {decision.reason}")

        started = _step(5, "serve the Production model: FastAPI under uvicorn on 127.0.0.1")
        with serve_in_thread(build_default_app(demo), free_port()) as base:
            _done(started, f"({base}, docs at {base}/docs)")

            _step(6, "send key-authenticated predictions over HTTP")
            for label, body in (("account takeover", EXAMPLE_TRANSACTION), ("ordinary payment", LEGIT_PAYMENT)):
                status, answer = _post_json(f"{base}/predict", body, api_key)
                print(f"      POST /predict ({label}) -> {status} {json.dumps(answer)}")
                if status != 200:
                    return 1
            status, answer = _post_json(f"{base}/predict", EXAMPLE_TRANSACTION, None)
            print(f"      POST /predict without a key -> {status} {json.dumps(answer)}")
            if status != 401:
                return 1
    print(f"\ndemo finished in {time.perf_counter() - total:.1f}s: model version {result.version} is Production.")
    return 0
