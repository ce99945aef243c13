"""4. Batch: /predict/batch rows/s at batch sizes 1, 100 and 1,000 through the Lambda handler, and
offline scoring of a 1M-row table; each against the raw booster on the same, pre-built rows."""

from __future__ import annotations

import importlib
import sys
import time
from typing import Any

from benchmarks.common import local_store, print_table, time_calls, write_result

SIZES = (1, 100, 1_000)
OFFLINE_ROWS = 1_000_000


def main() -> dict[str, Any]:
    from fraudops_dev.datagen import GeneratorConfig, generate

    from fraudops.data import load_training_frame, raw_columns
    from fraudops.schema import RAW_FEATURE_COLUMNS
    from tests.helpers.events import api_gateway_event, lambda_context

    results: dict[str, Any] = {"batch": {}, "offline": {}}
    rows = []
    with local_store() as store:
        sys.modules.pop("api_function", None)
        api = importlib.import_module("api_function")
        model = api.app.state.model_provider.get().model
        frame = load_training_frame(store.db_path).head(1_000)
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
            repeats = max(20, 2_000 // size)
            matrix = model.features(raw_columns(frame.head(size)))

            def call_handler(e: dict[str, Any] = event) -> Any:
                return api.handler(e, context)

            def call_booster(m: Any = matrix) -> Any:
                return model.booster.inplace_predict(m)

            handler_s = sorted(time_calls(call_handler, repeats, warmup=5))[repeats // 2]
            raw_s = sorted(time_calls(call_booster, repeats, warmup=5))[repeats // 2]
            results["batch"][str(size)] = {"handler_rows_per_s": size / handler_s, "raw_rows_per_s": size / raw_s,
                                           "ratio": raw_s / handler_s}  # fmt: skip
            rows.append([f"/predict/batch x{size}", size / handler_s, size / raw_s, raw_s / handler_s])

    big = generate(GeneratorConfig(OFFLINE_ROWS, seed=1))
    columns = {c: big[c].to_numpy() for c in RAW_FEATURE_COLUMNS}
    model.booster.set_param({"nthread": 0})
    started = time.perf_counter()
    scores = model.predict_proba(columns)
    offline_s = time.perf_counter() - started
    matrix = model.features(columns)
    started = time.perf_counter()
    model.booster.inplace_predict(matrix)
    raw_s = time.perf_counter() - started
    assert len(scores) == OFFLINE_ROWS
    results["offline"] = {"rows": OFFLINE_ROWS, "seconds": offline_s, "rows_per_s": OFFLINE_ROWS / offline_s,
                          "raw_seconds": raw_s, "raw_rows_per_s": OFFLINE_ROWS / raw_s, "ratio": raw_s / offline_s}  # fmt: skip
    rows.append([f"offline, {OFFLINE_ROWS:,} rows (features + booster)", OFFLINE_ROWS / offline_s, OFFLINE_ROWS / raw_s,
                 raw_s / offline_s])  # fmt: skip
    print_table("Batch scoring, rows/s", ["path", "rows/s", "raw booster rows/s", "ratio"], rows)
    write_result("batch", results)
    return results


if __name__ == "__main__":
    main()
