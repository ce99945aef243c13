"""Issue 17 item 6: an alarm reaches the topic. Every publisher of the alarm topic (CloudWatch alarms,
EventBridge rules) is admitted by the topic policy and may use the topic's key, which therefore must be
a customer-managed key declared here: the AWS-managed alias/aws/sns key's policy cannot grant them
(https://docs.aws.amazon.com/sns/latest/dg/sns-key-management.html#compatibility-with-aws-services)."""

from __future__ import annotations

from typing import Any

import pytest
from fraudops_dev.transformed_template import load_template

SERVICE_OF = {"AWS::CloudWatch::Alarm": "cloudwatch.amazonaws.com", "AWS::Events::Rule": "events.amazonaws.com"}


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    return dict(load_template()["Resources"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def publishers(resources: dict[str, Any], topic: str) -> dict[str, str]:
    """Resource -> the service principal that publishes to ``topic`` on its behalf."""
    found = {}
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        targets = [t.get("Arn") for t in properties.get("Targets", [])] + properties.get("AlarmActions", [])
        if {"Ref": topic} in targets:
            found[name] = SERVICE_OF[resource["Type"]]
    return found


def test_both_kinds_of_publisher_exist(resources: dict[str, Any]) -> None:
    assert set(publishers(resources, "AlarmTopic").values()) == set(SERVICE_OF.values())


def test_the_topic_key_is_customer_managed_and_lets_every_publisher_encrypt(resources: dict[str, Any]) -> None:
    key_id = resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"]
    assert isinstance(key_id, dict), f"the alarm topic uses {key_id!r}, whose policy cannot admit CloudWatch"
    key_name = key_id.get("Ref") or key_id["Fn::GetAtt"][0]
    key = resources[key_name]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    statements = key["Properties"]["KeyPolicy"]["Statement"]
    for service in set(publishers(resources, "AlarmTopic").values()):
        granted = [
            s for s in statements if s["Effect"] == "Allow" and service in as_list(s["Principal"].get("Service"))
        ]
        actions = {a for s in granted for a in as_list(s["Action"])}
        assert {"kms:Decrypt", "kms:GenerateDataKey*"} <= actions, (service, actions)
        if service == "events.amazonaws.com":  # EventBridge's KMS calls carry no source context
            assert all("Condition" not in s for s in granted)


def test_the_topic_policy_admits_every_publisher(resources: dict[str, Any]) -> None:
    policy = resources["AlarmTopicPolicy"]["Properties"]
    assert {"Ref": "AlarmTopic"} in policy["Topics"]
    statements = policy["PolicyDocument"]["Statement"]
    for name, service in publishers(resources, "AlarmTopic").items():
        admitting = [
            s
            for s in statements
            if s["Effect"] == "Allow"
            and "sns:Publish" in as_list(s["Action"])
            and service in as_list(s["Principal"].get("Service"))
        ]
        assert admitting, f"{name} publishes as {service}, which the topic policy does not admit"
        if service == "events.amazonaws.com":
            sources = [s["Condition"]["ArnEquals"]["aws:SourceArn"] for s in admitting]
            assert {"Fn::GetAtt": [name, "Arn"]} in sources, f"the topic policy does not admit rule {name}"
