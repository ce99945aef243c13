"""Spark local mode (xgboost.spark, 2 workers, as the EMR Serverless job) against single-node training
(as the train Lambda) on the same generated rows: wall time read -> register and peak memory of the
whole process tree (Spark's JVM and Python workers included), each run in a fresh process.

Sizes: BENCH_SPARK_ROWS (comma-separated; default 1M). Both engines train on the same lake window (the
generated rows imported into a lake, one partition per PaySim day): single-node reads it as the train
Lambda does (``read_training_data``), Spark reads the same committed files (``fraudops train --engine spark``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_training import child
from benchmarks.common import ROOT, calibration_seconds, machine, print_table, write_result

SIZES = [int(x) for x in os.environ.get("BENCH_SPARK_ROWS", "1000000").split(",")]


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and all its descendants (from /proc), MB."""
    parents: dict[int, int] = {}
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry.name)] = int(fields.get("PPid", "0").strip())
        rss[int(entry.name)] = int(fields.get("VmRSS", "0 kB").split()[0]) / 1024 if "VmRSS" in fields else 0.0
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(rss.get(pid, 0.0) for pid in tree)


def run_measured(engine: str, db: Path, lake: Path, state: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks._spark_child", engine, str(db), str(lake), str(state)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss_mb(process.pid))
            time.sleep(0.5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{engine} training failed ({process.returncode})")
    result = dict(json.loads(out.strip().splitlines()[-1]))
    return {**result, "wall_seconds": time.perf_counter() - started, "peak_tree_rss_mb": peak}


def main() -> dict[str, Any]:
    calibration = calibration_seconds()
    runs = []
    for rows in SIZES:
        workdir = Path(tempfile.mkdtemp(prefix="fraudops-spark-bench-"))
        db = workdir / "fraud.db"
        print(f"  {rows:,} rows: generating ...", flush=True)
        # Writes the SQLite file and imports it into the lake beside it (db.with_name("lake")).
        child(["generate", str(db), str(rows)], {**os.environ, "FRAUDOPS_STATE_DIR": str(workdir / "gen")})
        for engine in ("single", "spark"):
            print(f"  {rows:,} rows: {engine} ...", flush=True)
            measured = run_measured(engine, db, workdir / "lake", workdir / f"state-{engine}")
            runs.append({"rows": rows, "engine": engine, **measured})
            print(f"    {runs[-1]}", flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(
        "Spark local mode vs single-node training",
        ["rows", "engine", "wall s", "read s", "fit s", "peak tree RSS MB", "holdout AUPRC"],
        [[r["rows"], r["engine"], r["wall_seconds"], r["phases"].get("read", 0.0), r["phases"].get("fit", 0.0),
          r["peak_tree_rss_mb"], r["holdout_auprc"]] for r in runs],
    )  # fmt: skip
    result = {"machine": machine(), "calibration_seconds": calibration, "runs": runs}
    write_result("spark_training", result)
    return result


if __name__ == "__main__":
    main()
