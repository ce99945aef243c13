"""Decisions on the request path: warm ``/predict`` through the Lambda handler, this code against
today's (the commit before the decisions subpackage, from git) in the same run, each in its own
process, interleaved in rounds so the machine's noise hits both alike.

- an ``approve`` outcome (a published policy with rules and a 1,000-name deny list, nothing flagged):
  target p50 and p99 within 5% of today's /predict of the same transaction;
- a flagged outcome with its reasons (TreeSHAP through XGBoost's C library): target at most 1 ms more
  than today's at p99.
Capture is off in both (its cost is measured by bench_serving)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path
from typing import Any

from fraudops_dev.loadtest import percentiles

from benchmarks.common import ROOT, local_store, print_table, write_result

ROUNDS = int(os.environ.get("BENCH_DECISIONS_ROUNDS", "10"))
CALLS_PER_ROUND = int(os.environ.get("BENCH_DECISIONS_CALLS", "1000"))
APPROVE = {"step": 14, "type": "PAYMENT", "amount": 120.0, "oldbalanceOrg": 5000.0, "newbalanceOrig": 4880.0,
           "oldbalanceDest": 0.0, "newbalanceDest": 0.0, "nameOrig": "C100", "nameDest": "M200"}  # fmt: skip
POLICY = {
    "name": "bench",
    "rules": [
        {"name": "big-transfer-empties-origin", "outcome": "block",
         "when": "type == 'TRANSFER' and amount > 1000000 and newbalanceOrig == 0 and score > 0.2"},
        {"name": "cash-out-to-new-account", "outcome": "review",
         "when": "type == 'CASH_OUT' and oldbalanceDest == 0 and amount > 200000"},
        {"name": "tiny-payments", "outcome": "approve", "when": "type == 'PAYMENT' and amount < 10"},
    ],
    "lists": {"deny": {"nameDest": [f"C-mule-{i}" for i in range(1000)]}},
}  # fmt: skip


def baseline_ref() -> str:
    """Today's code: ``main`` while it has no decisions subpackage (it reads the models this code writes;
    older commits may not), else the parent of the commit that added it."""
    if os.environ.get("BENCH_DECISIONS_BASELINE"):
        return os.environ["BENCH_DECISIONS_BASELINE"]
    on_main = subprocess.run(["git", "cat-file", "-e", "main:layers/runtime/fraudops/decisions/__init__.py"],
                             capture_output=True, cwd=ROOT)  # fmt: skip
    if on_main.returncode != 0:
        return subprocess.run(["git", "rev-parse", "--short=12", "main"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()  # fmt: skip
    added = subprocess.run(
        ["git", "log", "--diff-filter=A", "--format=%H", "--", "layers/runtime/fraudops/decisions/__init__.py"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.split()  # fmt: skip
    if not added:
        raise SystemExit("cannot find the commit that added fraudops/decisions: set BENCH_DECISIONS_BASELINE")
    return f"{added[-1]}^"


def checkout(ref: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", ref, "layers/runtime", "functions/api"], capture_output=True,
                             cwd=ROOT, check=True).stdout  # fmt: skip
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def events_file(folder: Path) -> Path:
    from fraudops.api.schemas import EXAMPLE_TRANSACTION
    from tests.helpers.events import api_gateway_event

    headers = {"x-api-key": "bench-key"}
    events = {"approve": api_gateway_event("POST", "/predict", APPROVE, headers),
              "flagged": api_gateway_event("POST", "/predict", EXAMPLE_TRANSACTION, headers)}  # fmt: skip
    path = folder / "events.json"
    path.write_text(json.dumps(events))
    return path


class Child:
    def __init__(self, code_root: Path, events: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "_decision_child.py"), str(code_root), str(events)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "FRAUDOPS_CAPTURE": "false"},
        )  # fmt: skip
        self.first = json.loads(self._line())

    def _line(self) -> str:
        """The next result line (the handler's log lines are skipped)."""
        assert self.process.stdout is not None
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"benchmark child exited with {self.process.wait()}")
            if line.startswith("RESULT "):
                return line.removeprefix("RESULT ")

    def run(self, event: str, calls: int) -> list[float]:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{event} {calls}\n")
        self.process.stdin.flush()
        return list(json.loads(self._line()))

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def main() -> dict[str, Any]:
    ref = baseline_ref()
    work = Path(tempfile.mkdtemp(prefix="fraudops-bench-decisions-"))
    today_root = checkout(ref, work / "today")
    with local_store() as _store:
        from fraudops.core.config import get_settings
        from fraudops.decisions import publish_policy

        get_settings.cache_clear()
        publish_policy(get_settings(), POLICY, "benchmark")
        events = events_file(work)
        children = {"today": Child(today_root, events), "decisions": Child(ROOT, events)}
        try:
            samples: dict[str, list[float]] = {}
            for _ in range(ROUNDS):
                for code, child in children.items():
                    for event in ("approve", "flagged"):
                        samples.setdefault(f"{code}/{event}", []).extend(child.run(event, CALLS_PER_ROUND))
            first = {code: child.first for code, child in children.items()}
        finally:
            for child in children.values():
                child.close()
    flagged = first["decisions"]["flagged"]
    approved = first["decisions"]["approve"]
    assert approved["outcome"] == "approve" and "reasons" not in approved, approved
    assert flagged["outcome"] in ("review", "block") and flagged["reasons"], flagged
    assert "outcome" not in first["today"]["approve"]  # the baseline really is today's code
    assert flagged["probability"] == first["today"]["flagged"]["probability"]

    stats = {name: percentiles(values) for name, values in samples.items()}
    approve_p50 = stats["decisions/approve"]["p50_ms"] / stats["today/approve"]["p50_ms"]
    approve_p99 = stats["decisions/approve"]["p99_ms"] / stats["today/approve"]["p99_ms"]
    flagged_extra_p99 = stats["decisions/flagged"]["p99_ms"] - stats["today/flagged"]["p99_ms"]
    # Today's code does the same work for both transactions: how far its two p99s differ is this run's noise.
    noise_p99 = abs(stats["today/flagged"]["p99_ms"] - stats["today/approve"]["p99_ms"])
    rows = [[name, s["p50_ms"], s["p95_ms"], s["p99_ms"]] for name, s in stats.items()]
    print_table(f"Warm /predict, ms ({ROUNDS * CALLS_PER_ROUND:,} calls each; today = {ref})",
                ["code/outcome", "p50", "p95", "p99"], rows)  # fmt: skip
    result: dict[str, Any] = {
        "baseline_ref": ref,
        "calls": ROUNDS * CALLS_PER_ROUND,
        "stats": stats,
        "approve_p50_ratio": approve_p50,
        "approve_p99_ratio": approve_p99,
        "flagged_extra_p99_ms": flagged_extra_p99,
        "flagged_extra_p50_ms": stats["decisions/flagged"]["p50_ms"] - stats["today/flagged"]["p50_ms"],
        "noise_p99_ms": noise_p99,
        "load_average": os.getloadavg(),
        "targets": {
            "approve_p50_within_5pct": approve_p50 <= 1.05,
            "approve_p99_within_5pct": approve_p99 <= 1.05,
            "flagged_with_reasons_p99<=+1ms": flagged_extra_p99 <= 1.0,
        },
        "flagged_example": flagged,
    }
    print(f"  approve: p50 x{approve_p50:.3f}, p99 x{approve_p99:.3f} of today's; flagged with reasons: "
          f"{flagged_extra_p99:+.3f} ms at p99 (today's two p99s differ by {noise_p99:.3f} ms: the noise); "
          f"load {os.getloadavg()[0]:.1f}; targets {result['targets']}")  # fmt: skip
    print("  flagged decision: " + json.dumps(flagged))
    write_result("decisions", result)
    return result


if __name__ == "__main__":
    main()
