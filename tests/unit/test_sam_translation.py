"""Issues 10 and 17: the template as the SAM translator turns it into CloudFormation, with each samconfig
environment's parameter overrides (what `sam deploy --config-env X` would deploy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fraudops_dev.transformed_template import environments, lint, load_template, transformed_per_environment, translated

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def schedule_state(output: dict[str, Any], function_prefix: str) -> Any:
    rules = {
        n: r
        for n, r in output["Resources"].items()
        if r["Type"] == "AWS::Events::Rule" and n.startswith(function_prefix)
    }
    assert len(rules) == 1, rules.keys()
    return next(iter(rules.values()))["Properties"]["State"]


def resolve(value: Any, conditions: dict[str, bool]) -> Any:
    if isinstance(value, dict) and "Fn::If" in value:
        name, yes, no = value["Fn::If"]
        return yes if conditions[name] else no
    return value


@pytest.mark.parametrize("environment", sorted(environments()))
def test_retrain_schedule_none_disables_the_rule(template: dict[str, Any], environment: str) -> None:
    parameters = environments()[environment]
    output = translated(template, parameters)
    has_schedule = parameters.get("RetrainSchedule", template["Parameters"]["RetrainSchedule"]["Default"]) != "none"
    state = resolve(schedule_state(output, "RetrainStateMachineSchedule"), {"HasSchedule": has_schedule})
    assert state == ("ENABLED" if has_schedule else "DISABLED"), (environment, state)


def test_dev_never_retrains_on_a_timer_and_prod_does() -> None:
    assert environments()["default"]["RetrainSchedule"] == "none"
    assert environments()["prod"]["RetrainSchedule"].startswith("rate(")


def test_only_the_declared_stage_exists(template: dict[str, Any]) -> None:
    """Without OpenApiVersion SAM adds a stage named 'Stage' that the usage plan does not cover."""
    output = translated(template, environments()["default"])
    resources = output["Resources"].values()
    stages = [r["Properties"]["StageName"] for r in resources if r["Type"] == "AWS::ApiGateway::Stage"]
    assert stages == [{"Ref": "Stage"}], stages
    deployments = [r for r in resources if r["Type"] == "AWS::ApiGateway::Deployment"]
    assert all("StageName" not in d["Properties"] for d in deployments)  # no implicit "Stage" stage


@pytest.mark.slow
def test_the_transformed_template_has_no_cfn_lint_error() -> None:
    """Issue 17 item 1: what CloudFormation receives (after the SAM transform) has no dependency cycle
    (E3004) nor any other cfn-lint error, for every samconfig environment."""
    clean, report = lint(transformed_per_environment())
    assert clean, report


@pytest.mark.slow
def test_a_cycle_through_generated_resources_is_caught(template: dict[str, Any]) -> None:
    """The check can fail: the usage plan's id in the API function's environment (as before the fix)
    is a cycle only the transformed template shows."""
    variables = template["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    cyclic = {**template, "Resources": {**template["Resources"]}}
    cyclic["Resources"]["ApiFunction"] = {
        **template["Resources"]["ApiFunction"],
        "Properties": {
            **template["Resources"]["ApiFunction"]["Properties"],
            "Environment": {"Variables": {**variables, "FRAUDOPS_API_USAGE_PLAN_ID": {"Ref": "FraudApiUsagePlan"}}},
        },
    }
    clean, report = lint({"cyclic": translated(cyclic, environments()["default"])})
    assert not clean and "E3004" in report, report
