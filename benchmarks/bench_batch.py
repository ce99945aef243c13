"""4. Batch: /predict/batch rows/s at 1, 100 and 1,000 rows through the Lambda handler; offline scoring
(the batch Lambda's inner loop: features + XGBoost's C library) of 1M rows; the batch Lambda's handler
per process (validate CSV strings, score, write the part file); each against the raw booster
(``xgboost.Booster.inplace_predict`` on pre-built float32 rows) in the same run. Then a projection for
100M rows through the BatchScoreStateMachine at 100 and 1,000 concurrent batches, from AWS's prices."""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import time
from typing import Any

from benchmarks.common import ROOT, local_store, print_table, time_calls, write_result

SIZES = (1, 100, 1_000)
OFFLINE_ROWS = 1_000_000
BATCH_ROWS = 1_000

# AWS list prices, us-east-1, x86 (checked 2025): https://aws.amazon.com/lambda/pricing/ ,
# https://aws.amazon.com/step-functions/pricing/ , https://aws.amazon.com/s3/pricing/
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1e6
SFN_STANDARD_TRANSITION = 0.025 / 1000  # the Map Run: one transition per child execution started
SFN_EXPRESS_REQUEST = 1.00 / 1e6  # each child (one batch) is an Express execution
SFN_EXPRESS_GB_SECOND = 0.00001667  # billed in 64 MB
S3_PUT = 0.005 / 1000
BATCH_MEMORY_GB = 1769 / 1024  # the template's BatchMemorySize: one full vCPU
INVOKE_OVERHEAD_S = 0.060  # assumed: child start + Lambda invoke + S3 PUT of the part (not measurable here)
PROJECTED_ROWS = 100_000_000


def _raw_booster(raw: bytes, threads: int) -> Any:
    import xgboost as xgb

    booster = xgb.Booster()
    booster.load_model(bytearray(raw))
    booster.set_param({"nthread": threads})
    return booster


def _median(fn: Any, repeats: int) -> float:
    return sorted(time_calls(fn, repeats, warmup=5))[repeats // 2]


def main() -> dict[str, Any]:
    from fraudops_dev.datagen import GeneratorConfig, generate
    from fraudops_dev.sqlite_io import load_training_frame

    from fraudops.core.schema import RAW_FEATURE_COLUMNS
    from fraudops.store import read_uri
    from fraudops.training.dataset import raw_columns
    from tests.helpers.events import api_gateway_event, lambda_context

    results: dict[str, Any] = {"batch": {}, "offline": {}, "batch_lambda": {}}
    rows = []
    with local_store() as store:
        sys.modules.pop("api_function", None)
        api = importlib.import_module("api_function")
        loaded = api.app.state.model_provider.get()
        model, manifest = loaded.model, loaded.manifest
        from fraudops.core.config import get_settings

        booster_raw = read_uri(get_settings(), manifest.booster_uri)
        raw_one = _raw_booster(booster_raw, 1)
        frame = load_training_frame(store.db_path).head(BATCH_ROWS)
        records = [
            {c: (str(v) if c == "type" else (int(v) if c == "step" else float(v))) for c, v in zip(RAW_FEATURE_COLUMNS, row, strict=True)}
            for row in frame[list(RAW_FEATURE_COLUMNS)].itertuples(index=False, name=None)
        ]  # fmt: skip
        context = lambda_context("bench")
        for size in SIZES:
            event = api_gateway_event(
                "POST", "/predict/batch", {"transactions": records[:size]}, {"x-api-key": "bench-key"}
            )
            assert api.handler(event, context)["statusCode"] == 200
            repeats = max(30, 3_000 // size)
            matrix = model.features(raw_columns(frame.head(size)))
            handler_s = _median(lambda e=event: api.handler(e, context), repeats)
            raw_s = _median(lambda m=matrix: raw_one.inplace_predict(m), repeats)
            sink, api.app.state.capture = api.app.state.capture, None  # the same, without capturing decisions
            uncaptured_s = _median(lambda e=event: api.handler(e, context), repeats)
            api.app.state.capture = sink
            results["batch"][str(size)] = {"handler_rows_per_s": size / handler_s, "raw_rows_per_s": size / raw_s,
                                           "ratio": raw_s / handler_s, "no_capture_ratio": raw_s / uncaptured_s}  # fmt: skip
            rows.append([f"/predict/batch x{size}", size / handler_s, size / raw_s, raw_s / handler_s])
            rows.append(["  same, capture off", size / uncaptured_s, size / raw_s, raw_s / uncaptured_s])

        # The batch Lambda's handler, per process: a Map batch of CSV strings, as the ItemReader reads them.
        sys.path.insert(0, str(ROOT / "functions" / "batch"))
        batch_function = importlib.import_module("batch_function")
        # A full PaySim CSV row, as a real file has it (ids, names and labels ride along to the output)
        items = [
            {"index": i, "row": {"transaction_id": f"tx{i:09d}", **{k: str(v) for k, v in r.items()},
                                 "nameOrig": f"C{1_000_000_000 + i}", "nameDest": f"M{1_900_000_000 + i}",
                                 "isFraud": "0", "isFlaggedFraud": "0"}}
            for i, r in enumerate(records)
        ]  # fmt: skip
        item_bytes = sum(len(json.dumps(i, separators=(",", ":"))) for i in items) / len(items)
        with tempfile.TemporaryDirectory() as out:
            from dataclasses import asdict

            event = {"Items": items, "BatchInput": {"model": asdict(manifest), "format": "csv", "output": out}}
            os.environ["FRAUDOPS_BATCH_BOOSTER_THREADS"] = "1"  # per process: a 1-vCPU Lambda
            get_settings.cache_clear()
            batch_s = _median(lambda: batch_function.handler(event, context), 30)
        matrix = model.features(raw_columns(frame))
        raw_s = _median(lambda: raw_one.inplace_predict(matrix), 30)
        results["batch_lambda"] = {"rows": BATCH_ROWS, "seconds": batch_s, "rows_per_s": BATCH_ROWS / batch_s,
                                   "raw_rows_per_s": BATCH_ROWS / raw_s, "ratio": raw_s / batch_s,
                                   "item_bytes": item_bytes}  # fmt: skip
        rows.append([f"batch Lambda handler, {BATCH_ROWS:,} CSV rows (validate+score+write)", BATCH_ROWS / batch_s,
                     BATCH_ROWS / raw_s, raw_s / batch_s])  # fmt: skip

        big = generate(GeneratorConfig(OFFLINE_ROWS, seed=1))
        columns = {c: big[c].to_numpy() for c in RAW_FEATURE_COLUMNS}
        from fraudops.serving.served import ServedModel

        big_matrix = model.features(columns)
        for threads, label in ((1, "1 thread: the batch Lambda's one vCPU"), (0, "all cores")):
            offline_model = ServedModel(model.spec, manifest.version, model.compiled, booster_raw, threads)
            offline_model.predict_proba({c: v[:1000] for c, v in columns.items()})  # warm up
            started = time.perf_counter()
            scores = offline_model.predict_proba(columns)
            offline_s = time.perf_counter() - started
            raw = _raw_booster(booster_raw, threads)
            raw.inplace_predict(big_matrix[:1000])
            started = time.perf_counter()
            raw.inplace_predict(big_matrix)
            raw_big_s = time.perf_counter() - started
            assert len(scores) == OFFLINE_ROWS
            results["offline"][label] = {"rows": OFFLINE_ROWS, "seconds": offline_s, "raw_seconds": raw_big_s,
                                         "rows_per_s": OFFLINE_ROWS / offline_s, "raw_rows_per_s": OFFLINE_ROWS / raw_big_s,
                                         "ratio": raw_big_s / offline_s}  # fmt: skip
            rows.append([f"offline, {OFFLINE_ROWS:,} rows, features + C library, {label}", OFFLINE_ROWS / offline_s,
                         OFFLINE_ROWS / raw_big_s, raw_big_s / offline_s])  # fmt: skip
    print_table("Batch scoring, rows/s", ["path", "rows/s", "raw booster rows/s", "ratio"], rows)
    results["projection"] = projection(results["batch_lambda"])
    write_result("batch", results)
    write_doc(results)
    return results


def write_doc(results: dict[str, Any]) -> None:
    """docs/batch-scaling.md from this run's figures."""
    from benchmarks.common import machine

    info, batch, offline, lam, proj = (machine(), results["batch"], results["offline"], results["batch_lambda"],
                                       results["projection"])  # fmt: skip
    lines = [
        "# Batch scoring at scale",
        "",
        f"Generated by `python -m benchmarks.bench_batch` on {info['date']}, commit `{info['commit']}`, on this "
        f"machine ({info['cores']} cores, Python {info['python']}). Every figure is rows/s against the raw booster "
        "(`xgboost.Booster.inplace_predict` on pre-built float32 rows) measured in the same run.",
        "",
        "| path | rows/s | raw booster rows/s | ratio |",
        "|---|---|---|---|",
        *[
            f"| `/predict/batch` x{size} through the Lambda handler | {b['handler_rows_per_s']:,.0f} | "
            f"{b['raw_rows_per_s']:,.0f} | {b['ratio']:.2f} (capture off: {b['no_capture_ratio']:.2f}) |"
            for size, b in batch.items()
        ],
        f"| batch Lambda handler, {lam['rows']:,} CSV rows: validate, score, write the part (1 thread) | "
        f"{lam['rows_per_s']:,.0f} | {lam['raw_rows_per_s']:,.0f} | {lam['ratio']:.2f} |",
        *[
            f"| offline, {o['rows']:,} rows: features + XGBoost's C library, {label} | {o['rows_per_s']:,.0f} | "
            f"{o['raw_rows_per_s']:,.0f} | {o['ratio']:.2f} |"
            for label, o in offline.items()
        ],
        "",
        "The batch Lambda's time goes mostly to validating each row with the API's own rules (the pydantic model "
        "that names the field in every error); the scoring itself (the offline row) runs at the booster's speed.",
        "",
        f"## Projection: {proj['rows']:,} rows",
        "",
        f"Each batch is {proj['rows_per_batch']:,} rows (the 240 KiB Map batch limit at "
        f"{lam['item_bytes']:.0f} bytes per item), one Lambda of 1,769 MB (one vCPU) running the measured handler "
        f"plus {proj['assumed_invoke_overhead_s'] * 1000:.0f} ms assumed for the child start, the invoke and the "
        f"S3 PUT: {proj['batch_seconds'] * 1000:.0f} ms per batch, {proj['batches']:,} batches.",
        "",
        "| concurrent batches | rows/s | wall time | cost |",
        "|---|---|---|---|",
        *[
            f"| {int(c):,} | {v['rows_per_s']:,.0f} | {v['wall_seconds'] / 60:.1f} min | ${proj['dollars']:.2f} |"
            for c, v in proj["by_concurrency"].items()
        ],
        "",
        f"Cost, the same at any concurrency: Lambda ${proj['dollars_lambda']:.2f} (GB-seconds and requests), "
        f"Step Functions ${proj['dollars_step_functions']:.2f} (one Map Run transition and one Express child per "
        f"batch), S3 ${proj['dollars_s3']:.2f} (one PUT per part), at us-east-1 list prices. At 1,000 concurrent "
        "batches the account's Lambda concurrency quota (1,000 by default) must be raised, or the run shares it "
        "with the API.",
        "",
    ]
    (ROOT / "docs" / "batch-scaling.md").write_text("\n".join(lines))


def projection(measured: dict[str, Any]) -> dict[str, Any]:
    """100M rows through the state machine: every batch a Lambda of one vCPU running the measured handler."""
    rows_per_batch = min(BATCH_ROWS, int(245_760 // measured["item_bytes"]))  # the Map's 240 KiB batch cap
    batch_seconds = rows_per_batch / measured["rows_per_s"] + INVOKE_OVERHEAD_S
    batches = -(-PROJECTED_ROWS // rows_per_batch)
    lambda_cost = batches * (batch_seconds * BATCH_MEMORY_GB * LAMBDA_GB_SECOND + LAMBDA_REQUEST)
    sfn_cost = batches * (
        SFN_STANDARD_TRANSITION + SFN_EXPRESS_REQUEST + batch_seconds * 0.0625 * SFN_EXPRESS_GB_SECOND
    )
    s3_cost = batches * S3_PUT
    table, result = [], {"rows": PROJECTED_ROWS, "rows_per_batch": rows_per_batch, "batch_seconds": batch_seconds,
                         "batches": batches, "dollars": lambda_cost + sfn_cost + s3_cost,
                         "dollars_lambda": lambda_cost, "dollars_step_functions": sfn_cost, "dollars_s3": s3_cost,
                         "assumed_invoke_overhead_s": INVOKE_OVERHEAD_S, "by_concurrency": {}}  # fmt: skip
    for concurrency in (100, 1_000):
        rate = concurrency * rows_per_batch / batch_seconds
        wall = PROJECTED_ROWS / rate
        result["by_concurrency"][str(concurrency)] = {"rows_per_s": rate, "wall_seconds": wall}
        table.append([f"{concurrency:,} concurrent batches", rate, wall / 60, result["dollars"]])
    print_table(
        f"Projection: {PROJECTED_ROWS:,} rows, {rows_per_batch:,} rows per batch, {batch_seconds * 1000:.0f} ms per "
        f"batch (measured handler + {INVOKE_OVERHEAD_S * 1000:.0f} ms assumed overhead)",
        ["concurrency", "rows/s", "wall minutes", "dollars"],
        table,
    )
    return result


if __name__ == "__main__":
    main()
