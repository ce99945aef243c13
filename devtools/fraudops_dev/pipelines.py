"""The CI/CD pipelines as data: every `sam` command line of .github/workflows/pipeline.yml and the
Jenkinsfile with its variables resolved the way the runner would, the roles each job assumes and the
GitHub environment it runs in, and the variables the Jenkinsfile defines.

Read by `.ci/sam_commands.py` (which passes each command through SAM CLI's own argument handling,
under the SAM CLI's Python) and by ``tests/unit/test_pipelines.py``. Only the standard library and
PyYAML, so both virtual environments can import it.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_PATH = REPO_ROOT / ".github" / "workflows" / "pipeline.yml"
JENKINSFILE_PATH = REPO_ROOT / "Jenkinsfile"
DEPLOY_DOC_PATH = REPO_ROOT / "docs" / "deploy.md"
ACCOUNT = "123456789012"
SAM_SUBCOMMANDS = ("build", "package", "deploy")
# Variables Jenkins itself sets (https://www.jenkins.io/doc/book/pipeline/jenkins-file/#using-environment-variables)
# and by its Git plugin (GIT_COMMIT: https://plugins.jenkins.io/git/#plugin-content-environment-variables)
JENKINS_BUILTINS = {"BRANCH_NAME", "BUILD_ID", "BUILD_NUMBER", "BUILD_TAG", "JOB_NAME", "WORKSPACE", "HOME", "PATH",
                    "GIT_COMMIT"}  # fmt: skip
# Variables every GitHub Actions step has (https://docs.github.com/en/actions/reference/workflows-and-actions/variables)
GITHUB_DEFAULTS = {"GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567", "GITHUB_REF": "refs/heads/main"}
# The one command substitution a sam line may hold: the merged parameters of deploy_parameters.py
# (`--parameter-overrides "$(python3 devtools/fraudops_dev/deploy_parameters.py --config-env E --print K=V)"`).
DEPLOY_PARAMETERS = re.compile(r"^\$\(python3 devtools/fraudops_dev/deploy_parameters\.py (?P<args>[^()]*)\)$")
VARIABLE = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
SECRET = re.compile(r"^\$\{\{\s*secrets\.(?P<name>[A-Za-z0-9_]+)\s*\}\}$")


class UndefinedVariable(ValueError):
    """A command uses a variable its pipeline never defines."""


@dataclass(frozen=True)
class SamCommand:
    where: str  # "pipeline.yml: job deploy-dev" / "Jenkinsfile: stage 'Deploy dev'"
    argv: list[str]  # after "sam", variables substituted
    changes: dict[str, str] = field(default_factory=dict)  # parameters it sets beside samconfig's (deploy_parameters)

    @property
    def subcommand(self) -> str:
        return self.argv[0]


@dataclass
class Job:
    name: str
    environment: str | None
    roles: list[str] = field(default_factory=list)  # names of the env variables / secrets it assumes
    runs: list[str] = field(default_factory=list)


def placeholder(name: str) -> str:
    """A value of the right shape for a secret or credential the pipeline reads at run time."""
    lowered = name.lower().replace("_", "-")
    if name.endswith("_ROLE"):
        return f"arn:aws:iam::{ACCOUNT}:role/{lowered}"
    if name.endswith("_BUCKET"):
        return f"{lowered}-{ACCOUNT}"
    if name.endswith("_IMAGE_REPOSITORY"):
        return f"{ACCOUNT}.dkr.ecr.us-east-1.amazonaws.com/{lowered}"
    if name.endswith("_REGION"):
        return "us-east-1"
    return lowered


def substitute(text: str, variables: dict[str, str], where: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match["braced"] or match["bare"]
        if name not in variables:
            raise UndefinedVariable(f"{where}: ${name} is not defined by the pipeline")
        return variables[name]

    return VARIABLE.sub(value, text)


def sam_command(line: str, variables: dict[str, str], where: str) -> SamCommand:
    """A sam line as the shell would run it: variables substituted, then the deploy_parameters.py
    substitution replaced by what it prints (any other ``$(...)`` is refused: the check could not know
    what the runner would put there)."""
    from fraudops_dev import deploy_parameters

    argv, changes = [], {}
    for word in shlex.split(substitute(line, variables, where))[1:]:
        match = DEPLOY_PARAMETERS.match(word)
        if match:
            args = deploy_parameters.build_parser().parse_args(shlex.split(match["args"]))
            changes = dict(pair.split("=", 1) for pair in args.parameters)
            word = deploy_parameters.render(deploy_parameters.merged_overrides(args.config_env, changes))
        elif "$(" in word:
            raise UndefinedVariable(f"{where}: a command substitution the check cannot evaluate: {word}")
        argv.append(word)
    return SamCommand(where, argv, changes)


def sam_lines(script: str) -> list[str]:
    """The `sam build|package|deploy` command lines of a shell script (continuations joined)."""
    joined = re.sub(r"\\\n\s*", " ", script)
    found = []
    for line in joined.splitlines():
        words = line.strip().split()
        if len(words) > 1 and words[0] == "sam" and words[1] in SAM_SUBCOMMANDS:
            found.append(line.strip())
    return found


def _workflow(path: Path = WORKFLOW_PATH) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(path.read_text()))


def workflow_variables(path: Path = WORKFLOW_PATH) -> dict[str, str]:
    """The workflow's env: literals as written, secrets as placeholders of the right shape."""
    variables = {}
    for name, raw in (_workflow(path).get("env") or {}).items():
        text = str(raw)
        secret = SECRET.match(text)
        variables[name] = placeholder(secret["name"]) if secret else text
    return variables


def workflow_jobs(path: Path = WORKFLOW_PATH) -> dict[str, Job]:
    jobs = {}
    for name, spec in _workflow(path)["jobs"].items():
        environment = spec.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        job = Job(name, environment)
        for step in spec.get("steps", []):
            role = (step.get("with") or {}).get("role-to-assume")
            if role:
                job.roles.append(re.sub(r"^\$\{\{\s*(env|secrets)\.([A-Za-z0-9_]+)\s*\}\}$", r"\2", str(role)))
            if "run" in step:
                job.runs.append(str(step["run"]))
        jobs[name] = job
    return jobs


def workflow_sam_commands(path: Path = WORKFLOW_PATH) -> list[SamCommand]:
    variables = {**GITHUB_DEFAULTS, **workflow_variables(path)}
    commands = []
    for job in workflow_jobs(path).values():
        where = f"{path.name}: job {job.name}"
        for script in job.runs:
            for line in sam_lines(script):
                commands.append(sam_command(line, variables, where))
    return commands


def jenkins_environment(path: Path = JENKINSFILE_PATH) -> dict[str, str]:
    """Names the Jenkinsfile's ``environment { }`` blocks define: literals as written, credentials
    bound with ``credentials('id')`` as placeholders."""
    text = path.read_text()
    defined = {}
    for block in re.finditer(r"environment\s*\{(?P<body>[^}]*)\}", text):
        for match in re.finditer(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.+?)\s*$", block["body"], re.M):
            name, value = match.group(1), match.group(2)
            literal = re.fullmatch(r"'([^']*)'|\"([^\"]*)\"", value)
            defined[name] = (literal.group(1) or literal.group(2) or "") if literal else placeholder(name)
    return defined


def jenkins_stages(path: Path = JENKINSFILE_PATH) -> list[tuple[str, str]]:
    """(stage name, its text up to the next stage) in order."""
    text = path.read_text()
    marks = list(re.finditer(r"stage\('([^']+)'\)", text))
    return [
        (m.group(1), text[m.start() : marks[i + 1].start() if i + 1 < len(marks) else len(text)])
        for i, m in enumerate(marks)
    ]


def jenkins_scripts(stage_text: str) -> list[str]:
    """The shell scripts of ``sh '...'`` and ``sh '''...'''`` steps."""
    scripts = [m.group(1) for m in re.finditer(r"sh\s+'''(.*?)'''", stage_text, re.S)]
    without_triple = re.sub(r"sh\s+'''.*?'''", "", stage_text, flags=re.S)
    scripts += [m.group(1) for m in re.finditer(r"sh\s+'((?:[^'\\]|\\.)*)'", without_triple)]
    return scripts


def jenkins_undefined_variables(path: Path = JENKINSFILE_PATH) -> list[str]:
    """``env.NAME`` and ``$NAME`` uses that no environment block defines (nor Jenkins itself)."""
    defined = set(jenkins_environment(path)) | JENKINS_BUILTINS
    problems = []
    for stage, text in jenkins_stages(path):
        used = set(re.findall(r"\benv\.([A-Za-z_][A-Za-z0-9_]*)", text))
        for script in jenkins_scripts(text):
            used |= {m["braced"] or m["bare"] for m in VARIABLE.finditer(script)}
        problems += [f"stage '{stage}': {name}" for name in sorted(used - defined)]
    return problems


def jenkins_sam_commands(path: Path = JENKINSFILE_PATH) -> list[SamCommand]:
    variables = {**{name: name.lower() for name in JENKINS_BUILTINS}, **jenkins_environment(path)}
    commands = []
    for stage, text in jenkins_stages(path):
        where = f"{path.name}: stage '{stage}'"
        for script in jenkins_scripts(text):
            for line in sam_lines(script):
                commands.append(sam_command(line, variables, where))
    return commands


def doc_bootstrap_commands(path: Path = DEPLOY_DOC_PATH) -> list[SamCommand]:
    """The `sam pipeline bootstrap` lines of docs/deploy.md's shell blocks, as a first-time user pastes them."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", path.read_text(), re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            if line.strip().startswith("sam pipeline bootstrap"):
                commands.append(SamCommand(f"{path.name}: bootstrap", shlex.split(line.split("#")[0])[1:]))
    return commands


DOC_PATHS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
DOC_DEPLOY = re.compile(r"^(sam deploy|fraudops deploy)\b")


def doc_deploy_commands(paths: list[Path] | None = None) -> list[SamCommand]:
    """Every `sam deploy` and `fraudops deploy` a user can copy from the README and docs/ (shell blocks
    and inline code), as the `sam deploy` argv each runs. `sam deploy --guided` is left out: it prompts."""
    from fraudops_dev import deploy_parameters

    commands: list[SamCommand] = []
    for path in paths or DOC_PATHS:
        text = path.read_text()
        lines = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S)
                 for line in re.sub(r"\\\n\s*", " ", block).splitlines()]  # fmt: skip
        lines += re.findall(r"`((?:sam|fraudops) deploy[^`]*)`", text)
        for line in lines:
            line = line.split(" #")[0].strip()
            if not DOC_DEPLOY.match(line) or "--guided" in line:
                continue
            where = f"{path.name}: {line}"
            words = shlex.split(line)
            if words[0] == "sam":
                commands.append(SamCommand(where, words[1:]))
                continue
            args = deploy_parameters.build_parser().parse_args(words[2:])
            changes = dict(pair.split("=", 1) for pair in args.parameters)
            argv = deploy_parameters.deploy_argv(args.config_env, changes, args.sam_arg)
            commands.append(SamCommand(where, argv[1:], changes))
    unique: dict[tuple[str, ...], SamCommand] = {}
    for command in commands:
        unique.setdefault(tuple(command.argv), command)
    return list(unique.values())


def config_env_of(argv: list[str]) -> str:
    for index, word in enumerate(argv):
        if word == "--config-env" and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith("--config-env="):
            return word.split("=", 1)[1]
    return "default"


def deployed_parameters_problems(command: SamCommand, resolved: dict[str, str], config_env: str) -> list[str]:
    """What is wrong with the parameters a deploy command resolves to (``resolved``: what SAM CLI hands its
    deploy, e.g. read from its ``do_cli``): every parameter the environment sets in samconfig.toml must be
    there with that value, unless the command deliberately changes it; a pipeline deploy must name the
    Spark image (an empty one removes the EMR application's image configuration)."""
    from fraudops_dev import deploy_parameters

    expected = {**deploy_parameters.environment_overrides(config_env), **command.changes}
    problems = [f"{key}={resolved.get(key)!r}, but {config_env} deploys {key}={value!r}"
                for key, value in expected.items() if resolved.get(key) != value]  # fmt: skip
    if config_env.startswith("pipeline-") and not resolved.get("SparkImageUri"):
        problems.append("a pipeline deploy without SparkImageUri: the Spark job would run the EMR release's "
                        "stock image (or a stale one), not this commit's layers/runtime")  # fmt: skip
    return problems


def modelled_parameters(command: SamCommand) -> dict[str, str]:
    """The parameters SAM CLI 1.170 deploys for this command, as it behaves (checked in-process by
    `.ci/sam_commands.py`): the command line's ``--parameter-overrides`` replace samconfig's whole list."""
    from fraudops_dev import deploy_parameters

    argv = command.argv
    for index, word in enumerate(argv):
        if word == "--parameter-overrides" and index + 1 < len(argv):
            return deploy_parameters.parse_overrides(argv[index + 1])
    return deploy_parameters.environment_overrides(config_env_of(argv))


def all_sam_commands() -> list[SamCommand]:
    return workflow_sam_commands() + jenkins_sam_commands()
