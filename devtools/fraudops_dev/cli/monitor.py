"""Commands that watch the served model: monitor (drift, volume, realized performance) and drift-demo."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from fraudops.core.config import Settings
from fraudops_dev.cli.common import AddCommand, Subparsers, parse_time, require_state


def cmd_monitor(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.stages.monitor import monitor_window, run_monitor, summary
    from fraudops_dev.emulation import retrain_trigger

    require_state(settings)
    since, until = monitor_window(settings, datetime.now(UTC), parse_time(args.since), parse_time(args.until))
    trigger = None if args.no_retrain else retrain_trigger(settings, lambda line: print(line, file=sys.stderr))
    report = run_monitor(settings, since, until, trigger)
    print(json.dumps(summary(report) | {"report": report["html_uri"]}, indent=2, default=str))
    if report["html_uri"]:
        print(f"report: {report['html_uri']}", file=sys.stderr)
    return 0


def cmd_drift_demo(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.drift_demo import run_drift_demo

    return run_drift_demo(settings, rows=args.rows, traffic=args.traffic)


def _add_monitor(sub: Subparsers) -> None:
    monitor = sub.add_parser(
        "monitor",
        help="drift, volume and realized performance of captured decisions; MAY START A RETRAINING (--no-retrain)",
        description="Measure drift, flagged rate and realized performance of the decisions captured in a window. "
        "When drift stays at the act level for FRAUDOPS_DRIFT_WINDOWS consecutive non-overlapping windows (and "
        "the cooldown has passed), this command STARTS A RETRAINING on your stack (a candidate is promoted only "
        "if it beats Production). Pass --no-retrain to only report. Drift and rates are judged only from "
        "FRAUDOPS_MONITOR_MIN_RECORDS decisions of a version (the report says when there were too few).",
    )
    monitor.add_argument(
        "--since", help="window start, ISO time (default: where the last window ended, else until minus the window)"
    )
    monitor.add_argument(
        "--until", help="window end, ISO time (default: now minus FRAUDOPS_CAPTURE_DELIVERY_DELAY_SECONDS)"
    )
    monitor.add_argument("--no-retrain", action="store_true", help="report only: never start a retraining")
    monitor.set_defaults(func=cmd_monitor)


def _add_drift_demo(sub: Subparsers) -> None:
    drift = sub.add_parser("drift-demo", help="the monitoring loop end to end: drift, labels, retraining, recovery")
    drift.add_argument("--rows", type=int, default=50_000, help="training rows, and the drifted window (50,000)")
    drift.add_argument("--traffic", type=int, default=10_000, help="transactions in the other windows (10,000)")
    drift.set_defaults(func=cmd_drift_demo)


COMMANDS: dict[str, AddCommand] = {
    "monitor": _add_monitor,
    "drift-demo": _add_drift_demo,
}
