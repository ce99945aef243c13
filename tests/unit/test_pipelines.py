"""Issue 17 items 3, 4 and 10: the pipelines, the samconfig environments they use, the roles they
assume and the documented setup agree with each other (read from the files, not restated here)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode
from fraudops_dev.pipeline_iam import subjects, trust_policy
from fraudops_dev.pipelines import (
    JENKINSFILE_PATH,
    WORKFLOW_PATH,
    all_sam_commands,
    config_env_of,
    deployed_parameters_problems,
    doc_bootstrap_commands,
    doc_deploy_commands,
    jenkins_stages,
    jenkins_undefined_variables,
    modelled_parameters,
    workflow_jobs,
)

ROOT = Path(__file__).resolve().parents[2]
SMOKE_ROLE_TEMPLATE = ROOT / "infra" / "pipeline" / "smoke-role.yaml"
DEPLOY_DOC = (ROOT / "docs" / "deploy.md").read_text()
REPOSITORY = "acme/fraudops"  # any owner/name: the agreement must hold for every repository
IAM_PREFIX = {"cloudformation": "cloudformation", "stepfunctions": "states", "apigateway": "apigateway"}


def samconfig() -> dict[str, Any]:
    return tomllib.loads((ROOT / "samconfig.toml").read_text())


@pytest.mark.parametrize(("pipeline_env", "human_env"), [("pipeline-dev", "default"), ("pipeline-prod", "prod")])
def test_pipeline_config_envs_deploy_what_the_human_ones_do(pipeline_env: str, human_env: str) -> None:
    config = samconfig()
    ours, theirs = config[pipeline_env]["deploy"]["parameters"], config[human_env]["deploy"]["parameters"]
    for key in ("parameter_overrides", "tags", "capabilities", "region"):
        assert ours[key] == theirs[key], key
    assert config[pipeline_env]["global"]["parameters"] == config[human_env]["global"]["parameters"]
    # the bootstrapped bucket and repository come on the command line: nothing may resolve its own
    assert not {"resolve_s3", "resolve_image_repos", "s3_bucket", "image_repository"} & set(ours)


def test_every_pipeline_package_and_deploy_uses_a_pipeline_config_env() -> None:
    commands = [c for c in all_sam_commands() if c.subcommand in {"package", "deploy"}]
    assert len(commands) == 8, [c.where for c in commands]
    for command in commands:
        config_env = command.argv[command.argv.index("--config-env") + 1]
        assert config_env in {"pipeline-dev", "pipeline-prod"}, (command.where, config_env)
        stage = config_env.removeprefix("pipeline-")
        named = [v for v in command.argv if not v.startswith("--") and "=" not in v]  # not the parameter list
        targets = [v for v in named if "artifacts" in v or "image-repository" in v]
        assert len(targets) == 2 and all(stage in value for value in targets), (command.where, targets)


def test_the_jenkinsfile_defines_every_variable_it_uses() -> None:
    assert jenkins_undefined_variables() == []


def test_the_jenkinsfile_holds_no_agent_while_waiting_for_approval() -> None:
    text = JENKINSFILE_PATH.read_text()
    top = text[: text.index("stages {")]
    assert re.search(r"^\s*agent none\s*$", top, re.M), "a pipeline-wide agent is held through the approval"
    waiting = [(name, body) for name, body in jenkins_stages() if re.search(r"\binput\b", body)]
    assert len(waiting) == 1
    name, body = waiting[0]
    assert re.search(r"^\s*agent none\s*$", body, re.M), f"stage {name!r} takes an agent to wait"
    assert "timeout(" in body, f"stage {name!r} may wait forever"


def job_subject(environment: str | None) -> str:
    """What GitHub puts in the OIDC token's sub claim for a job on main."""
    return f"repo:{REPOSITORY}:environment:{environment}" if environment else f"repo:{REPOSITORY}:ref:refs/heads/main"


def smoke_role_trusted_subject(environment: str) -> str:
    template, errors = decode(str(SMOKE_ROLE_TEMPLATE))
    assert not errors and template is not None
    statement = template["Resources"]["SmokeRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]
    sub = statement["Condition"]["StringEquals"]["token.actions.githubusercontent.com:sub"]["Fn::Sub"]
    assert template["Parameters"]["Environment"]["AllowedValues"] == ["dev", "prod"]
    return str(sub).replace("${GitHubRepository}", REPOSITORY).replace("${Environment}", environment)


def test_every_role_trusts_the_subject_of_every_job_that_assumes_it() -> None:
    checked = 0
    for job in workflow_jobs().values():
        for role in job.roles:
            stage = role.split("_", 1)[0].lower()
            subject = job_subject(job.environment)
            if role.endswith("_PIPELINE_EXECUTION_ROLE"):
                trusted = trust_policy(REPOSITORY, stage, "123456789012")["Statement"][0]["Condition"]
                assert subject in trusted["StringEquals"]["token.actions.githubusercontent.com:sub"], (job.name, role)
            elif role.endswith("_SMOKE_ROLE"):
                assert smoke_role_trusted_subject(stage) == subject, (job.name, role)
            else:
                pytest.fail(f"job {job.name} assumes {role}, which docs/deploy.md does not set up")
            if job.environment:
                assert job.environment == stage, f"job {job.name} in environment {job.environment} assumes {role}"
            checked += 1
    assert checked == 6
    assert subjects(REPOSITORY, "dev") == [job_subject(None), job_subject("dev")]  # and nothing else


def smoke_calls() -> set[str]:
    """IAM actions of the AWS calls `fraudops smoke` makes, read from devtools/fraudops_dev/smoke.py."""
    tree = ast.parse((ROOT / "devtools" / "fraudops_dev" / "smoke.py").read_text())

    def client_service(node: ast.AST) -> str | None:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
            first = node.args[0]
            return first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        return None

    named = {
        target.id: client_service(node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and client_service(node.value)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    actions = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            service = client_service(owner) or (named.get(owner.id) if isinstance(owner, ast.Name) else None)
            if service:
                method = node.func.attr
                if service == "apigateway":  # API Gateway's control-plane actions are HTTP verbs
                    actions.add(f"apigateway:{method.split('_')[0].upper()}")
                else:
                    actions.add(f"{IAM_PREFIX[service]}:{''.join(p.title() for p in method.split('_'))}")
    return actions


def test_the_smoke_role_grants_exactly_what_fraudops_smoke_calls() -> None:
    template, errors = decode(str(SMOKE_ROLE_TEMPLATE))
    assert not errors and template is not None
    statements = template["Resources"]["SmokeRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    granted = {s["Action"] for s in statements}
    assert smoke_calls() == {
        "cloudformation:DescribeStacks",
        "apigateway:GET",
        "states:StartExecution",
        "states:DescribeExecution",
    }
    assert granted == smoke_calls()


def test_prod_needs_one_approval() -> None:
    """GitHub asks a protected environment's reviewers once per job that names it."""
    prod_jobs = [job for job in workflow_jobs().values() if job.environment == "prod"]
    assert len(prod_jobs) == 1, [job.name for job in prod_jobs]
    scripts = "\n".join(prod_jobs[0].runs)
    assert "sam deploy" in scripts and "fraudops --aws smoke" in scripts


def test_the_deploy_doc_sets_up_everything_the_pipelines_read() -> None:
    secrets = set(re.findall(r"secrets\.([A-Z_]+)", WORKFLOW_PATH.read_text()))
    credentials = set(re.findall(r"credentials\('([a-z0-9-]+)'\)", JENKINSFILE_PATH.read_text()))
    assert len(secrets) == 10 and len(credentials) == 10
    missing = sorted(name for name in secrets | credentials if name not in DEPLOY_DOC)
    assert missing == [], missing
    for step in ("update-assume-role-policy", "fraudops_dev.pipeline_iam", "infra/pipeline/smoke-role.yaml"):
        assert step in DEPLOY_DOC, step


def test_the_train_memory_advice_follows_the_measured_growth() -> None:
    """Item 5: where a user meets the 3,008 MB limit (the parameter, the deploy doc) the row count
    that fits is the one docs/scaling.md's measured growth gives, with its 70% memory margin."""
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    growth = re.search(r"peak memory grows by about ([\d,]+) MB per million rows \(\+([\d,]+) MB\)", scaling)
    assert growth is not None
    slope, intercept = (float(g.replace(",", "")) for g in growth.groups())
    fits = int((0.7 * 3008 - intercept) / slope * 10) / 10  # million rows, rounded down
    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    parameter = template["Parameters"]["TrainMemorySize"]
    description = " ".join(parameter["Description"].split())
    assert parameter["Default"] > 3008 and "3,008" in description
    assert f"about {fits} million rows" in description, (fits, description)
    assert f"about **{fits} million" in DEPLOY_DOC and "TrainMemorySize=3008" in DEPLOY_DOC


def test_the_lambda_training_limit_fits_the_train_functions_memory() -> None:
    """Issue 21: a window up to LambdaTrainingMaxRows goes to the train Lambda, so at the template's
    default TrainMemorySize the default limit must fit it (a 17M-row default at 6,144 MB sent windows of
    10-17M rows to a Lambda that runs out of memory); the description's figures follow the same rule."""
    scaling = (ROOT / "docs" / "scaling.md").read_text()
    growth = re.search(r"peak memory grows by about ([\d,]+) MB per million rows \(\+([\d,]+) MB\)", scaling)
    assert growth is not None
    slope, intercept = (float(g.replace(",", "")) for g in growth.groups())

    def fits(memory_mb: int) -> int:  # rows, rounded down to 100,000
        return int((0.7 * memory_mb - intercept) / slope * 10) * 100_000

    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    limit = template["Parameters"]["LambdaTrainingMaxRows"]
    memory = template["Parameters"]["TrainMemorySize"]["Default"]
    assert limit["Default"] == fits(memory), (limit["Default"], fits(memory))
    description = " ".join(limit["Description"].split())
    for memory_mb in (3008, 10240):
        assert f"{fits(memory_mb)} at {memory_mb:,} MB" in description, (fits(memory_mb), description)


def test_the_documented_bootstrap_runs_unattended_for_this_repository() -> None:
    """`make lint` runs it through SAM CLI; here: it is there, names GitHub as the OIDC provider and
    the branch the packaging job runs on, and never prompts (a first-time user pastes it as is)."""
    (bootstrap,) = doc_bootstrap_commands()
    argv = bootstrap.argv
    assert argv[:2] == ["pipeline", "bootstrap"]
    for flag in ("--no-interactive", "--no-confirm-changeset", "--create-image-repository"):
        assert flag in argv, flag
    assert argv[argv.index("--oidc-provider") + 1] == "github-actions"
    assert argv[argv.index("--cicd-provider") + 1] == "github-actions"  # else SAM CLI drops --oidc-provider
    assert argv[argv.index("--deployment-branch") + 1] == "main"


def test_every_pipeline_deploy_keeps_its_environments_parameters_and_names_the_spark_image() -> None:
    """Issue 26 finding 4: a pipeline deploy must deploy its samconfig environment's parameters and this
    commit's Spark image (SAM builds Lambda images only; the pipelines build and push it themselves)."""
    deploys = [c for c in all_sam_commands() if c.subcommand == "deploy"]
    assert len(deploys) == 4
    for command in deploys:
        problems = deployed_parameters_problems(command, modelled_parameters(command), config_env_of(command.argv))
        assert not problems, (command.where, problems)
        image = modelled_parameters(command)["SparkImageUri"]
        assert image.split(":")[-1].startswith("spark-"), image


def test_every_documented_deploy_keeps_the_environments_parameters() -> None:
    """Issue 26 finding 3: `--parameter-overrides` on SAM CLI's command line replaces samconfig's whole
    list, so a documented deploy that changes one parameter must carry every other one of its environment
    (`fraudops deploy` merges them); `.ci/sam_commands.py` checks the same through SAM CLI itself."""
    commands = doc_deploy_commands()
    assert {config_env_of(c.argv) for c in commands} == {"default", "prod"}
    assert any(c.changes for c in commands), "the docs show how to change one parameter"
    for command in commands:
        problems = deployed_parameters_problems(command, modelled_parameters(command), config_env_of(command.argv))
        assert not problems, (command.where, problems)


def test_a_bare_parameter_override_in_the_docs_is_caught(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```bash\nsam deploy --config-env prod --parameter-overrides SparkImageUri=x\n```\n")
    (command,) = doc_deploy_commands([page])
    problems = deployed_parameters_problems(command, modelled_parameters(command), "prod")
    assert any(problem.startswith("Stage=None") for problem in problems), problems
