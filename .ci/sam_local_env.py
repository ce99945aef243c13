"""Run by `make lint` with the SAM CLI's own Python: the environment each function receives under
`sam local invoke/start-api --env-vars events/env.json`, resolved by SAM CLI's code (no Docker needed),
checked against what docs/local.md's `sam local` steps promise."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider
from samcli.local.lambdafn.env_vars import EnvironmentVariables

ROOT = Path(__file__).resolve().parents[1]
PROMISED = {
    "ApiFunction": {"FRAUDOPS_API_KEYS": "local-dev-key", "FRAUDOPS_STORAGE": "s3", "HOME": "/tmp"},
    "TrainFunction": {
        "FRAUDOPS_LAKE_URI": "s3://fraudops-data/lake",
        "FRAUDOPS_STORAGE": "s3",
        "FRAUDOPS_REGISTRY_S3_KEY": "registry/mlflow.db",
        "HOME": "/tmp",
    },
    "PromoteFunction": {
        "FRAUDOPS_LAKE_URI": "s3://fraudops-data/lake",
        "FRAUDOPS_STORAGE": "s3",
        "FRAUDOPS_REGISTRY_S3_KEY": "registry/mlflow.db",
        "HOME": "/tmp",
    },
}


def main() -> int:
    env_json = json.loads((ROOT / "events" / "env.json").read_text())
    stacks, _ = SamLocalStackProvider.get_stacks(str(ROOT / "template.yaml"))
    provider = SamFunctionProvider(stacks)
    shell = {**os.environ, "HOME": "/home/developer", "FRAUDOPS_TRACKING_URI": ""}  # a developer's shell
    problems = []
    for name, promised in PROMISED.items():
        function = provider.get(name)
        assert function is not None, name
        resolved = EnvironmentVariables(
            function.name,
            function.memory,
            function.timeout,
            function.handler,
            variables=(function.environment or {}).get("Variables", {}),
            shell_env_values=shell,
            override_values=env_json.get(name, {}),
            aws_creds={"key": "testing", "secret": "testing", "region": "us-east-1"},
        ).resolve()
        for key, value in {**promised, "FRAUDOPS_S3_ENDPOINT_URL": env_json[name]["FRAUDOPS_S3_ENDPOINT_URL"]}.items():
            if resolved.get(key) != value:
                problems.append(f"{name}: {key}={resolved.get(key)!r}, docs/local.md promises {value!r}")
        for key in env_json.get(name, {}):
            if key not in resolved:
                problems.append(f"{name}: {key} from env.json is dropped by SAM CLI (not declared in the template)")
        if resolved.get("AWS_ACCESS_KEY_ID") != "testing":
            problems.append(
                f"{name}: AWS credentials are {resolved.get('AWS_ACCESS_KEY_ID')!r}, not moto's placeholders"
            )
    for problem in problems:
        print(problem)
    print(f"sam local environment: {len(PROMISED)} functions, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
