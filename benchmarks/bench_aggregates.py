"""Entity aggregates: what they buy and what they cost (docs/aggregates.md).

1. Quality: on the same generated data and out-of-time split, XGBoost on the ``engineered`` features and
   on ``velocity`` (engineered + the 18 aggregates), holdout AUPRC of each and the paired-bootstrap
   interval of the gain, as the promotion rule computes it; for the plain data and the drifted scenario
   (``evasive-takeover``: the balance signals fade, the history stays).
2. Offline cost: ``offline_aggregates`` on the full PaySim size (6,362,620 rows), against reading the same
   columns (a baseline in the same run).

    python -m benchmarks.bench_aggregates            # BENCH_AGGREGATES_ROWS=500000 by default
"""

from __future__ import annotations

import os
import time
from typing import Any

from benchmarks.common import print_table, write_result

ROWS = int(os.environ.get("BENCH_AGGREGATES_ROWS", "500000"))
FULL_ROWS = int(os.environ.get("BENCH_AGGREGATES_FULL_ROWS", "6362620"))
SEED = 42


def quality(drift: str) -> dict[str, Any]:
    from fraudops_dev.datagen import GeneratorConfig, generate

    from fraudops.aggregates import with_aggregates
    from fraudops.core.config import Settings
    from fraudops.core.schema import LABEL
    from fraudops.model.metrics import paired_bootstrap_auprc_gain
    from fraudops.training.dataset import split_out_of_time
    from fraudops.training.fit import train_model

    frame = generate(GeneratorConfig(ROWS, seed=SEED, drift=drift))
    frame = with_aggregates(frame.astype({"type": "category"}))
    settings = Settings(seed=SEED)
    split = split_out_of_time(frame, settings.validation_fraction, settings.holdout_fraction)
    y = split.holdout[LABEL].to_numpy()
    trained = {name: train_model(split, settings, name) for name in ("engineered", "velocity")}
    gain = paired_bootstrap_auprc_gain(
        y, trained["velocity"].holdout_scores, trained["engineered"].holdout_scores,
        resamples=settings.promotion_bootstrap_resamples, confidence=settings.promotion_confidence,
    )  # fmt: skip
    return {
        "drift": drift,
        "rows": len(frame),
        "holdout_rows": len(y),
        "holdout_fraud": int(y.sum()),
        "auprc": {name: t.holdout.auprc for name, t in trained.items()},
        "recall_at_1pct_fpr": {name: t.holdout.recall_at_1pct_fpr for name, t in trained.items()},
        "gain": gain.as_dict(),
    }


def offline_cost() -> dict[str, Any]:
    import numpy as np
    from fraudops_dev.datagen import GeneratorConfig, generate_arrays

    from fraudops.aggregates import offline_aggregates

    arrays = generate_arrays(GeneratorConfig(FULL_ROWS, seed=SEED))
    # Names as integer codes, as the lake read hands them over (categoricals: one code per row).
    columns = {"step": arrays["step"], "amount": arrays["amount"], "nameOrig": arrays["nameOrig"],
               "nameDest": np.where(arrays["destIsMerchant"], -arrays["nameDest"], arrays["nameDest"])}  # fmt: skip
    started = time.perf_counter()
    copied = {name: np.array(values, copy=True) for name, values in columns.items()}
    copy_seconds = time.perf_counter() - started
    started = time.perf_counter()
    values = offline_aggregates(copied)
    seconds = time.perf_counter() - started
    return {"rows": FULL_ROWS, "seconds": seconds, "copy_seconds": copy_seconds, "aggregates": len(values),
            "rows_per_second": FULL_ROWS / seconds}  # fmt: skip


def main() -> dict[str, Any]:
    results = [quality("none"), quality("evasive-takeover")]
    rows = [
        [r["drift"], f"{r['auprc']['engineered']:.4f}", f"{r['auprc']['velocity']:.4f}",
         f"{r['gain']['gain']:+.4f} [{r['gain']['lower']:+.4f}, {r['gain']['upper']:+.4f}]", r["holdout_fraud"]]
        for r in results
    ]  # fmt: skip
    print_table(f"Holdout AUPRC, {ROWS:,} generated rows (out of time)",
                ["data", "engineered", "velocity", "gain [95% paired bootstrap]", "holdout fraud"], rows)  # fmt: skip
    cost = offline_cost()
    print(f"  offline_aggregates on {cost['rows']:,} rows: {cost['seconds']:.1f} s "
          f"({cost['rows_per_second'] / 1e6:.2f} M rows/s; copying the input columns: {cost['copy_seconds']:.2f} s)")  # fmt: skip
    result = {"quality": results, "offline": cost}
    write_result("aggregates", result)
    return result


if __name__ == "__main__":
    main()
