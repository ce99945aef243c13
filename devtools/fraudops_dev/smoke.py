"""`fraudops smoke`: is a deployed (or the local) stack working, as its users see it?

Health, a key-authenticated prediction, 401 without a key and 403 with a wrong one, `/model`, and
optionally one retraining (start, wait, report the decision). Against a URL and key, or a stack name
whose outputs give the URL, the API key id and the state machine.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fraudops.api.schemas import EXAMPLE_TRANSACTION
from fraudops.core.errors import ConfigError
from fraudops_dev.local import get_json, post_json


@dataclass
class SmokeReport:
    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append((name, ok, detail))

    @property
    def passed(self) -> bool:
        return all(ok for _, ok, _ in self.checks)


def stack_endpoints(stack: str, region: str) -> dict[str, str]:
    """ApiUrl, the API key's value and the retrain state machine, from the stack's outputs."""
    import boto3

    outputs = {
        o["OutputKey"]: o["OutputValue"]
        for o in boto3.client("cloudformation", region_name=region)
        .describe_stacks(StackName=stack)["Stacks"][0]
        .get("Outputs", [])
    }
    missing = {"ApiUrl", "ApiKeyId"} - set(outputs)
    if missing:
        raise ConfigError(f"stack {stack!r} lacks the output(s) {', '.join(sorted(missing))}")
    key = boto3.client("apigateway", region_name=region).get_api_key(apiKey=outputs["ApiKeyId"], includeValue=True)
    return {
        "url": outputs["ApiUrl"],
        "key": str(key["value"]),
        "state_machine": outputs.get("RetrainStateMachineArn", ""),
    }


def run_smoke(base: str, key: str, retrain: Callable[[], dict[str, Any]] | None = None) -> SmokeReport:
    report = SmokeReport()
    base = base.rstrip("/")
    status, health = get_json(f"{base}/health")
    report.check("GET /health", status == 200 and health.get("status") in {"ok", "degraded"}, json.dumps(health))
    status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, key)
    ok = status == 200 and 0.0 <= answer.get("probability", -1) <= 1.0
    report.check("POST /predict with the key", ok, f"{status} {json.dumps(answer)}")
    status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, None)
    report.check("POST /predict without a key -> 401", status == 401, str(status))
    status, answer = post_json(f"{base}/predict", EXAMPLE_TRANSACTION, "smoke-test-wrong-key-0000")
    report.check("POST /predict with a wrong key -> 403", status == 403, str(status))
    status, model = get_json(f"{base}/model", key)
    report.check(
        "GET /model", status == 200 and "model_version" in model, f"{status} version {model.get('model_version')}"
    )
    if retrain is not None:
        started = time.monotonic()
        outcome = retrain()
        lease = outcome.get("lease") or {}
        decided = json.dumps(outcome.get("promotion"))
        if lease.get("acquired") is False:  # another retraining held the lease: nothing was tested
            decided = f"skipped, {lease.get('reason')}"
        report.check(
            "one retraining execution",
            outcome.get("status") == "SUCCEEDED" and lease.get("acquired") is not False,
            f"{outcome.get('status')} in {time.monotonic() - started:.0f}s: {decided}",
        )
    return report


def retrain_in_aws(state_machine_arn: str, region: str, timeout: float = 1800) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        import boto3

        client = boto3.client("stepfunctions", region_name=region)
        arn = client.start_execution(
            stateMachineArn=state_machine_arn, input=json.dumps({"feature_set": "engineered", "reason": "smoke"})
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while True:
            description = client.describe_execution(executionArn=arn)
            if description["status"] != "RUNNING" or time.monotonic() > deadline:
                break
            time.sleep(10)
        output = json.loads(description.get("output") or "{}")
        return {"status": description["status"], "promotion": output.get("promotion"), "lease": output.get("lease")}

    return run
