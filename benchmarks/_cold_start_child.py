"""Run in a fresh interpreter by bench_cold_start.py; prints one JSON line of timings (seconds)."""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import itertools  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def api_gateway_event(method: str, path: str, body: object, headers: dict[str, str]) -> dict[str, object]:
    """The sample REST event from tests/events, read by path: this child sees only the image's packages."""
    sample = os.path.join(os.path.dirname(__file__), "..", "tests", "events", "apiGatewayProxyEvent.json")
    with open(sample) as handle:
        event = json.load(handle)
    all_headers = {**event["headers"], **headers}
    event |= {"httpMethod": method, "path": path, "headers": all_headers, "body": json.dumps(body),
              "multiValueHeaders": {k: [v] for k, v in all_headers.items()}}  # fmt: skip
    event["requestContext"]["httpMethod"] = method
    return dict(event)


def lambda_context(name: str) -> object:
    from types import SimpleNamespace

    return SimpleNamespace(function_name=name, aws_request_id="cold-start", memory_limit_in_mb=1024,
                           invoked_function_arn=f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
                           function_version="$LATEST", log_group_name="/aws/lambda/cold", log_stream_name="cold",
                           get_remaining_time_in_millis=lambda: 30_000)  # fmt: skip


def api_total() -> dict[str, float]:
    """What Lambda does: import the handler module (init: app + model fetch), then one request."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "functions", "api"))
    import api_function

    initialised = time.perf_counter()

    from fraudops.api.schemas import EXAMPLE_TRANSACTION

    event = api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "bench-key"})
    response = api_function.handler(event, lambda_context("cold"))
    assert response["statusCode"] == 200, response
    done = time.perf_counter()
    return {"init": initialised - STARTED, "first_request": done - initialised, "total": done - STARTED}


def api_breakdown() -> dict[str, float]:
    """The same work, one phase at a time."""
    marks = {"start": time.perf_counter()}
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "functions", "api"))
    import mangum

    import fraudops.api
    import fraudops.core.observability
    from fraudops.core.config import get_settings
    from fraudops.serving.provider import LoadedModel, ModelProvider, served_model
    from fraudops.store import read_manifest

    marks["imports"] = time.perf_counter()
    settings = get_settings()
    manifest, etag = read_manifest(settings)
    assert manifest is not None and etag is not None
    marks["store_lookup"] = time.perf_counter()
    model = served_model(settings, manifest)  # spec + compiled trees, checksums verified
    marks["download_and_load"] = time.perf_counter()
    loaded = LoadedModel(model, manifest, etag, time.time())
    app = fraudops.api.create_app(settings, ModelProvider(settings, loader=lambda _: loaded), ["bench-key"])
    handler = mangum.Mangum(app, lifespan="off")

    from fraudops.api.schemas import EXAMPLE_TRANSACTION

    event = api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, {"x-api-key": "bench-key"})
    assert handler(event, lambda_context("cold"))["statusCode"] == 200  # type: ignore[arg-type]
    marks["first_predict"] = time.perf_counter()
    names = list(marks)
    phases = {name: marks[name] - marks[previous] for previous, name in itertools.pairwise(names)}
    return {**phases, "total": marks["first_predict"] - STARTED, "before_main": marks["start"] - STARTED}


def api_booster_path() -> dict[str, float]:
    """Yesterday's path, in the same run: the image with xgboost and scipy, the handler importing xgboost,
    and the model load compiling the booster's trees and checking them against the booster (what every
    cold start did before promotion published the compiled form)."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "functions", "api"))
    import xgboost  # noqa: F401  (the old handler imported it through fraudops.model)

    import fraudops.serving.provider
    from fraudops.model.fraud_model import FraudModel
    from fraudops.serving.served import ServedModel
    from fraudops.serving.treecompiler import compile_booster
    from fraudops.store import read_uri

    def booster_load(settings, manifest, booster_threads=1):
        booster_raw = read_uri(settings, manifest.booster_uri)
        model = FraudModel.from_bytes(booster_raw, read_uri(settings, manifest.spec_uri), manifest.version)
        return ServedModel(model.spec, manifest.version, compile_booster(model.booster), booster_raw)

    fraudops.serving.provider.served_model = booster_load
    return api_total()


def pyfunc_total() -> dict[str, float]:
    """The seed's way: mlflow.pyfunc.load_model("models:/...@production"), then one prediction."""
    import mlflow
    import pandas as pd

    imported = time.perf_counter()
    mlflow.set_tracking_uri(os.environ["BENCH_TRACKING_URI"])
    model = mlflow.pyfunc.load_model("models:/fraud-detector@production")
    loaded = time.perf_counter()
    from fraudops.api.schemas import EXAMPLE_TRANSACTION

    model.predict(pd.DataFrame([EXAMPLE_TRANSACTION]))
    done = time.perf_counter()
    return {"imports": imported - STARTED, "load_model": loaded - imported, "first_predict": done - loaded,
            "total": done - STARTED}  # fmt: skip


if __name__ == "__main__":
    mode = sys.argv[1]
    modes = {"api_total": api_total, "api_breakdown": api_breakdown, "api_booster_path": api_booster_path,
             "pyfunc_total": pyfunc_total}  # fmt: skip
    result = modes[mode]()
    print("RESULT " + json.dumps(result))
