"""`fraudops` command line: the same core the Lambda functions run, for local use.

fraudops generate --rows 1000000     write data/fraud.db
fraudops import-csv PS_2017.csv      load the real PaySim CSV instead
fraudops train | promote             one training run / one promotion decision
fraudops serve                       the API under uvicorn on 127.0.0.1
fraudops up | down | logs            local stack in the background (S3, MLflow UI, API)
fraudops demo                        everything end to end, then a key-authenticated prediction
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fraudops.config import Settings, get_settings

log = logging.getLogger("fraudops.cli")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("botocore", "boto3", "urllib3", "alembic", "mlflow", "werkzeug", "s3transfer", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")


class _Progress:
    """Prints "rows written" at most once a second (long jobs must show they are alive)."""

    def __init__(self, total: int, label: str) -> None:
        self.total, self.label, self.last, self.started = total, label, 0.0, time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last >= 1.0 or done >= self.total:
            self.last = now
            rate = done / max(now - self.started, 1e-9)
            share = f" ({100 * done / self.total:.0f}%)" if self.total else ""
            print(f"  {self.label}: {done:,}{share}, {rate:,.0f} rows/s", file=sys.stderr, flush=True)


# --- commands --------------------------------------------------------------------------------------------


def cmd_generate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.data import write_transactions
    from fraudops.datagen import GeneratorConfig, generate_frames

    config = GeneratorConfig(n_rows=args.rows, seed=args.seed, fraud_rate=args.fraud_rate)
    db = Path(args.db or settings.db_path)
    started = time.perf_counter()
    print(f"generating {config.n_rows:,} PaySim-schema rows (seed {config.seed}) into {db}", file=sys.stderr)
    rows = write_transactions(db, generate_frames(config), progress=_Progress(config.n_rows, "rows written"))
    seconds = time.perf_counter() - started
    print(json.dumps({"db": str(db), "rows": rows, "seconds": round(seconds, 2)}))
    return 0


def cmd_import_csv(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.data import import_csv

    db = Path(args.db or settings.db_path)
    report = import_csv(Path(args.csv), db, progress=_Progress(0, "rows imported"))
    for line, reason in report.bad_rows[:20]:
        print(f"  line {line}: {reason}", file=sys.stderr)
    if len(report.bad_rows) > 20:
        print(f"  ... and {len(report.bad_rows) - 20} more bad rows", file=sys.stderr)
    if report.bad_rows:
        rejects = db.with_suffix(".rejects.csv")
        rejects.write_text("line,reason\n" + "".join(f'{n},"{r}"\n' for n, r in report.bad_rows))
        print(f"{len(report.bad_rows)} bad rows were not imported; all listed in {rejects}", file=sys.stderr)
    print(json.dumps({"db": str(db), "rows_imported": report.rows_imported, "bad_rows": len(report.bad_rows)}))
    return 1 if report.bad_rows and args.strict else 0


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.training import run_training

    result = run_training(settings, feature_set=args.feature_set)
    print(json.dumps(result.summary(), indent=2))
    return 0


def cmd_promote(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.promotion import run_promotion

    decision = run_promotion(settings, args.version)
    print(json.dumps(decision.as_dict(), indent=2))
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn
    from pydantic import SecretStr

    from fraudops.api import build_default_app
    from fraudops.local import local_api_key

    if not settings.api_key_values() and not settings.api_keys_ssm_parameter:
        key = local_api_key(settings)
        if key:
            settings = settings.model_copy(update={"api_keys": SecretStr(key)})
            log.info("using the local API key from %s", settings.state_dir / "api-key")
    host = args.host or settings.api_host
    uvicorn.run(build_default_app(settings), host=host, port=args.port or settings.api_port, log_level="info")
    return 0


def cmd_s3_server(args: argparse.Namespace, settings: Settings) -> int:
    from moto.server import ThreadedMotoServer

    port = args.port or settings.s3_port
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    print(f"moto S3 server on http://127.0.0.1:{port} (in-memory; Ctrl-C stops it)", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()
    return 0


def _post_json(url: str, body: Any, api_key: str | None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.api import EXAMPLE_TRANSACTION
    from fraudops.local import local_api_key

    url = args.url or f"http://127.0.0.1:{settings.api_port}/predict"
    body = json.loads(args.json) if args.json else EXAMPLE_TRANSACTION
    status, answer = _post_json(url, body, args.api_key or local_api_key(settings))
    print(json.dumps({"status": status, "response": answer}, indent=2))
    return 0 if status == 200 else 1


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.local import local_api_key, running_pid, services, start_service

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    local_api_key(settings, create=True)
    env = {
        **os.environ,
        "FRAUDOPS_S3_ENDPOINT_URL": f"http://127.0.0.1:{settings.s3_port}",
        "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{settings.s3_port}",
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        "AWS_DEFAULT_REGION": settings.aws_region,
    }
    fresh_s3 = running_pid(settings, "s3") is None
    registry = settings.state_dir / "mlflow.db"
    if fresh_s3 and registry.exists() and settings.tracking_uri is None:
        # moto keeps objects in memory: a new S3 server means the old registry points at nothing.
        stale = registry.with_suffix(f".db.stale-{int(time.time())}")
        registry.rename(stale)
        print(f"  new in-memory S3: moved the old registry aside to {stale}")
    print("starting the local stack on 127.0.0.1:")
    for service in services(settings):
        start_service(settings, service, env)
    print(f"API key: {settings.state_dir / 'api-key'} (x-api-key header). Stop with `make down`.")
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.local import services, stop_service

    for service in reversed(services(settings)):
        print(f"  {service.name:<10} {'stopped' if stop_service(settings, service.name) else 'not running'}")
    return 0


def cmd_logs(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.local import log_file, services

    for service in services(settings):
        path = log_file(settings, service.name)
        print(f"==> {path} <==")
        if path.exists():
            print("".join(path.read_text(errors="replace").splitlines(keepends=True)[-args.lines :]))
    return 0


def cmd_retrain_local(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.emulation import retrain_locally

    db = Path(args.db or settings.db_path)
    if not db.exists():
        from fraudops.data import write_transactions
        from fraudops.datagen import GeneratorConfig, generate_frames

        print(f"no {db}: generating 200,000 rows first", file=sys.stderr)
        write_transactions(db, generate_frames(GeneratorConfig(n_rows=200_000, seed=settings.seed)))
    results = retrain_locally(db, runs=args.runs, progress=lambda line: print(line, file=sys.stderr))
    for result in results:
        summary: dict[str, Any] = {"status": result.status}
        if result.output:
            summary |= {"train": result.output.get("train"), "promotion": result.output.get("promotion")}
        if result.error:
            summary |= {"error": result.error, "cause": result.cause}
        print(json.dumps(summary, indent=2))
    return 0 if all(r.status == "SUCCEEDED" for r in results) else 1


def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.demo import run_demo

    return run_demo(settings, rows=args.rows, seed=args.seed)


# --- parser ----------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudops", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    generate = sub.add_parser("generate", help="write a generated PaySim-schema table to SQLite")
    generate.add_argument("--rows", type=int, default=200_000, help="rows to generate (PaySim: 6362620)")
    generate.add_argument("--seed", type=int, default=None, help="random seed (default FRAUDOPS_SEED)")
    generate.add_argument("--fraud-rate", type=float, default=None, help="override PaySim's 0.129%% fraud rate")
    generate.add_argument("--db", help="database path (default FRAUDOPS_DB_PATH)")
    generate.set_defaults(func=cmd_generate)

    importer = sub.add_parser("import-csv", help="import the real PaySim CSV into SQLite")
    importer.add_argument("csv", help="path to the PaySim CSV")
    importer.add_argument("--db", help="database path (default FRAUDOPS_DB_PATH)")
    importer.add_argument("--strict", action="store_true", help="exit 1 if any row was bad")
    importer.set_defaults(func=cmd_import_csv)

    train = sub.add_parser("train", help="train, log to MLflow and register a new version")
    train.add_argument("--feature-set", default="engineered", choices=["engineered", "seed"])
    train.set_defaults(func=cmd_train)

    promote = sub.add_parser("promote", help="promote a version if it beats Production on the holdout")
    promote.add_argument("--version", help="candidate version (default: the newest)")
    promote.set_defaults(func=cmd_promote)

    serve = sub.add_parser("serve", help="serve the API with uvicorn")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int)
    serve.set_defaults(func=cmd_serve)

    s3 = sub.add_parser("s3-server", help="run moto's S3 server on 127.0.0.1 (foreground)")
    s3.add_argument("--port", type=int)
    s3.set_defaults(func=cmd_s3_server)

    predict = sub.add_parser("predict", help="send one transaction to a running API")
    predict.add_argument("--url", help="default http://127.0.0.1:<api_port>/predict")
    predict.add_argument("--api-key", help="default: FRAUDOPS_API_KEYS or .fraudops/api-key")
    predict.add_argument("--json", help="transaction JSON (default: an example account takeover)")
    predict.set_defaults(func=cmd_predict)

    sub.add_parser("up", help="start S3, MLflow UI and API in the background").set_defaults(func=cmd_up)
    sub.add_parser("down", help="stop the local stack").set_defaults(func=cmd_down)
    logs = sub.add_parser("logs", help="show the local stack's logs")
    logs.add_argument("--lines", type=int, default=40)
    logs.set_defaults(func=cmd_logs)

    retrain = sub.add_parser(
        "retrain-local", help="run the retraining state machine in moto's Step Functions engine (no AWS)"
    )
    retrain.add_argument("--db", help="training data (default FRAUDOPS_DB_PATH; generated if missing)")
    retrain.add_argument("--runs", type=int, default=1, help="executions to run one after another")
    retrain.set_defaults(func=cmd_retrain_local)

    demo = sub.add_parser("demo", help="generate, train, promote, serve and predict, end to end")
    demo.add_argument("--rows", type=int, default=200_000)
    demo.add_argument("--seed", type=int, default=None)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fraudops.data import DataError
    from fraudops.promotion import PromotionError
    from fraudops.store import StoreError
    from fraudops.training import TrainingError

    args = build_parser().parse_args(argv)
    _setup_logging(args.verbose)
    settings = get_settings()
    if getattr(args, "seed", None) is None and hasattr(args, "seed"):
        args.seed = settings.seed
    if getattr(args, "fraud_rate", 0) is None:
        from fraudops.datagen import FRAUD_RATE

        args.fraud_rate = FRAUD_RATE
    try:
        return int(args.func(args, settings))
    except (DataError, TrainingError, PromotionError, StoreError, ValueError) as error:
        print(f"fraudops {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
