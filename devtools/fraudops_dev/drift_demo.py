"""`make drift-demo`: the monitoring loop end to end on the local default, narrated with its figures.

serve Production -> normal traffic, labels, monitor (baseline) -> drifted traffic ("evasive-takeover":
fraud no longer empties the origin, mules' balances move, bigger and more TRANSFERs), labels, monitor:
drift found -> retraining started by the monitor through the real state machine (emulated Step
Functions): its Curate step turns the captured decisions and their labels into lake rows, Train learns
from them -> promotion on the current holdout -> the API serves the new version without a restart -> a
second drifted window shows recall recovered. No person moves data: no `append-labeled`.

Labels arrive within the demo's minutes, so it sets the label maturity to 0 days (every label-less
decision counts as matured) and curates the hour still being written.

State in <state_dir>/drift-demo; nothing touches your stack's registry.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from fraudops.core.config import Settings

FRAUD_RATE = 0.01  # a fraud-rich sample, so every window has enough fraud to measure recall
MONTH = 744  # whole days past the generated month (743 steps): each window comes after the previous one
CHUNK = 1000


def _send_traffic(base: str, key: str, rows: Any, prefix: str) -> str:
    """Score every row through /predict/batch (captured by the API), then send its labels to /feedback."""
    from fraudops_dev.local import post_json

    fields = ["step", "type", "amount", "nameOrig", "oldbalanceOrg", "newbalanceOrig", "nameDest",
              "oldbalanceDest", "newbalanceDest"]  # fmt: skip
    records = rows[fields].to_dict("records")
    versions = set()
    for start in range(0, len(records), CHUNK):
        batch = [{**r, "transaction_id": f"{prefix}-{start + i}"} for i, r in enumerate(records[start : start + CHUNK])]
        status, body = post_json(f"{base}/predict/batch", {"transactions": batch}, key, timeout=60)
        if status != 200:
            raise RuntimeError(f"/predict/batch answered {status}: {body}")
        versions.add(body["model_version"])
    labels = [{"transaction_id": f"{prefix}-{i}", "is_fraud": bool(f)} for i, f in enumerate(rows["isFraud"])]
    for start in range(0, len(labels), CHUNK):
        status, body = post_json(f"{base}/feedback", {"labels": labels[start : start + CHUNK]}, key, timeout=60)
        if status != 200:
            raise RuntimeError(f"/feedback answered {status}: {body}")
    return ",".join(sorted(versions))


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    rows = {}
    for version, section in report["versions"].items():
        drift = section.get("drift") or {}
        realized = section.get("realized") or {}  # without precision/recall when too few labels arrived
        features = sorted((drift.get("features") or {}).items(), key=lambda item: -item[1]["psi"])
        rows[version] = {
            "decisions": section["count"],
            "top_psi": {name: round(entry["psi"], 3) for name, entry in features[:4]},
            "type_psi": round(drift["type"]["psi"], 3) if drift else None,
            "score_psi": round(drift["score"]["psi"], 3) if drift else None,
            "recall": round(realized["recall"], 3) if "recall" in realized else None,
            "precision": round(realized["precision"], 3) if "precision" in realized else None,
        }
    return rows


def run_drift_demo(
    settings: Settings, rows: int = 50_000, traffic: int = 10_000, out: Callable[[str], None] = print
) -> int:
    import json

    from fraudops.api import build_default_app
    from fraudops.lake import Lake
    from fraudops.lake.transactions import write_transaction_frames
    from fraudops.stages.monitor import run_monitor
    from fraudops.stages.promote import run_promotion
    from fraudops.stages.train import run_training
    from fraudops_dev.datagen import GeneratorConfig, generate, generate_frames
    from fraudops_dev.emulation import retrain_trigger
    from fraudops_dev.local import free_port, serve_in_thread

    state = settings.state_dir / "drift-demo"
    shutil.rmtree(state, ignore_errors=True)
    key = "drift-demo-key"
    demo = settings.model_copy(update={
        "storage": "local", "state_dir": state, "tracking_uri": None, "registry_s3_key": None,
        "db_path": state / "fraud.db", "lake_uri": None, "api_keys": SecretStr(key), "model_refresh_seconds": 0.5,
        "drift_windows": 1, "retrain_cooldown_hours": 0.0, "capture": True, "label_maturity_days": 0.0,
        "curation_settle_minutes": 0.0,
        # The demo's sample is FRAUD_RATE fraud, about 8x PaySim's 1.29 per 1,000; the default budget (10 per
        # 1,000, about 8x PaySim's rate: docs/decisions.md) scales with it, or the bands of its small model
        # (a tied top score over more rows than 10 per 1,000) would review nothing and recall nothing.
        "alert_budget_per_1000": max(settings.alert_budget_per_1000, 4 * FRAUD_RATE * 1000),
    })  # fmt: skip
    figures: dict[str, Any] = {}
    curation: dict[str, int] = {}
    started = time.perf_counter()

    out(f"[1/6] train and promote on {rows:,} generated rows (fraud {FRAUD_RATE:.0%})")
    lake = Lake(demo)
    history = generate_frames(GeneratorConfig(rows, seed=demo.seed, fraud_rate=FRAUD_RATE))
    write_transaction_frames(lake.transactions, history, source="generate")
    first = run_training(demo)
    out(f"      version {first.version}: {run_promotion(demo).outcome}, holdout AUPRC {first.holdout.auprc:.3f}")

    with serve_in_thread(build_default_app(demo), free_port()) as base:
        # The drifted window is as large as the training set: the out-of-time split keeps the newest 30% of
        # rows for validation and holdout, so a retraining learns a new pattern only from older labeled rows.
        windows = [
            ("normal", "none", 1, traffic, "2/6] normal traffic"),
            ("drifted", "evasive-takeover", 2, rows, "3/6] drifted traffic (evasive-takeover)"),
            ("after retraining", "evasive-takeover", 3, traffic, "5/6] drifted traffic, after the retraining"),
        ]
        for name, drift, number, size, title in windows:
            out(f"[{title}: {size:,} transactions through /predict/batch, labels through /feedback")
            window_start = datetime.now(UTC)
            frame = generate(GeneratorConfig(size, seed=demo.seed + number, fraud_rate=FRAUD_RATE, drift=drift,
                                             step_offset=number * MONTH))  # fmt: skip
            served = _send_traffic(base, key, frame, f"w{number}")
            window_end = datetime.now(UTC)
            trigger = None
            if name == "drifted":

                def trigger(payload: dict[str, Any]) -> str:
                    before = lake.transactions.snapshot().rows
                    started = retrain_trigger(demo, lambda line: out(f"      {line}"))(payload)
                    curated = lake.transactions.snapshot().rows - before
                    out(
                        f"      its Curate step added {curated:,} labeled captured decisions to the lake's transactions"
                    )
                    curation["curated_rows"] = curated
                    return started

            report = run_monitor(demo, window_start, window_end, trigger)
            figures[name] = {"served_by": served, "versions": _summary(report), "drifted": report["drifted"],
                             **curation}  # fmt: skip
            curation.clear()
            out(f"      served by version {served}; monitor: {json.dumps(figures[name]['versions'])}")
            out(f"      drift at the act level: {', '.join(report['drifted']) or 'none'}; report {report['html_uri']}")
            if report.get("retraining"):
                out(f"[4/6] the monitor started a retraining: {report['retraining'].get('started')}")
                time.sleep(1.0)  # the API re-checks the manifest every 0.5 s
    out(f"[6/6] recall: normal {_recall(figures, 'normal')}, drifted {_recall(figures, 'drifted')}, after "
        f"retraining {_recall(figures, 'after retraining')} (in {time.perf_counter() - started:.0f}s)")  # fmt: skip
    (state / "figures.json").write_text(json.dumps(figures, indent=2))
    return 0


def _recall(figures: dict[str, Any], window: str) -> str:
    versions = figures[window]["versions"]
    return ", ".join(f"v{v} {s['recall']}" for v, s in sorted(versions.items()))
