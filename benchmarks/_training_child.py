"""Run in a fresh process by bench_training.py: one phase group, timed, with peak RSS per phase."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import peak_rss_mb, reset_peak_rss


def phase(results: dict[str, Any], name: str, started: float) -> float:
    now = time.perf_counter()
    results[name] = {"seconds": now - started, "peak_rss_mb": peak_rss_mb()}
    reset_peak_rss()
    return time.perf_counter()


def generate(db: Path, rows: int) -> dict[str, Any]:
    from fraudops_dev.datagen import GeneratorConfig, generate_frames
    from fraudops_dev.sqlite_io import write_transactions

    results: dict[str, Any] = {}
    reset_peak_rss()
    started = time.perf_counter()
    write_transactions(db, generate_frames(GeneratorConfig(rows, seed=42)))
    started = phase(results, "generate", started)
    from fraudops_dev.sqlite_io import iter_transactions

    from fraudops.core.config import Settings
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames

    lake = Lake(Settings(lake_uri=str(db.with_name("lake")))).transactions
    write_transaction_frames(lake, iter_transactions(db), source="generate")
    phase(results, "import_into_lake", started)
    return results


def train(db: Path, source: str) -> dict[str, Any]:
    """Read -> register, reading SQLite (``source="sqlite"``, the way before the lake) or the lake."""
    from fraudops_dev.sqlite_io import load_training_frame

    from fraudops.core.config import get_settings
    from fraudops.training.dataset import fingerprint, split_out_of_time
    from fraudops.training.fit import train_model
    from fraudops.training.tracking import log_and_register

    settings = get_settings().model_copy(update={"db_path": db})
    results: dict[str, Any] = {}
    reset_peak_rss()
    started = time.perf_counter()
    dataset = None
    if source == "lake":
        from fraudops.lake import Lake
        from fraudops.lake.transactions import read_training_data

        read = read_training_data(
            Lake(settings.model_copy(update={"lake_uri": str(db.with_name("lake"))})).transactions
        )
        frame, dataset = read.frame, read.describe()
    else:
        frame = load_training_frame(db)
    started = phase(results, "read", started)
    data = fingerprint(frame)
    started = phase(results, "fingerprint", started)
    split = split_out_of_time(frame, settings.validation_fraction, settings.holdout_fraction)
    started = phase(results, "split", started)
    trained = train_model(split, settings)
    started = phase(results, "train_and_evaluate", started)
    log_and_register(settings, trained, split, data, frame, dataset=dataset)
    phase(results, "log_and_register", started)
    results["detail"] = {
        "rows": data.rows,
        "fraud_rows": data.fraud_rows,
        "train_rows": len(split.train),
        "trees": trained.best_iteration + 1,
        "holdout_auprc": trained.holdout.auprc,
        "holdout_roc_auc": trained.holdout.roc_auc,
        "holdout_recall_at_1pct_fpr": trained.holdout.recall_at_1pct_fpr,
        "inner_seconds": trained.seconds,
    }
    return results


if __name__ == "__main__":
    mode, db = sys.argv[1], Path(sys.argv[2])
    output = generate(db, int(sys.argv[3])) if mode == "generate" else train(db, sys.argv[3])
    print("RESULT " + json.dumps(output))
