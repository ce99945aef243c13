"""5. Training at full size: generate the 6,362,620-row PaySim-size table, train, evaluate, log and
register; wall time and peak RSS of each phase (each group in a fresh process). Targets: generation
<= 60 s, training <= 5 min, peak <= 4 GB on 2 cores. Baseline in the same run: a fixed CPU workload
(calibration), so the phase times can be compared across machines as ratios."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, calibration_seconds, print_table, write_result

ROWS = int(os.environ.get("BENCH_TRAINING_ROWS", "6362620"))


def child(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks._training_child", *args], capture_output=True,
                          text=True, cwd=ROOT, env=env, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-4000:])
    line = next(line for line in done.stdout.splitlines()[::-1] if line.startswith("RESULT "))
    return dict(json.loads(line[7:]))


def main() -> dict[str, Any]:
    from fraudops_dev.local import moto_s3_server

    calibration = calibration_seconds()
    workdir = Path(tempfile.mkdtemp(prefix="fraudops-bench-train-"))
    db = workdir / "fraud.db"
    with moto_s3_server() as endpoint:
        env = {**os.environ, "FRAUDOPS_S3_ENDPOINT_URL": endpoint, "MLFLOW_S3_ENDPOINT_URL": endpoint,
               "FRAUDOPS_STATE_DIR": str(workdir / "state"), "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}  # fmt: skip
        print(f"  generating {ROWS:,} rows ...", flush=True)
        generated = child(["generate", str(db), str(ROWS)], env)
        print("  training (reading SQLite, as before the lake) ...", flush=True)
        trained = child(["train", str(db), "sqlite"], env)
        print("  training (reading the lake) ...", flush=True)
        from_lake = child(["train", str(db), "lake"], env)
        from_lake.pop("detail")
    detail = trained.pop("detail")
    phases = {**generated, **trained}
    training_seconds = sum(v["seconds"] for k, v in trained.items())
    rows = [[name, v["seconds"], v["seconds"] / calibration, v["peak_rss_mb"]] for name, v in phases.items()]
    rows.append(["training total (read .. register)", training_seconds, training_seconds / calibration,
                 max(v["peak_rss_mb"] for v in trained.values())])  # fmt: skip
    print_table(
        f"Full-size training: {ROWS:,} rows, 2 cores (calibration {calibration * 1000:.1f} ms)",
        ["phase", "seconds", "x calibration", "peak RSS MB"],
        rows,
    )
    peak = max(v["peak_rss_mb"] for v in phases.values())
    result = {
        "rows": ROWS,
        "calibration_s": calibration,
        "phases": phases,
        "training_seconds": training_seconds,
        "peak_rss_mb": peak,
        "model": detail,
        "lake": {
            "phases": from_lake,
            "training_seconds": sum(v["seconds"] for v in from_lake.values()),
            "peak_rss_mb": max(v["peak_rss_mb"] for v in from_lake.values()),
        },
        "db_size_mb": db.stat().st_size / 1e6,
        "targets": {
            "generation<=60s": phases["generate"]["seconds"] <= 60,
            "training<=300s": training_seconds <= 300,
            "peak<=4GB": peak <= 4096,
        },
    }
    print(f"  holdout AUPRC {detail['holdout_auprc']:.4f} with {detail['trees']} trees; targets {result['targets']}")
    import shutil

    db.unlink(missing_ok=True)
    shutil.rmtree(db.with_name("lake"), ignore_errors=True)
    write_result("training", result)
    return result


if __name__ == "__main__":
    main()
