"""Issue 10: the template as the SAM translator turns it into CloudFormation, with each samconfig
environment's parameter overrides (what `sam deploy --config-env X` would deploy)."""

from __future__ import annotations

import copy
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parents[2]


class NoManagedPolicies:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one; ours do not."""

    def load(self) -> dict[str, str]:
        return {}


def environments() -> dict[str, dict[str, str]]:
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    found = {}
    for name, sections in config.items():
        if isinstance(sections, dict) and "deploy" in sections:
            overrides = sections["deploy"]["parameters"].get("parameter_overrides", "")
            found[name] = dict(item.split("=", 1) for item in shlex.split(overrides))
    return found


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    parsed, errors = decode(str(ROOT / "template.yaml"))
    assert not errors and parsed is not None
    return dict(parsed)


def packaged(template: dict[str, Any]) -> dict[str, Any]:
    """What `sam build && sam package` hand the translator: image URIs and S3 URIs for local paths."""
    template = copy.deepcopy(template)
    for name, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function" and properties.get("PackageType") == "Image":
            properties["ImageUri"] = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/fraudops:{name.lower()}-v1"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in properties:
            properties["DefinitionUri"] = f"s3://sam-artifacts/{Path(properties['DefinitionUri']).name}"
    return template


def translated(template: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items() if "Default" in spec}
    values = {**defaults, **parameters, "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
              "AWS::Partition": "aws", "AWS::StackName": "fraudops-test"}  # fmt: skip
    return transform(packaged(template), values, NoManagedPolicies())


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
