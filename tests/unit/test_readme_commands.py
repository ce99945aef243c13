"""Issue 28 item 3: every command the README shows is run by a test. The table below names, per `make`
target, the test that runs it (or what runs it in CI, and why not a test); a new README command
without an entry fails here, an entry must name a test function that exists, and for a target that
wraps the CLI the test must run the same `fraudops <command>` the target runs (read from `make -n`)."""

from __future__ import annotations

import ast
import json
import re
import shlex
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fraudops.api import create_app
from fraudops.core.config import Settings
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"

# target -> the tests that run it. "tests/...py::name" is a test function (its file's fixtures and
# module-level helpers it calls count as its body); "ci:<file>" is a CI script that runs the target.
COVERAGE: dict[str, tuple[str, ...]] = {
    "demo": ("tests/e2e/test_second_week.py::test_the_demo_leaves_an_imported_table_byte_identical_and_says_where_its_state_is",),  # noqa: E501
    "test": ("ci:.ci/run", "ci:.github/workflows/pipeline.yml"),
    "test-fast": ("ci:.ci/run",),
    # `make lint` needs SAM CLI, checkov and npm packages (.venv-tools, .ci/tools): the GitHub workflow
    # runs it; .ci/run (the local CI) does not, and no test runs the target as a whole (its parts are
    # tested one by one: test_docs' doc links, test_pipelines, test_sam_translation, test_build_context).
    "lint": ("ci:.github/workflows/pipeline.yml",),
    "fmt": ("tests/unit/test_help_and_make.py::test_make_fmt_formats_and_fixes_what_it_finds",),
    "help": ("tests/unit/test_monitor_windows.py::test_help_says_the_monitor_can_start_a_retraining_and_how_not_to",),
    "up": ("tests/e2e/test_local_stack.py::test_a_restart_and_a_kill_9_lose_nothing",),
    "down": ("tests/e2e/test_local_stack.py::test_a_restart_and_a_kill_9_lose_nothing",),
    "logs": ("tests/e2e/test_local_stack.py::test_a_restart_and_a_kill_9_lose_nothing",),
    "generate": ("tests/unit/test_lake.py::test_sql_counts_what_generate_wrote",),
    "sql": ("tests/unit/test_help_and_make.py::test_make_sql_passes_the_query_through_as_typed",),
    "curate": ("tests/e2e/test_policy_backtest.py::test_policy_backtest_on_served_traffic_beside_the_active_policy",),
    "train": ("tests/e2e/test_bands_budget.py::test_the_served_bands_stay_within_the_default_alert_budget",),
    "promote": ("tests/e2e/test_bands_budget.py::test_the_served_bands_stay_within_the_default_alert_budget",),
    "predict": ("tests/e2e/test_second_week.py::test_the_stack_remembers_its_ports",),
    "retrain": ("tests/e2e/test_local_stack.py::test_retrain_acts_on_the_stack",),
    "batch-score": ("tests/e2e/test_batch_scoring.py::test_make_batch_score_scores_a_day_csv_through_the_cli",),
    # with --no-retrain (NO_RETRAIN=1): a test must not start a retraining it does not look at. It renders the
    # report in chromium and skips where chromium is missing (CI sets CI_REQUIRE_CHROMIUM: there it fails).
    "monitor": ("tests/e2e/test_report_browser.py::test_a_go_live_week_and_a_normal_window_render_without_contradiction",),  # noqa: E501
    "drift-demo": ("tests/e2e/test_monitoring.py::test_the_drift_loop_end_to_end",),
    "clean": ("tests/e2e/test_second_week.py::test_make_clean_keeps_your_tables_and_says_so",),
    "clean-data": ("tests/unit/test_help_and_make.py::test_make_clean_data_deletes_each_table_and_names_it",),
}  # fmt: skip
# What a dry run needs besides VENV and STAMP (the targets refuse to run without them).
MAKE_ARGUMENTS = {"batch-score": ["FILE=day.csv"], "sql": ["Q=SELECT 1"]}


def code_in(markdown: str) -> list[str]:
    """The README's code: each fenced block and each inline `code` span outside them."""
    fences = re.findall(r"^```[^\n]*\n(.*?)^```", markdown, re.M | re.S)
    prose = re.sub(r"^```[^\n]*\n.*?^```", "", markdown, flags=re.M | re.S)
    return fences + re.findall(r"`([^`\n]+)`", prose)


def readme_targets() -> set[str]:
    return {target for code in code_in(README.read_text()) for target in re.findall(r"\bmake ([a-z][a-z-]*)", code)}


def readme_curl_body() -> dict[str, object]:
    """The JSON body of the README's curl to /predict (its -d '...' argument)."""
    (command,) = [code for code in code_in(README.read_text()) if code.lstrip().startswith("curl")]
    words = shlex.split(command.replace("\\\n", " "))
    assert "http://127.0.0.1:8000/predict" in words
    body: dict[str, object] = json.loads(words[words.index("-d") + 1])
    return body


@cache
def module_functions(path: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse((ROOT / path).read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def commands_run_by(path: str, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """The `fraudops` commands (and `make <target>`s, as "make:<target>") a test function runs: calls
    `main([cmd, ...])`, `fraudops(env, cmd)` / `cli(env, cmd)` (the stack tests' subprocess helpers) and
    subprocesses of `make` (not dry runs), in its body, its fixtures and the module's helpers it calls."""
    functions = module_functions(path)
    node = functions[name]
    found: set[str] = set()
    follow = {arg.arg for arg in node.args.args} & functions.keys()  # fixtures defined in the file
    for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
        func = call.func
        called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        first = call.args[0] if call.args else None
        if called == "main" and isinstance(first, ast.List) and first.elts:
            head = first.elts[0]
            if isinstance(head, ast.Constant) and isinstance(head.value, str):
                found.add(head.value)
        elif called in {"fraudops", "cli"} and len(call.args) > 1:
            command = call.args[1]
            if isinstance(command, ast.Constant) and isinstance(command.value, str):
                found.add(command.value)
        elif isinstance(first, ast.List):
            words = [e.value for e in first.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
            if words[:1] == ["make"] and not {"-n", "--dry-run", "--just-print"} & set(words):  # a dry run runs nothing
                found |= {f"make:{word}" for word in words[1:] if re.fullmatch(r"[a-z][a-z-]*", word)}
        if called in functions and called != name:
            follow.add(called)
    for helper in follow - seen - {name}:
        found |= commands_run_by(path, helper, seen | {name})
    return found


@cache
def dry_run(target: str) -> str:
    """`make -n <target>` with this interpreter's venv and an existing stamp: what it runs, installing nothing."""
    venv = Path(sys.executable).parent.parent
    with tempfile.TemporaryDirectory() as folder:
        stamp = Path(folder) / ".installed"  # newer than pyproject.toml: the install rule has nothing to do
        stamp.touch()
        result = subprocess.run(
            ["make", "-n", target, f"VENV={venv}", f"STAMP={stamp}", *MAKE_ARGUMENTS.get(target, [])],
            cwd=ROOT, capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
    return result.stdout


def cli_command_of(target: str) -> str | None:
    """The `fraudops <command>` a target runs: its recipe's last `.../bin/fraudops` line (train first
    checks the lake with `fraudops sql`; what it is for is the last one)."""
    commands = re.findall(r"/bin/fraudops ([a-z][a-z-]*)", dry_run(target))
    return commands[-1] if commands else None


def test_every_make_target_the_readme_shows_has_an_entry_and_nothing_else_does() -> None:
    shown = readme_targets()
    assert {"demo", "test", "up", "logs", "batch-score", "fmt", "sql"} <= shown  # the parser finds them
    missing, stale = shown - COVERAGE.keys(), COVERAGE.keys() - shown
    assert not missing and not stale, f"shown but not covered: {missing}; covered but not shown: {stale}"


@pytest.mark.parametrize("target", sorted(COVERAGE))
def test_each_entry_names_what_really_runs_the_target(target: str) -> None:
    """A named test exists and runs the target itself (`make <target>`) or the `fraudops` command the
    target's recipe runs; a CI entry's script runs `make <target>`."""
    command = cli_command_of(target)
    for entry in COVERAGE[target]:
        if entry.startswith("ci:"):
            script = (ROOT / entry.removeprefix("ci:")).read_text()
            assert re.search(rf"^\s*(- run: )?make {re.escape(target)}( |$)", script, re.M), (target, entry)
            continue
        path, name = entry.split("::")
        assert name in module_functions(path), f"{entry}: no such test function"
        assert name.startswith("test_"), entry
        runs = commands_run_by(path, name)
        assert f"make:{target}" in runs or (command is not None and command in runs), (
            f"{entry} runs {sorted(runs)}, not `make {target}` nor `fraudops {command}`"
        )


def test_the_dry_run_reads_the_recipe() -> None:
    """The check above can fail: each target's recipe names its own command, not another's."""
    assert cli_command_of("logs") == "logs" and cli_command_of("batch-score") == "batch-score"
    assert cli_command_of("train") == "train" and cli_command_of("clean") is None
    assert "predict" not in commands_run_by("tests/e2e/test_local_stack.py", "test_a_restart_and_a_kill_9_lose_nothing")
    # `make -n monitor` prints the recipe and runs nothing: it does not count as running the target
    help_test = commands_run_by(
        "tests/unit/test_monitor_windows.py", "test_help_says_the_monitor_can_start_a_retraining_and_how_not_to"
    )
    assert "make:help" in help_test and "make:monitor" not in help_test


@pytest.fixture(scope="module")
def api_settings(small_db: Path) -> Settings:
    return fast_settings(db_path=small_db, api_keys="key-one")


@pytest.fixture(scope="module")
def loaded(api_settings: Settings) -> LoadedModel:
    return train_local_model(api_settings)


def test_the_readmes_curl_body_is_a_valid_prediction_request(api_settings: Settings, loaded: LoadedModel) -> None:
    body = readme_curl_body()
    provider = ModelProvider(api_settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    client = TestClient(create_app(api_settings, provider, api_settings.api_key_values()))
    response = client.post("/predict", json=body, headers={"x-api-key": "key-one"})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["outcome"] in {"approve", "review", "block"} and 0.0 <= answer["probability"] <= 1.0
