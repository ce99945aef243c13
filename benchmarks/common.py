"""Shared benchmark plumbing: a calibration baseline, a local S3-backed store with a
Production model, results as JSON under benchmarks/results/.

This machine is shared and noisy, so every speed figure is printed next to a baseline measured in the
same run; the ratio is what to compare across runs and machines.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
for _function in ("api", "train", "promote"):
    sys.path.insert(0, str(ROOT / "functions" / _function))


def time_calls(call: Callable[[], Any], n: int, warmup: int = 200) -> list[float]:
    for _ in range(warmup):
        call()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def calibration_seconds() -> float:
    """A fixed CPU workload (sort 2M floats, 5 times; best of 5): divides out the machine's speed."""
    import numpy as np

    data = np.random.default_rng(0).random(2_000_000)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        np.sort(data)
        best = min(best, time.perf_counter() - started)
    return best


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gb = 0.0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory_gb = int(line.split()[1]) / 1024 / 1024
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(memory_gb, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "commit": commit.stdout.strip() or "unknown",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def write_result(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **data}, indent=2) + "\n")
    return path


def print_table(title: str, headers: list[str], rows: list[list[Any]]) -> None:
    cells = [[f"{c:.3f}" if isinstance(c, float) else str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  " + "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    for row in cells:
        print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def peak_rss_mb() -> float:
    """Peak resident memory of this process since the last reset_peak_rss() (Linux VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> None:
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


@dataclass(frozen=True)
class LocalStore:
    """A moto S3 server on 127.0.0.1 with a trained and promoted Production model."""

    endpoint: str
    env: dict[str, str]
    db_path: Path
    state_dir: Path


@contextlib.contextmanager
def local_store(rows: int = 200_000, workdir: Path | None = None) -> Iterator[LocalStore]:
    import tempfile

    from fraudops_dev.datagen import GeneratorConfig, generate_frames
    from fraudops_dev.local import moto_s3_server
    from fraudops_dev.sqlite_io import write_transactions

    from fraudops.core.config import Settings, get_settings
    from fraudops.stages.promote import run_promotion
    from fraudops.stages.train import run_training

    base = workdir or Path(tempfile.mkdtemp(prefix="fraudops-bench-"))
    db_path = base / "fraud.db"
    if not db_path.exists():
        write_transactions(db_path, generate_frames(GeneratorConfig(rows, seed=42)))
    lake = base / "lake"
    if not (lake / "transactions").exists():
        from fraudops_dev.sqlite_io import iter_transactions

        from fraudops.lake import Lake
        from fraudops.lake.transactions import write_transaction_frames

        write_transaction_frames(Lake(Settings(lake_uri=str(lake))).transactions, iter_transactions(db_path))
    with moto_s3_server() as endpoint:
        env = {
            "FRAUDOPS_DB_PATH": str(db_path),
            "FRAUDOPS_LAKE_URI": str(lake),
            "FRAUDOPS_STATE_DIR": str(base / "state"),
            "FRAUDOPS_S3_ENDPOINT_URL": endpoint,
            "FRAUDOPS_API_KEYS": "bench-key",
            "FRAUDOPS_MODEL_REFRESH_SECONDS": "60",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "MLFLOW_S3_ENDPOINT_URL": endpoint,
        }
        os.environ.update(env)
        get_settings.cache_clear()
        settings = Settings()
        result = run_training(settings)
        decision = run_promotion(settings)
        assert decision.promoted, decision.reason
        print(f"  local store ready: {rows:,} rows, version {result.version} in Production ({endpoint})", flush=True)
        yield LocalStore(endpoint, env, db_path, base / "state")
