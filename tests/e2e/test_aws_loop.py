"""The loop in emulated AWS, no person: moto's S3, Lambda and Step Functions (the real ASL).

The API handler's capture lines are delivered the way Firehose delivers them (gzip objects under the
capture prefix of the model bucket), labels arrive through ``POST /feedback``, the monitor function
finds drift and starts the retrain state machine, whose Curate step feeds the labeled traffic into the
lake in the data bucket, Train learns the new pattern from it, Promote promotes it, and the API serves
it. Weeks of label maturity are compressed to none (FRAUDOPS_LABEL_MATURITY_DAYS=0)."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames
from fraudops_dev.emulation import emulated_retraining

from fraudops.core.config import Settings, get_settings
from fraudops.lake import Lake
from fraudops.lake.transactions import write_transaction_frames
from fraudops.store import blob_store
from tests.helpers.events import api_gateway_event, lambda_context
from tests.helpers.stack import fresh_import

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

KEY = "loop-key"
FIELDS = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest", "oldbalanceDest",
          "newbalanceDest"]  # fmt: skip
ENV = {
    "FRAUDOPS_N_ESTIMATORS": "80", "FRAUDOPS_EARLY_STOPPING_ROUNDS": "15", "FRAUDOPS_N_THREADS": "2",
    "FRAUDOPS_PROMOTION_FLOOR": "0.3", "FRAUDOPS_API_KEYS": KEY, "FRAUDOPS_MODEL_REFRESH_SECONDS": "0",
    "FRAUDOPS_LABEL_MATURITY_DAYS": "0", "FRAUDOPS_CURATION_SETTLE_MINUTES": "0", "FRAUDOPS_DRIFT_WINDOWS": "1",
    "FRAUDOPS_RETRAIN_COOLDOWN_HOURS": "0",
}  # fmt: skip


def call(api: Any, method: str, path: str, body: Any) -> tuple[dict[str, Any], list[str]]:
    """One API Gateway proxy event through the API handler; returns the body and the capture log lines."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # what Lambda ships to CloudWatch Logs
        response = api.handler(api_gateway_event(method, path, body, {"x-api-key": KEY}), lambda_context())
    assert response["statusCode"] == 200, response["body"]
    return json.loads(response["body"]), [
        line for line in out.getvalue().splitlines() if '"fraudops_capture":1' in line
    ]


def send_window(api: Any, rows: Any, prefix: str, labels: bool = True) -> tuple[list[str], set[str]]:
    lines, versions = [], set()
    records = rows[FIELDS].to_dict("records")
    for start in range(0, len(records), 1000):
        batch = [{**r, "transaction_id": f"{prefix}-{start + i}"} for i, r in enumerate(records[start : start + 1000])]
        body, captured = call(api, "POST", "/predict/batch", {"transactions": batch})
        lines += captured
        versions.add(body["model_version"])
    # Chargebacks: only frauds get a label; the rest become isFraud=0 when their maturity window passes
    # (0 days here): curation's label maturity, not a label per transaction, makes the legitimate rows.
    feedback = [{"transaction_id": f"{prefix}-{i}", "is_fraud": True} for i, f in enumerate(rows["isFraud"]) if f]
    for start in range(0, len(feedback) if labels else 0, 1000):
        call(api, "POST", "/feedback", {"labels": feedback[start : start + 1000]})
    return lines, versions


def deliver_like_firehose(lines: list[str], number: int) -> None:
    """Firehose writes gzip objects of newline-delimited records under <prefix>/YYYY/MM/DD/HH/ (UTC)."""
    now = datetime.now(UTC)
    key = f"capture/{now:%Y/%m/%d/%H}/fraudops-capture-{number}-{now:%Y-%m-%d-%H-%M-%S}.gz"
    blob_store(get_settings()).put(key, gzip.compress(("\n".join(lines) + "\n").encode()), "application/gzip")


def test_drift_to_served_retrained_model_in_emulated_aws(tmp_path: Path) -> None:
    history = Settings(lake_uri=str(tmp_path / "history"))
    write_transaction_frames(
        Lake(history).transactions, generate_frames(GeneratorConfig(30_000, seed=42, fraud_rate=0.01))
    )
    with emulated_retraining(ENV) as emulation:
        emulation.upload_data(history)
        os.environ["FRAUDOPS_RETRAIN_STATE_MACHINE_ARN"] = emulation.state_machine_arn
        get_settings.cache_clear()
        try:
            first = emulation.run()
            assert first.status == "SUCCEEDED" and first.output["promotion"]["outcome"] == "promoted", first.cause
            assert first.output["curation"]["rows_curated"] == 0  # nothing captured yet

            api = fresh_import("api_function")
            started = datetime.now(UTC) - timedelta(seconds=1)
            drifted = generate(GeneratorConfig(30_000, seed=43, fraud_rate=0.01, drift="evasive-takeover",
                                               step_offset=744))  # fmt: skip
            lines, served = send_window(api, drifted, "d")
            assert served == {"1"} and len(lines) == 30_000
            deliver_like_firehose(lines, 1)

            monitor = fresh_import("monitor_function")
            window = {"since": started.isoformat(), "until": datetime.now(UTC).isoformat()}
            report = monitor.handler(window, lambda_context())
            assert report["records"] == 30_000 and report["drifted"], report
            execution = report["retraining"]["started"]
            assert execution.startswith("arn:aws:states:")
            result = emulation.wait(execution)
            assert result.status == "SUCCEEDED", result.cause
            assert result.output["curation"]["rows_curated"] == 30_000  # the labeled traffic, fed in by Curate
            assert result.output["promotion"]["outcome"] == "promoted"
            assert result.output["promotion"]["production_version"] == "2"

            after = generate(GeneratorConfig(4_000, seed=44, fraud_rate=0.01, drift="evasive-takeover",
                                             step_offset=2 * 744))  # fmt: skip
            _, served = send_window(api, after, "a", labels=False)
            assert served == {"2"}  # the API follows the manifest: the retrained model serves

            from fraudops.store import ModelStore

            settings = get_settings()
            with ModelStore(settings).session() as client:
                run = client.get_run(str(client.get_model_version(settings.model_name, "2").run_id))
                assert run.inputs is not None
                inputs = run.inputs.dataset_inputs
                assert len(inputs) == 1 and inputs[0].dataset.name == "lake.transactions"
                tags = {t.key: t.value for t in inputs[0].tags}
                assert tags["rows"] == str(60_000)  # history + the matured labeled traffic
                assert inputs[0].dataset.source_type == "s3"
        finally:
            os.environ.pop("FRAUDOPS_RETRAIN_STATE_MACHINE_ARN", None)
            get_settings.cache_clear()
