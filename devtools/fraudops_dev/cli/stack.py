"""Commands that run or check a stack: the local one in the background (up, down, logs), a prediction
(predict), the retraining state machine on it (retrain), everything end to end (demo), and the checks and
changes of a deployed one (smoke, deploy, ui)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from fraudops.core.config import Settings
from fraudops_dev.cli.common import DB_IGNORED, AddCommand, Subparsers, apply_db_and_lake


def cmd_smoke(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import local_api_key, with_running_ports
    from fraudops_dev.smoke import retrain_in_aws, run_smoke, stack_endpoints

    settings = with_running_ports(settings)
    retrain = None
    if args.stack:
        endpoints = stack_endpoints(args.stack, settings.aws_region)
        url, key = endpoints["url"], endpoints["key"]
        if args.retrain and endpoints["state_machine"]:
            retrain = retrain_in_aws(endpoints["state_machine"], settings.aws_region)
    else:
        url = args.url or f"http://127.0.0.1:{settings.api_port}"
        key = args.key or local_api_key(settings) or ""
        if args.retrain:
            from fraudops_dev.emulation import retrain_locally

            def retrain_local() -> dict[str, Any]:
                result = retrain_locally(settings, progress=lambda line: print(line, file=sys.stderr))[0]
                return {"status": result.status, "promotion": (result.output or {}).get("promotion")}

            retrain = retrain_local
    report = run_smoke(url, key, retrain)
    for name, ok, detail in report.checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail[:200]}")
    print(f"smoke {url}: {'passed' if report.passed else 'FAILED'}")
    return 0 if report.passed else 1


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev import deploy_parameters

    return deploy_parameters.run(args)


def cmd_ui(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.deployed_ui import serve_deployed_ui

    return serve_deployed_ui(settings, stack=args.stack, bucket=args.bucket, port=args.port)


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.api import EXAMPLE_TRANSACTION
    from fraudops_dev.local import local_api_key, post_json, with_running_ports

    settings = with_running_ports(settings)
    url = args.url or f"http://127.0.0.1:{settings.api_port}/predict"
    body = json.loads(args.json) if args.json else EXAMPLE_TRANSACTION
    status, answer = post_json(url, body, args.api_key or local_api_key(settings))
    print(json.dumps({"status": status, "response": answer}, indent=2))
    return 0 if status == 200 else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import (
        StackError,
        check_ports,
        local_api_key,
        local_aws_environment,
        services,
        start_service,
        stop_services,
        with_running_ports,
    )

    settings = with_running_ports(settings)  # what already runs keeps its ports
    stack = services(settings)
    check_ports(settings, stack)  # before anything starts or any file is touched
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    local_api_key(settings, create=True)
    env = {**os.environ, **local_aws_environment(settings.s3_endpoint_url, settings.aws_region)}
    print(f"starting the local stack on 127.0.0.1 (storage: {settings.storage}, state in {settings.state_dir}):")
    started: list[str] = []
    try:
        for service in stack:
            start_service(settings, service, env)
            started.append(service.name)
    except (StackError, KeyboardInterrupt):
        stop_services(settings, started)
        raise
    print(f"API: http://127.0.0.1:{settings.api_port} (key in {settings.state_dir / 'api-key'}, x-api-key header). "
          f"MLflow UI: http://127.0.0.1:{settings.mlflow_ui_port}. Stop with `make down`.")  # fmt: skip
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import services, stop_services

    names = [service.name for service in reversed(services(settings.model_copy(update={"storage": "s3"})))]
    for name, was_running in stop_services(settings, names).items():
        print(f"  {name:<10} {'stopped' if was_running else 'not running'}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.local import log_file, services

    for service in services(settings):
        path = log_file(settings, service.name)
        print(f"==> {path} <==")
        if path.exists():
            print("".join(path.read_text(errors="replace").splitlines(keepends=True)[-args.lines :]))
    return 0


def cmd_retrain(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.lake import Lake
    from fraudops.production.retraining_lock import LOCK_KEY
    from fraudops_dev.emulation import retrain_locally
    from fraudops_dev.local import with_running_ports

    settings = with_running_ports(apply_db_and_lake(args, settings))
    lake = Lake(settings)
    if lake.transactions.snapshot().version == 0:
        from fraudops.lake.transactions import write_transaction_frames
        from fraudops_dev.datagen import GeneratorConfig, generate_frames

        print(f"no transactions in the lake at {lake.root_uri}: generating 200,000 rows first", file=sys.stderr)
        frames = generate_frames(GeneratorConfig(n_rows=200_000, seed=settings.seed))
        write_transaction_frames(lake.transactions, frames, source="generate")
    results = retrain_locally(
        settings, runs=args.runs, isolated=args.isolated, progress=lambda line: print(line, file=sys.stderr)
    )
    for result in results:
        summary: dict[str, Any] = {"status": result.status}
        if result.output:
            summary |= {"train": result.output.get("train"), "promotion": result.output.get("promotion")}
            lease = result.output.get("lease") or {}
            if lease.get("acquired") is False:  # skipped: say why, and how to clear a lease left by a kill
                summary |= {"skipped": lease.get("reason")}
                print(f"skipped: {lease.get('reason')}. If no retraining is running (an interrupted one left "
                      f"its lease), delete {settings.local_artifact_dir / LOCK_KEY} or wait for it to expire.",
                      file=sys.stderr)  # fmt: skip
        if result.error:
            summary |= {"error": result.error, "cause": result.cause}
        print(json.dumps(summary, indent=2))
    if not args.isolated:
        print(f"the stack's MLflow UI (http://127.0.0.1:{settings.mlflow_ui_port}) shows the new version and its "
              f"decision; a running API serves a promoted one within {settings.model_refresh_seconds:g} s "
              "(FRAUDOPS_MODEL_REFRESH_SECONDS)", file=sys.stderr)  # fmt: skip
    return 0 if all(r.status == "SUCCEEDED" for r in results) else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops_dev.demo import check_demo_rows, run_demo

    check_demo_rows(args.rows)
    return run_demo(settings, rows=args.rows, seed=settings.seed if args.seed is None else args.seed)


def _add_smoke(sub: Subparsers) -> None:
    smoke = sub.add_parser("smoke", help="health, keys, a prediction, /model (and a retraining) on a stack")
    smoke.add_argument("--url", help="the API's base URL (default: the local stack)")
    smoke.add_argument("--key", help="an API key (default: the local stack's)")
    smoke.add_argument("--stack", help="a deployed stack: URL, key and state machine from its outputs (with --aws)")
    smoke.add_argument("--retrain", action="store_true", help="also run one retraining and report its decision")
    smoke.set_defaults(func=cmd_smoke)


def _add_deploy(sub: Subparsers) -> None:
    from fraudops_dev import deploy_parameters

    deploy = sub.add_parser(
        "deploy", help="sam deploy with some parameters changed and the rest as samconfig.toml's environment sets them"
    )
    deploy_parameters.build_parser(deploy).set_defaults(func=cmd_deploy)


def _add_ui(sub: Subparsers) -> None:
    ui = sub.add_parser("ui", help="MLflow's UI on a read-only copy of a deployed stack's registry (127.0.0.1)")
    ui.add_argument("--stack", help="CloudFormation stack name (reads its ModelBucket output)")
    ui.add_argument("--bucket", help="the model bucket, instead of --stack")
    ui.add_argument("--port", type=int, default=None, help="port (default FRAUDOPS_MLFLOW_UI_PORT, 5001)")
    ui.set_defaults(func=cmd_ui)


def _add_predict(sub: Subparsers) -> None:
    predict = sub.add_parser("predict", help="send one transaction to a running API")
    predict.add_argument("--url", help="default http://127.0.0.1:<FRAUDOPS_API_PORT>/predict")
    predict.add_argument("--api-key", help="default: FRAUDOPS_API_KEYS or .fraudops/api-key")
    predict.add_argument("--json", help="transaction JSON (default: an example account takeover)")
    predict.set_defaults(func=cmd_predict)


def _add_up(sub: Subparsers) -> None:
    sub.add_parser("up", help="start the MLflow UI and the API in the background").set_defaults(func=cmd_up)


def _add_down(sub: Subparsers) -> None:
    sub.add_parser("down", help="stop the local stack (its state stays on disk)").set_defaults(func=cmd_down)


def _add_logs(sub: Subparsers) -> None:
    logs = sub.add_parser("logs", help="show the local stack's logs")
    logs.add_argument("--lines", type=int, default=40, help="lines per log (default 40)")
    logs.set_defaults(func=cmd_logs)


def _add_retrain(sub: Subparsers) -> None:
    retrain = sub.add_parser(
        "retrain",
        aliases=["retrain-local"],  # the old name keeps working
        help="run the retraining state machine (moto's ASL engine) on your stack's data and registry",
    )
    retrain.add_argument("--db", help=DB_IGNORED + "; 200,000 rows are generated into an empty lake")
    retrain.add_argument("--runs", type=int, default=1, help="executions to run one after another")
    retrain.add_argument(
        "--isolated", action="store_true", help="run in a throwaway copy of AWS instead (nothing kept)"
    )
    retrain.set_defaults(func=cmd_retrain)


def _add_demo(sub: Subparsers) -> None:
    demo = sub.add_parser("demo", help="generate, train, promote, serve and predict, end to end")
    demo.add_argument("--rows", type=int, default=200_000, help="rows to generate (default 200,000)")
    demo.add_argument("--seed", type=int, default=None, help="random seed (default FRAUDOPS_SEED)")
    demo.set_defaults(func=cmd_demo)


COMMANDS: dict[str, AddCommand] = {
    "smoke": _add_smoke,
    "deploy": _add_deploy,
    "ui": _add_ui,
    "predict": _add_predict,
    "up": _add_up,
    "down": _add_down,
    "logs": _add_logs,
    "retrain": _add_retrain,
    "demo": _add_demo,
}
