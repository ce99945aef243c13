"""`sam deploy` with one parameter changed, and every other one as samconfig.toml's environment sets it.

SAM CLI's ``--parameter-overrides`` on the command line *replaces* the environment's whole
``parameter_overrides`` list instead of merging with it (aws/aws-sam-cli#2380, open; the merging PR
#7876 is not released in the 1.170 we pin). A first deploy of ``--config-env prod --parameter-overrides
SparkImageUri=…`` then creates prod with the template's defaults (``Stage=dev``, dev's throttles, no
schedule); an update keeps the stack's previous values for what it leaves out (SAM CLI passes
``UsePreviousValue``), so the same command means two things. This module prints, or runs ``sam deploy``
with, the environment's full list merged with the values given, so no documented command depends on that.

Only the standard library: the pipelines run it with the runner's ``python3`` before anything is installed
(``python3 devtools/fraudops_dev/deploy_parameters.py --config-env pipeline-dev SparkImageUri=…``).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
DEFAULT_ENV = "default"


class DeployParameterError(ValueError):
    """A parameter the template does not declare, a value SAM CLI cannot carry, or an unknown environment."""


def template_parameters(template_path: Path = TEMPLATE_PATH) -> list[str]:
    """The names under the template's top-level ``Parameters:`` (read as text: the template's short-form
    intrinsics such as ``!Sub`` are not plain YAML, and this must run with the standard library only)."""
    names: list[str] = []
    inside = False
    for line in template_path.read_text().splitlines():
        if re.match(r"^[A-Za-z]", line):
            inside = line.rstrip() == "Parameters:"
            continue
        match = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if inside and match:
            names.append(match.group(1))
    return names


def parse_overrides(text: str) -> dict[str, str]:
    """``Key="value" Key2=value2`` (samconfig's form, SAM CLI's shorthand) as an ordered mapping."""
    parsed: dict[str, str] = {}
    for word in shlex.split(text):
        key, equals, value = word.partition("=")
        if not equals or not key:
            raise DeployParameterError(f"{word!r} is not Key=Value")
        parsed[key] = value
    return parsed


def environment_overrides(config_env: str, samconfig_path: Path = SAMCONFIG_PATH) -> dict[str, str]:
    """The ``parameter_overrides`` that ``sam deploy --config-env ENV`` reads from samconfig.toml."""
    config = tomllib.loads(samconfig_path.read_text())
    if config_env not in config:
        known = ", ".join(name for name in config if isinstance(config[name], dict))
        raise DeployParameterError(f"samconfig.toml has no environment {config_env!r} (it has: {known})")
    deploy = config[config_env].get("deploy", {}).get("parameters", {})
    raw = deploy.get("parameter_overrides", "")
    return parse_overrides(" ".join(raw) if isinstance(raw, list) else str(raw))


def merged_overrides(config_env: str, changes: dict[str, str], samconfig_path: Path = SAMCONFIG_PATH,
                     template_path: Path = TEMPLATE_PATH) -> dict[str, str]:  # fmt: skip
    """The environment's parameters with ``changes`` applied (a changed key keeps its place)."""
    declared = set(template_parameters(template_path))
    unknown = sorted(set(changes) - declared)
    if unknown:
        raise DeployParameterError(f"template.yaml declares no parameter {', '.join(unknown)} "
                                   f"(it declares: {', '.join(sorted(declared))})")  # fmt: skip
    for key, value in changes.items():
        if '"' in value:
            raise DeployParameterError(f"{key}: a value with a double quote cannot be passed through SAM CLI")
    return {**environment_overrides(config_env, samconfig_path), **changes}


def render(overrides: dict[str, str]) -> str:
    """One ``--parameter-overrides`` argument in samconfig's own form."""
    return " ".join(f'{key}="{value}"' for key, value in overrides.items())


def deploy_argv(config_env: str, changes: dict[str, str], extra: list[str]) -> list[str]:
    argv = ["sam", "deploy"]
    if config_env != DEFAULT_ENV:
        argv += ["--config-env", config_env]
    return [*argv, *extra, "--parameter-overrides", render(merged_overrides(config_env, changes))]


def _changes(pairs: list[str]) -> dict[str, str]:
    changes = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise DeployParameterError(f"{pair!r}: give parameters as Name=Value")
        changes[key] = value
    return changes


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="deploy_parameters", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-env", default=DEFAULT_ENV, help="samconfig.toml environment (default: default)")
    parser.add_argument("--print", action="store_true", dest="print_only",
                        help="print the merged --parameter-overrides value instead of running sam deploy")  # fmt: skip
    parser.add_argument("parameters", nargs="*", metavar="Name=Value", help="the parameters to change")
    parser.add_argument("--sam-arg", action="append", default=[], metavar="ARG",
                        help="one more sam deploy argument (repeatable: --sam-arg=--no-confirm-changeset)")  # fmt: skip
    return parser


def run(args: argparse.Namespace) -> int:
    try:
        changes = _changes(args.parameters)
        if args.print_only:
            print(render(merged_overrides(args.config_env, changes)))
            return 0
        argv = deploy_argv(args.config_env, changes, args.sam_arg)
    except DeployParameterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("+ " + shlex.join(argv), file=sys.stderr, flush=True)
    os.execvp(argv[0], argv)  # replaces this process: sam's prompts and exit code are the user's
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
