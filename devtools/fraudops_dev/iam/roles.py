"""Each role's identity-based policy statements, from the SAM-transformed template, intrinsics resolved.

The template is translated once (``fraudops_dev.transformed_template``, samconfig's ``default``
environment), then every ``Ref``/``Fn::GetAtt``/``Fn::Sub``/``Fn::Join``/``Fn::If`` in a role's policies
is resolved to the ARN shape AWS gives that resource type, with deterministic physical names derived
from the logical id (``physical_name``). The recorded calls' concrete names (moto's random buckets, the
emulation's functions) are rewritten onto the same names by ``fraudops_dev.iam.calls``.

ARN shapes (Service Authorization Reference, "Resource types defined by ..."):
S3 bucket ``arn:aws:s3:::bucket``, object ``arn:aws:s3:::bucket/key``
(https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazons3.html); Lambda
``arn:aws:lambda:region:account:function:name``; Step Functions ``...:stateMachine:name`` and
``...:execution:name:id``; EMR Serverless ``arn:aws:emr-serverless:region:account:/applications/id``.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from fraudops_dev.transformed_template import PSEUDO_PARAMETERS, environments, load_template, translated

REPO_ROOT = Path(__file__).resolve().parents[3]
SMOKE_ROLE_TEMPLATE = REPO_ROOT / "infra" / "pipeline" / "smoke-role.yaml"
STACK = PSEUDO_PARAMETERS["AWS::StackName"]
REGION = PSEUDO_PARAMETERS["AWS::Region"]
ACCOUNT = PSEUDO_PARAMETERS["AWS::AccountId"]
PARTITION = PSEUDO_PARAMETERS["AWS::Partition"]

# The AWS managed policies SAM attaches to function roles, as AWS publishes them (only the statements;
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSLambdaBasicExecutionRole.html,
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AWSXrayWriteOnlyAccess.html).
MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "AWSLambdaBasicExecutionRole": [
        {
            "Sid": "AWSLambdaBasicExecutionRole",
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
    "AWSXrayWriteOnlyAccess": [
        {
            "Sid": "AWSXrayWriteOnlyAccess",
            "Effect": "Allow",
            "Action": [
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
                "xray:GetSamplingRules",
                "xray:GetSamplingTargets",
                "xray:GetSamplingStatisticSummaries",
            ],
            "Resource": "*",
        }
    ],
}


def physical_name(logical_id: str, resource_type: str) -> str:
    if resource_type == "AWS::Glue::Database":
        return _glue_database_names().get(logical_id, f"{STACK}-{logical_id}".replace("-", "_").lower())
    if resource_type == "AWS::S3::Bucket":
        return f"{STACK}-{logical_id.lower()}"
    if resource_type == "AWS::EMRServerless::Application":
        return f"00{logical_id.lower()}"
    return f"{STACK}-{logical_id}"


class Resolver:
    """Resolves CloudFormation intrinsics in one template to concrete strings."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str]) -> None:
        self.template = template
        self.resources: dict[str, Any] = template.get("Resources", {})
        declared = template.get("Parameters", {})
        self.values: dict[str, Any] = {n: s.get("Default") for n, s in declared.items() if "Default" in s}
        self.values.update(parameters)
        self.values.update(PSEUDO_PARAMETERS)
        self.conditions: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self._condition(self.template["Conditions"][name]))
        return self.conditions[name]

    def _condition(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::Equals":
                return self.resolve(value[0]) == self.resolve(value[1])
            if key == "Fn::Not":
                return not self._condition(value[0])
            if key == "Fn::And":
                return all(self._condition(v) for v in value)
            if key == "Fn::Or":
                return any(self._condition(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        return self.resolve(node)

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        resource = self.resources.get(name)
        if resource is None:
            raise KeyError(f"!Ref {name}: no such parameter or resource")
        kind = resource["Type"]
        if kind == "AWS::StepFunctions::StateMachine":
            return self.get_att(name, "Arn")
        if kind == "AWS::EMRServerless::Application":
            return physical_name(name, kind)
        properties = resource.get("Properties", {})
        if kind == "AWS::Glue::Database":  # !Ref gives the database's name, which DatabaseInput sets
            return self.resolve(properties["DatabaseInput"]["Name"])
        for key in ("RoleName", "FunctionName", "BucketName", "Name", "TopicName"):
            if key in properties and kind != "AWS::EMRServerless::Application":
                return self.resolve(properties[key])
        return physical_name(name, kind)

    def get_att(self, name: str, attribute: str) -> str:
        resource = self.resources[name]
        kind = resource["Type"]
        base = f"arn:{PARTITION}"
        if kind == "AWS::S3::Bucket" and attribute == "Arn":
            return f"{base}:s3:::{self.ref(name)}"
        if kind == "AWS::Lambda::Function" and attribute == "Arn":
            return f"{base}:lambda:{REGION}:{ACCOUNT}:function:{self.ref(name)}"
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"{base}:iam::{ACCOUNT}:role/{self.ref(name)}"
        if kind == "AWS::StepFunctions::StateMachine" and attribute == "Arn":
            properties = resource.get("Properties", {})
            machine = self.resolve(properties["StateMachineName"]) if "StateMachineName" in properties else name
            return f"{base}:states:{REGION}:{ACCOUNT}:stateMachine:{machine}"
        if kind == "AWS::EMRServerless::Application":
            application = physical_name(name, kind)
            if attribute == "ApplicationId":
                return application
            return f"{base}:emr-serverless:{REGION}:{ACCOUNT}:/applications/{application}"
        if kind == "AWS::KinesisFirehose::DeliveryStream" and attribute == "Arn":
            return f"{base}:firehose:{REGION}:{ACCOUNT}:deliverystream/{self.ref(name)}"
        if kind == "AWS::SQS::Queue" and attribute == "Arn":
            return f"{base}:sqs:{REGION}:{ACCOUNT}:{self.ref(name)}"
        return f"{base}:unresolved:{REGION}:{ACCOUNT}:{name}/{attribute}"

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                name, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(name, attribute)
            if key == "Fn::Sub":
                text, variables = (value, {}) if isinstance(value, str) else value
                local = {k: self.resolve(v) for k, v in variables.items()}

                def substitute(match: re.Match[str]) -> str:
                    token = match.group(1)
                    if token in local:
                        return str(local[token])
                    if "." in token:
                        return self.get_att(*token.split(".", 1))
                    return str(self.ref(token))

                return re.sub(r"\$\{([^}!][^}]*)\}", substitute, text)
            if key == "Fn::Join":  # the list may itself be an intrinsic (Fn::Split) that gives one
                items = self.resolve(value[1]) if isinstance(value[1], dict) else value[1]
                return str(value[0]).join(str(self.resolve(v)) for v in items)
            if key == "Fn::If":
                return self.resolve(value[1] if self.condition(value[0]) else value[2])
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
        return {k: self.resolve(v) for k, v in node.items() if v != {"Ref": "AWS::NoValue"}}


@lru_cache(maxsize=1)
def _glue_database_names() -> dict[str, str]:
    """Each Glue database's name in the template, for the stack ``STACK`` (LakeDatabase -> fraudops_lint_lake)."""
    template = load_template()
    resolver = Resolver(template, environments()["default"])
    return {
        name: str(resolver.ref(name))
        for name, resource in template.get("Resources", {}).items()
        if resource["Type"] == "AWS::Glue::Database"
    }


def _role_statements(resolver: Resolver, role: dict[str, Any]) -> list[dict[str, Any]]:
    properties = role.get("Properties", {})
    statements: list[dict[str, Any]] = []
    for policy in resolver.resolve(properties.get("Policies", [])):
        document = policy["PolicyDocument"]
        found = document["Statement"]
        statements += found if isinstance(found, list) else [found]
    for arn in resolver.resolve(properties.get("ManagedPolicyArns", [])):
        name = str(arn).rsplit("/", 1)[-1]
        if name not in MANAGED_POLICIES:
            raise KeyError(f"managed policy {arn} has no copy in fraudops_dev.iam.roles.MANAGED_POLICIES")
        statements += MANAGED_POLICIES[name]
    return statements


@lru_cache(maxsize=1)
def stack_roles(environment: str = "default") -> dict[str, list[dict[str, Any]]]:
    """role logical id -> its statements, for every AWS::IAM::Role in the transformed template."""
    import logging

    logging.getLogger("samtranslator").setLevel(logging.ERROR)
    parameters = environments()[environment]
    template = translated(load_template(), parameters)
    resolver = Resolver(template, parameters)
    return {
        name: _role_statements(resolver, resource)
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::IAM::Role"
    }


@lru_cache(maxsize=1)
def smoke_role() -> list[dict[str, Any]]:
    """The smoke role's statements for the stack ``STACK`` (infra/pipeline/smoke-role.yaml)."""
    template = load_template(SMOKE_ROLE_TEMPLATE)
    parameters = {"GitHubRepository": "owner/fraudops", "Environment": "dev", "StackName": STACK}
    return _role_statements(Resolver(template, parameters), template["Resources"]["SmokeRole"])


def all_roles() -> dict[str, list[dict[str, Any]]]:
    return {**stack_roles(), "SmokeRole": smoke_role()}


if __name__ == "__main__":
    print(json.dumps(all_roles(), indent=1))
