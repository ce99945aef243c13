"""Issue 28 item 2: the CLI is split by command group; `fraudops --help` still lists every command, in
the order it always did, and each command's handler lives in the module of its group."""

from __future__ import annotations

import argparse

import pytest
from fraudops_dev import cli
from fraudops_dev.cli import GROUPS, HELP_ORDER, build_parser
from fraudops_dev.cli.common import Subparsers


def _choices(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_the_help_lists_the_commands_in_help_order() -> None:
    names = [name for name in _choices(build_parser()) if name != "retrain-local"]  # retrain's old name
    assert names == list(HELP_ORDER)


def test_each_handler_lives_in_the_module_of_its_group() -> None:
    commands = _choices(build_parser())
    for group in GROUPS:
        for name in group.COMMANDS:
            parser = commands[name]
            if name in ("policy", "lake"):  # their handlers are those of their actions
                handlers = [sub.get_default("func") for sub in _choices(parser).values()]
            else:
                handlers = [parser.get_default("func")]
            assert [h.__module__ for h in handlers] == [group.__name__] * len(handlers), name


def test_a_command_missing_from_help_order_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def add_extra(sub: Subparsers) -> None:
        sub.add_parser("extra")

    monkeypatch.setattr(cli.lake, "COMMANDS", {**cli.lake.COMMANDS, "extra": add_extra})
    with pytest.raises(RuntimeError, match="HELP_ORDER"):
        build_parser()


def test_a_command_two_groups_add_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli.lake, "COMMANDS", {**cli.lake.COMMANDS, "train": cli.model.COMMANDS["train"]})
    with pytest.raises(RuntimeError, match="HELP_ORDER"):
        build_parser()
