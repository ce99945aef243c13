"""The trust policy of a stage's pipeline execution role, for the jobs that assume it.

`sam pipeline bootstrap` creates the pipeline execution role trusting only
``repo:<owner>/<name>:ref:refs/heads/<branch>``. In .github/workflows/pipeline.yml that role is
assumed by two kinds of job: `build-and-package` (no environment: it presents the branch subject) and
`deploy-<stage>` (it names the GitHub environment, so it presents
``repo:<owner>/<name>:environment:<stage>``; https://docs.github.com/en/actions/reference/security/oidc).
This prints a trust policy that admits exactly those two, to replace the bootstrapped one:

    python -m fraudops_dev.pipeline_iam --repository OWNER/NAME --environment dev --account 123456789012 \\
        > trust-dev.json
    aws iam update-assume-role-policy --role-name <dev PipelineExecutionRole name> \\
        --policy-document file://trust-dev.json

(docs/deploy.md, "Roles and trust"; tests/unit/test_pipelines.py checks it against the workflow.)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"


def subjects(repository: str, environment: str, branch: str = "main") -> list[str]:
    """The OIDC subjects of the jobs that assume a stage's pipeline execution role."""
    return [f"repo:{repository}:ref:refs/heads/{branch}", f"repo:{repository}:environment:{environment}"]


def trust_policy(
    repository: str, environment: str, account: str, branch: str = "main", partition: str = "aws"
) -> dict[str, Any]:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
        raise ValueError(f"--repository must be owner/name, not {repository!r}")
    if not re.fullmatch(r"\d{12}", account):
        raise ValueError(f"--account must be a 12-digit AWS account id, not {account!r}")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:{partition}:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                        f"{GITHUB_OIDC_HOST}:sub": subjects(repository, environment, branch),
                    }
                },
            }
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Print a stage's pipeline execution role trust policy.")
    parser.add_argument("--repository", required=True, help="owner/name on GitHub")
    parser.add_argument("--environment", required=True, choices=["dev", "prod"], help="the GitHub environment")
    parser.add_argument("--account", required=True, help="the 12-digit AWS account id")
    parser.add_argument("--branch", default="main", help="the branch the packaging job runs on")
    args = parser.parse_args(argv)
    try:
        policy = trust_policy(args.repository, args.environment, args.account, args.branch)
    except ValueError as error:
        parser.error(str(error))
    print(json.dumps(policy, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
