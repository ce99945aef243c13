"""`fraudops policy ACTION`: decision policies (validate, backtest, publish, rollback, history, show)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fraudops.core.config import Settings
from fraudops_dev.cli.common import AddCommand, Subparsers


def _policy_document(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise ValueError(f"cannot read the policy file {path}: {error.strerror or error}") from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path} is not JSON: {error}") from None


def cmd_policy_validate(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import DecisionPolicy

    policy = DecisionPolicy.from_dict(_policy_document(args.file))
    print(json.dumps({"valid": True, "sha256": policy.sha256, "policy": policy.to_dict()}, indent=2))
    print(f"valid: {len(policy.rules)} rule(s), bands {policy.bands.to_dict() if policy.bands else 'from the model'}",
          file=sys.stderr)  # fmt: skip
    return 0


def _policy_version(text: str) -> int:
    """``--to`` / ``--from``: a published version number, or ``builtin`` (the model's bands only)."""
    from fraudops.decisions.store import BUILTIN_NAME, BUILTIN_POLICY_VERSION

    if text.strip().lower() == BUILTIN_NAME:
        return BUILTIN_POLICY_VERSION
    try:
        version = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a policy version (a number, or builtin)") from None
    if version < 1:
        raise argparse.ArgumentTypeError(f"policy versions count from 1 ({version}); say builtin for the built-in one")
    return version


def cmd_policy_backtest(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import DecisionPolicy
    from fraudops.stages.backtest import backtest_policy, format_backtest

    draft = DecisionPolicy.from_dict(_policy_document(args.file))  # the errors `policy validate` gives
    result = backtest_policy(settings, draft, days=args.days)
    print(json.dumps(result.as_dict(), indent=2) if args.json else format_backtest(result))
    return 0


def cmd_policy_publish(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import publish_policy
    from fraudops.decisions.store import describe_version

    activation = publish_policy(settings, _policy_document(args.file), args.reason, expected_from=args.expected_from,
                                idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(activation.summary(), indent=2))
    if activation.action == "unchanged":
        print(f"unchanged: this policy already is the active version {activation.version}", file=sys.stderr)
    else:
        was = describe_version(activation.from_version)
        print(f"published: policy version {activation.version} is active (was {was}); a running API decides with "
              f"it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_policy_rollback(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import rollback_policy
    from fraudops.decisions.store import describe_version

    activation = rollback_policy(settings, args.reason, args.expected_from, args.to,
                                 idempotency_key=args.idempotency_key)  # fmt: skip
    print(json.dumps(activation.summary(), indent=2))
    now = "the built-in policy (the model's bands, no rules, no lists) is" if activation.builtin else (
        f"policy version {activation.version} is")  # fmt: skip
    print(f"rolled back: {now} active again (was {describe_version(activation.from_version)}); a running API "
          f"decides with it within {settings.model_refresh_seconds:g} s", file=sys.stderr)  # fmt: skip
    return 0


def cmd_policy_history(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import policy_history

    activations = policy_history(settings, args.limit)
    if args.json:
        print(json.dumps([a.summary() for a in activations], indent=2))
        return 0
    print(f"{'time (UTC)':<24} {'action':<12} {'from':>4} -> {'to':<4} {'name':<20} {'by':<24} reason")
    for a in activations:
        row = a.summary()
        print(f"{a.time[:23]:<24} {a.action:<12} {row['from_version'] or '-':>4} -> {row['version']:<4} "
              f"{str(a.policy.get('name'))[:20]:<20} {a.actor[:24]:<24} {a.reason}")  # fmt: skip
    return 0


def cmd_policy_show(args: argparse.Namespace, settings: Settings) -> int:
    from fraudops.decisions import active_policy, builtin_policy

    active = active_policy(settings)
    if active is None:
        print(json.dumps({"version": "builtin", "policy": builtin_policy().to_dict()}, indent=2))
        print("no policy published: the model's own bands decide", file=sys.stderr)
        return 0
    print(json.dumps({**active.summary(), "policy": active.policy}, indent=2))
    if active.builtin:
        print("rolled back to the built-in policy: the model's own bands decide", file=sys.stderr)
    return 0


def _add_policy(sub: Subparsers) -> None:
    policy = sub.add_parser("policy", help="decision policies: validate, backtest, publish, rollback, history, show")
    policy_sub = policy.add_subparsers(
        dest="policy_command",
        required=True,
        metavar="ACTION",
        help="validate | backtest | publish | rollback | history | show",
    )
    validate = policy_sub.add_parser("validate", help="check a policy file (JSON) without publishing it")
    validate.add_argument("file", help="the policy document (JSON; - for stdin)")
    validate.set_defaults(func=cmd_policy_validate)
    backtest = policy_sub.add_parser(
        "backtest", help="replay a draft policy on the lake's past decisions and labels, beside the active one"
    )
    backtest.add_argument("file", help="the draft policy document (JSON; - for stdin)")
    backtest.add_argument("--days", type=float, help="only the decisions of the newest N days (default: all)")
    backtest.add_argument("--json", action="store_true", help="JSON instead of a table")
    backtest.set_defaults(func=cmd_policy_backtest)
    publish = policy_sub.add_parser("publish", help="validate a policy and make it active as a new version")
    publish.add_argument("file", help="the policy document (JSON; - for stdin)")
    publish.add_argument("--reason", required=True, help="why (recorded in the policy history)")
    publish.add_argument("--from", dest="expected_from", type=_policy_version, metavar="N|builtin",
                         help="refuse unless this version (or builtin) is the active one (safe retries)")  # fmt: skip
    publish.add_argument("--idempotency-key", help="a retry with the same key reports the first attempt")
    publish.set_defaults(func=cmd_policy_publish)
    policy_rollback = policy_sub.add_parser("rollback", help="re-activate the previous (or a given) policy version")
    policy_rollback.add_argument("--to", type=_policy_version, metavar="N|builtin",
                                 help="the version to re-activate, or builtin (the model's bands only); default: the "
                                      "one before (the built-in policy before the first version)")  # fmt: skip
    policy_rollback.add_argument("--from", dest="expected_from", type=_policy_version, required=True,
                                 metavar="N|builtin",
                                 help="refuse unless this version is active (a retry changes nothing)")  # fmt: skip
    policy_rollback.add_argument("--reason", required=True, help="why (recorded in the policy history)")
    policy_rollback.add_argument("--idempotency-key", help="a retry with the same key reports the first attempt")
    policy_rollback.set_defaults(func=cmd_policy_rollback)
    policy_history = policy_sub.add_parser("history", help="every policy change: when, from -> to, why, by whom")
    policy_history.add_argument("--limit", type=int, default=None, help="only the newest N changes")
    policy_history.add_argument("--json", action="store_true", help="JSON instead of a table")
    policy_history.set_defaults(func=cmd_policy_history)
    policy_sub.add_parser("show", help="the active policy document and its version").set_defaults(func=cmd_policy_show)


COMMANDS: dict[str, AddCommand] = {
    "policy": _add_policy,
}
