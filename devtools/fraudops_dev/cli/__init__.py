"""`fraudops`: the pipeline on your laptop, with the same core the Lambda functions run.

  fraudops generate --rows 1000000     write generated transactions to the lake (replaced only when complete)
  fraudops import-csv PS_2017.csv.zip  load the real PaySim CSV (.csv, .csv.gz or .zip; --append)
  fraudops train | promote             one training run / one promotion decision
  fraudops up | down | logs            the local stack in the background (MLflow UI, API)
  fraudops retrain                     the real retraining state machine, acting on your stack
  fraudops batch-score FILE            score a CSV / JSON Lines file as the batch state machine does
  fraudops policy publish FILE         validate and activate a decision policy (rollback, history, show)
  fraudops demo                        everything end to end, then a key-authenticated prediction

Everything is local unless you ask for AWS: state lives on disk under .fraudops/ (FRAUDOPS_STATE_DIR).
--aws (or FRAUDOPS_AWS=true) lets a command use real AWS with your credentials.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from pydantic import ValidationError

from fraudops_dev.cli import data, lake, model, monitor, policy, serve, stack
from fraudops_dev.cli.common import (
    AddCommand,
    load_settings,
    one_line_message,
    reported_in_one_line,
    settings_problem,
    setup_logging,
)

__all__ = ["build_parser", "load_settings", "main"]

# The order `fraudops --help` lists the commands in: the single-module CLI's, kept when it was split by group.
HELP_ORDER = (
    "generate", "import-csv", "import", "export", "sql", "curate", "lake", "train", "promote", "rollback", "reconcile",
    "history", "policy", "monitor", "import-labels", "append-labeled", "drift-demo", "smoke", "deploy", "ui",
    "serve", "s3-server", "predict", "up", "down", "logs", "retrain", "batch-score", "batch-check", "demo",
)  # fmt: skip
GROUPS = (data, lake, model, policy, monitor, stack, serve)


def _version() -> str:
    try:
        return version("fraudops")
    except PackageNotFoundError:
        return "unknown"


def _commands() -> list[AddCommand]:
    """Every group's commands in HELP_ORDER; a command a group adds but HELP_ORDER misses, names twice, or
    the other way round is refused here, not silently left out of the CLI."""
    commands = [item for group in GROUPS for item in group.COMMANDS.items()]
    names = [name for name, _ in commands]
    if sorted(names) != sorted(HELP_ORDER):
        raise RuntimeError(f"the groups' commands {sorted(names)} are not HELP_ORDER's {sorted(HELP_ORDER)}")
    adders = dict(commands)
    return [adders[name] for name in HELP_ORDER]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fraudops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"fraudops {_version()}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="debug logging, and a traceback on errors")
    parser.add_argument(
        "--aws", action="store_true", help="allow real AWS with your credentials (FRAUDOPS_AWS=true); off by default"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in _commands():
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from fraudops_dev.local import StackError

    args = build_parser().parse_args(argv)
    setup_logging(args.verbose or args.debug)
    try:
        settings = load_settings(args.aws)
        return int(args.func(args, settings))
    except KeyboardInterrupt:
        print(f"fraudops {args.command}: interrupted; nothing half-written was kept", file=sys.stderr)
        return 130
    except Exception as error:
        if not reported_in_one_line(error, StackError):
            raise
        if args.debug:
            traceback.print_exc()
        message = settings_problem(error) if isinstance(error, ValidationError) else one_line_message(error)
        if "Could not connect to the endpoint URL" in message:
            message += "; in S3 mode the local S3 server must be up (FRAUDOPS_STORAGE=s3 make up)"
        hint = "" if args.debug else " (--debug shows the traceback)"
        print(f"fraudops {args.command}: error: {' '.join(message.split())}{hint}", file=sys.stderr)
        if getattr(error, "detail", ""):  # a StackError's log tail: what the service said before it died
            print(error.detail, file=sys.stderr)  # type: ignore[attr-defined]
        return 2
