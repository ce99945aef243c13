"""The AWS call check under pytest-xdist: calls recorded in workers are checked once, by the controller,
and a denied one fails the run (tests/helpers/aws_calls.py). Each case runs a tiny suite with ``-n 2``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("xdist")

ROOT = Path(__file__).resolve().parents[2]

CONFTEST = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
pytest_plugins = ["tests.helpers.aws_calls"]
"""

# Calls as the API function's code would make them on the model bucket: reading the serving manifest is
# granted, writing the registry is not (the same pair as test_iam_policy).
SUITE = """
import os
from fraudops_dev.iam.calls import Call
from tests.helpers import aws_calls

def call(operation, key):
    return Call("ApiFunctionRole", "s3", operation, {"Bucket": "moto-models", "Key": key},
                status=200, buckets={"moto-models": "ModelBucket"})

def test_allowed_in_a_worker():
    assert os.environ["PYTEST_XDIST_WORKER"]
    aws_calls.RECORDED.append(call("GetObject", "mlflow/serving/manifest.json"))

def test_second_in_a_worker():
    assert os.environ["PYTEST_XDIST_WORKER"]
    aws_calls.RECORDED.append(call(OPERATION, "registry/mlflow.db" if OPERATION == "PutObject" else "mlflow/x"))
"""


def run(pytester: pytest.Pytester, operation: str, extra_conftest: str = "") -> pytest.RunResult:
    pytester.makeconftest(CONFTEST + textwrap.dedent(extra_conftest))
    pytester.makepyfile(test_tiny=f"OPERATION = {operation!r}\n" + SUITE)
    return pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")


@pytest.mark.slow
def test_a_denied_call_in_a_worker_fails_the_controllers_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, "PutObject")
    result.stdout.fnmatch_lines(["*calls gathered from 2 xdist worker(s)*", "*DENIED ApiFunctionRole*s3:PutObject*"])
    result.assert_outcomes(passed=2)  # every test passed: the denial alone fails the run
    assert result.ret == pytest.ExitCode.TESTS_FAILED


@pytest.mark.slow
def test_allowed_calls_from_workers_pass_and_are_counted(pytester: pytest.Pytester) -> None:
    result = run(pytester, "GetObject")
    result.stdout.fnmatch_lines(["*calls gathered from 2 xdist worker(s)*", "ApiFunctionRole * 2 * 0"])
    assert result.ret == pytest.ExitCode.OK


@pytest.mark.slow
def test_a_worker_that_sends_no_calls_fails_the_run(pytester: pytest.Pytester) -> None:
    drop = """
    import pytest
    from tests.helpers.aws_calls import WIRE_KEY

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(session):
        if getattr(session.config, "workerinput", {}).get("workerid") == "gw1":
            session.config.workeroutput.pop(WIRE_KEY, None)
    """
    result = run(pytester, "GetObject", drop)
    result.stdout.fnmatch_lines(["*worker gw1 sent no record of its AWS calls*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED
