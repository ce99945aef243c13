"""The real retrain.asl.json, with the template's substitutions, executed by moto's ASL engine; its
Lambda tasks run this project's train and promote handlers in process (fraudops.emulation)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fraudops_dev.datagen import GeneratorConfig, generate
from fraudops_dev.emulation import (
    CONSTANT_SUBSTITUTIONS,
    Emulation,
    definition_substitutions,
    emulated_retraining,
    render_definition,
)

from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.config import Settings
from fraudops.lake import Lake
from fraudops.lake.transactions import write_transaction_frames
from tests.helpers.stack import lake_of, production_version

pytestmark = pytest.mark.e2e

FAST = {"FRAUDOPS_N_ESTIMATORS": "60", "FRAUDOPS_EARLY_STOPPING_ROUNDS": "10", "FRAUDOPS_PROMOTION_FLOOR": "0.3"}


@pytest.fixture
def emulation(small_db: Path) -> Iterator[Emulation]:
    with emulated_retraining(FAST) as emulated:
        emulated.upload_data(Settings(lake_uri=str(lake_of(small_db))))
        yield emulated


def work(emulation: Emulation) -> list[tuple[str, str]]:
    """(function, action) of the invocations that curate, plan, train or promote (the lease steps left out)."""
    calls = [(i.function, i.event.get("action", "promote") if "promote" in i.function else
              "curate" if "curate" in i.function else i.event.get("action", "train"))
             for i in emulation.invocations]  # fmt: skip
    return [call for call in calls if not call[1].endswith("_lease")]


def lease_steps(emulation: Emulation) -> list[str]:
    return [i.event["action"] for i in emulation.invocations if str(i.event.get("action", "")).endswith("_lease")]


def production_alias_version(emulation: Emulation) -> str | None:
    from fraudops.core.config import get_settings

    return production_version(get_settings())


def test_definition_uses_exactly_the_template_substitutions() -> None:
    spark = {"SparkApplicationId", "SparkJobRoleArn", "SparkEntryPoint", "SparkLogUri", "SparkSubmitParameters"}
    lambdas = {"TrainFunctionArn", "PromoteFunctionArn", "CurateFunctionArn"}
    assert set(definition_substitutions()) == {*lambdas, "Partition", *spark}
    assert set(CONSTANT_SUBSTITUTIONS) == {"Partition", *spark}  # the emulation has a value for each
    rendered = json.loads(
        render_definition(
            {
                **CONSTANT_SUBSTITUTIONS,
                "TrainFunctionArn": "arn:t",
                "PromoteFunctionArn": "arn:p",
                "CurateFunctionArn": "arn:c",
                "Partition": "aws-cn",
            }
        )
    )
    assert rendered["States"]["TrainOnSpark"]["Resource"] == "arn:aws-cn:states:::emr-serverless:startJobRun.sync"
    assert rendered["States"]["Train"]["Resource"] == "arn:aws-cn:states:::lambda:invoke"  # no hard-coded arn:aws
    assert rendered["States"]["Train"]["Parameters"]["FunctionName"] == "arn:t"
    assert rendered["States"]["Promote"]["Parameters"]["FunctionName"] == "arn:p"


def test_better_model_is_promoted_then_a_worse_one_is_not(
    emulation: Emulation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # Lambda's working directory is read-only: nothing may land there
    first = emulation.run()
    assert first.status == "SUCCEEDED", first.cause
    assert first.output["promotion"]["outcome"] == "promoted"
    assert first.output["train"]["version"] == "1"
    assert [e["type"] for e in first.events][-2:] == ["SucceedStateExited", "ExecutionSucceeded"]
    assert any(e.get("stateExitedEventDetails", {}).get("name") == "NewVersionInProduction" for e in first.events)

    worse = emulation.run({"feature_set": "seed"})
    assert worse.status == "SUCCEEDED", worse.cause
    assert worse.output["promotion"]["outcome"] == "kept"
    assert worse.output["promotion"]["production_version"] == "1"
    gain = worse.output["promotion"]["gain"]  # the decision's confidence interval, in the execution output
    assert gain["lower"] <= gain["gain"] <= gain["upper"] and gain["upper"] < 0 and gain["confidence"] == 0.95
    assert first.output["promotion"]["gain"] is None  # the first model is judged against the floor alone
    assert any(e.get("stateExitedEventDetails", {}).get("name") == "ProductionKept" for e in worse.events)
    assert production_alias_version(emulation) == "1"
    # lease, curate, plan, train, promote, release: twice
    assert [i.outcome for i in emulation.invocations] == ["ok"] * 12
    assert lease_steps(emulation) == ["acquire_lease", "release_lease"] * 2
    assert list(tmp_path.iterdir()) == []


def test_training_error_fails_the_execution_with_its_cause(emulation: Emulation, tmp_path: Path) -> None:
    assert emulation.run().status == "SUCCEEDED"
    no_fraud = Settings(lake_uri=str(tmp_path / "nofraud-lake"))
    write_transaction_frames(Lake(no_fraud).transactions, [generate(GeneratorConfig(5_000, seed=3, fraud_rate=0.0))])
    emulation.upload_data(no_fraud)
    failed = emulation.run()
    assert failed.status == "FAILED"
    assert failed.error == "TrainingError"
    assert "fraud" in (failed.cause or "")
    assert work(emulation).count(("fraudops-promote-local", "promote")) == 1  # never reached the second time
    assert lease_steps(emulation) == ["acquire_lease", "release_lease"] * 2  # released on failure too
    assert production_alias_version(emulation) == "1"


def test_lambda_service_error_is_retried(emulation: Emulation) -> None:
    emulation.service_errors["fraudops-train-local"] = 1
    result = emulation.run()
    assert result.status == "SUCCEEDED", result.cause
    outcomes = [(i.function, i.outcome) for i in emulation.invocations if i.function == "fraudops-train-local"]
    # the plan step's call fails once and is retried, then the training call
    assert outcomes == [("fraudops-train-local", o) for o in ("service_error", "ok", "ok")]
    failed_tasks = [e for e in result.events if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed_tasks] == ["Lambda.ServiceException"]


def test_bad_input_fails_with_a_branchable_error(emulation: Emulation) -> None:
    result = emulation.run({"feature_set": "everything"})
    assert result.status == "FAILED"
    assert result.error == "InvalidInputError"
    assert "feature_set" in (result.cause or "")


def test_only_one_retraining_at_a_time(emulation: Emulation) -> None:
    first = emulation.start()
    deadline = time.monotonic() + 30
    while not any(e["type"] == "ChoiceStateExited" for e in emulation.history(first)):  # past its own check
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = emulation.start()  # the first is still training: it holds the lease
    second_result = emulation.wait(second)
    # a skip is no failure (the failed-retraining alarm fires on FAILED), and it says why
    assert second_result.status == "SUCCEEDED", second_result.cause
    assert second_result.output["lease"]["acquired"] is False
    assert second_result.output["lease"]["holder"] == first
    assert "another retraining" in second_result.output["lease"]["reason"]
    assert any(e.get("stateExitedEventDetails", {}).get("name") == "SkippedAnotherRetrainingRunning"
               for e in second_result.events)  # fmt: skip
    assert emulation.wait(first).status == "SUCCEEDED"
    assert work(emulation) == [
        ("fraudops-curate-local", "curate"),
        ("fraudops-train-local", "plan"),
        ("fraudops-train-local", "train"),
        ("fraudops-promote-local", "promote"),
    ]
    third = emulation.run()  # the first released the lease: the next one trains
    assert third.status == "SUCCEEDED" and third.output["lease"]["acquired"] is True, third.output


def test_the_smoke_command_finds_the_stack_and_runs_one_retraining(
    emulation: Emulation, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fraudops --aws smoke --stack S --retrain`'s AWS half (the stack's outputs, the key's value, one
    execution followed to its end) against emulated AWS, so the IAM check covers the pipeline's SmokeRole."""
    import boto3
    from fraudops_dev import smoke
    from fraudops_dev.iam.roles import STACK

    region = "us-east-1"
    key = boto3.client("apigateway", region_name=region).create_api_key(name="smoke", enabled=True)
    outputs = {"ApiUrl": "https://example.execute-api.us-east-1.amazonaws.com/dev", "ApiKeyId": key["id"],
               "RetrainStateMachineArn": emulation.state_machine_arn}  # fmt: skip
    template = {"Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
                "Outputs": {name: {"Value": value} for name, value in outputs.items()}}  # fmt: skip
    boto3.client("cloudformation", region_name=region).create_stack(StackName=STACK, TemplateBody=json.dumps(template))
    real_sleep = time.sleep
    monkeypatch.setattr(smoke.time, "sleep", lambda seconds: real_sleep(min(seconds, 0.2)))  # its 10 s polls

    endpoints = smoke.stack_endpoints(STACK, region)
    assert endpoints == {"url": outputs["ApiUrl"], "key": key["value"], "state_machine": emulation.state_machine_arn}
    outcome = smoke.retrain_in_aws(endpoints["state_machine"], region, timeout=600)()
    assert outcome["status"] == "SUCCEEDED", outcome
    assert outcome["promotion"]["outcome"] in {"promoted", "rejected"}


def test_after_an_emulated_retrain_the_api_logs_as_itself_and_each_function_as_its_own_service(
    small_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 27: the drift demo serves the API in the process that runs the emulated retraining; the
    handlers' modules routed the core ``fraudops`` loggers to their own Powertools handler for good, so
    the API's lines came out as the promote function's JSON. Each function keeps the service name the
    template gives it, and only while it runs."""
    import logging
    import sys

    from cfnlint.decode import decode
    from fastapi.testclient import TestClient
    from fraudops_dev.emulation import FUNCTIONS, TEMPLATE_PATH, function_service_names

    from fraudops.api import create_app
    from fraudops.decisions import publish_policy
    from fraudops.serving.decide import PolicyProvider
    from fraudops.serving.provider import ModelProvider
    from tests.helpers.models import train_local_model
    from tests.helpers.stack import fast_settings

    api_settings = fast_settings(db_path=small_db, state_dir=tmp_path / "api", api_keys="k")
    loaded = train_local_model(api_settings)
    provider = ModelProvider(api_settings, loader=lambda _: loaded, etag_reader=lambda _: loaded.etag)
    client = TestClient(create_app(api_settings, provider, ["k"], None, PolicyProvider(api_settings)))
    core = logging.getLogger("fraudops")
    before = (list(core.handlers), core.propagate, core.level)
    for module, _ in FUNCTIONS.values():  # imported by this run, as in a fresh `make drift-demo`
        sys.modules.pop(module, None)

    with emulated_retraining(FAST) as emulation:
        emulation.upload_data(Settings(lake_uri=str(lake_of(small_db))))
        assert emulation.run().status == "SUCCEEDED"

    template, _ = decode(str(TEMPLATE_PATH))
    assert template is not None
    services = {
        resource["Properties"]["ImageConfig"]["Command"][0].split(".")[0]:
            resource["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for resource in template["Resources"].values()
        if "Command" in resource.get("Properties", {}).get("ImageConfig", {})
    }  # fmt: skip
    assert services["promote_function"] == "fraudops-promote" and function_service_names() == services
    for module, _ in FUNCTIONS.values():
        assert sys.modules[module].logger.service == services[module]
    assert (list(core.handlers), core.propagate, core.level) == before
    caplog.set_level(logging.INFO)
    publish_policy(api_settings, {"name": "ops"}, "after the retraining")
    assert client.post("/predict", json=EXAMPLE_TRANSACTION, headers={"x-api-key": "k"}).status_code == 200
    lines = [r for r in caplog.records if r.name == "fraudops.serving.decide"]
    assert "decision policy version 1 is active" in [r.getMessage() for r in lines]  # reached this process's logging
