"""Run in a fresh process by bench_spark_training.py: one training of the lake's window, single-node
(as the train Lambda) or Spark local mode (as the EMR job), read -> register. Prints JSON."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path


def main(engine: str, db: str, lake: str, state: str) -> None:
    from fraudops.core.config import Settings

    logging.basicConfig(level=logging.WARNING)
    settings = Settings(db_path=Path(db), lake_uri=lake, state_dir=Path(state), storage="local")
    started = time.perf_counter()
    if engine == "spark":
        from fraudops_dev.spark_local import run_local_spark_training

        result = run_local_spark_training(settings)
    else:
        from fraudops.stages.train import run_training

        result = run_training(settings)
    print(json.dumps({
        "seconds": time.perf_counter() - started,
        "phases": result.seconds,
        "holdout_auprc": result.holdout.auprc,
        "rows": result.data.rows,
    }))  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:5])
