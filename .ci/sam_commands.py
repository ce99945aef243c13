"""Run by `make lint` with the SAM CLI's own Python: every `sam build`, `sam package` and `sam deploy`
command line of .github/workflows/pipeline.yml and the Jenkinsfile (and docs/deploy.md's `sam pipeline
bootstrap`, which must run without prompting), through SAM CLI's own click
argument handling, with the repository's samconfig.toml, in a copy of the repository (with the files
`sam build` and `sam package` would have left for the next command).

There are no AWS credentials here (every AWS_* variable is removed, the config files point nowhere,
the instance metadata lookup is off), so nothing can reach AWS: a command is right when it gets as far
as needing credentials (`package`, `deploy`) or a container runtime (`build`, and `package`, which
pushes the images `build` left in Docker; this machine has no Docker engine). Any other error, the
samconfig/CLI conflicts among them ("Only one of the following can be provided", "Cannot use both
--resolve-s3 and --s3-bucket"), fails the check.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "devtools"))

from fraudops_dev.pipelines import (  # noqa: E402
    SamCommand,
    UndefinedVariable,
    deployed_parameters_problems,
    doc_bootstrap_commands,
    doc_deploy_commands,
    jenkins_sam_commands,
    workflow_sam_commands,
)
from fraudops_dev.transformed_template import load_template, packaged  # noqa: E402

COPIED = [".dockerignore", "constraints.txt", "samconfig.toml", "template.yaml", "functions", "infra", "layers/runtime"]
# Where each subcommand legitimately stops on this machine (it would go on with credentials / Docker).
EXPECTED_STOP = {
    "build": ("container runtime", "docker"),
    "package": ("unable to locate credentials", "container runtime", "docker"),  # pushes the built images
    "deploy": ("unable to locate credentials",),
    "pipeline": ("unable to locate credentials",),  # docs/deploy.md's `sam pipeline bootstrap`
}


def isolate_from_aws(home: Path) -> None:
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[key]
    os.environ.update(
        AWS_CONFIG_FILE=str(home / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        SAM_CLI_TELEMETRY="0",
        HOME=str(home),  # SAM CLI's own settings (~/.aws-sam) stay in the scratch folder
        DOCKER_HOST="unix://" + str(home / "no-docker.sock"),  # never a real engine, even where one runs
    )


def stage_repository(into: Path) -> None:
    """A copy of what the sam commands read, plus the packaged templates `sam package` would write."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, into / name)
    source = load_template()
    built = copy.deepcopy(source)  # what `sam build` leaves for `sam package`: local image tags
    for name, resource in built["Resources"].items():
        properties = resource.get("Properties", {})
        if properties.get("PackageType") == "Image":
            properties["ImageUri"] = f"{name.lower()}:{resource['Metadata'].get('DockerTag', 'latest')}"
        if "DefinitionUri" in properties:
            properties["DefinitionUri"] = str(into / properties["DefinitionUri"])
    (into / ".aws-sam" / "build").mkdir(parents=True)
    (into / ".aws-sam" / "build" / "template.yaml").write_text(json.dumps(built, default=str))
    template = packaged(source)  # what `sam package --output-template-file` leaves for `sam deploy`
    for resource in template["Resources"].values():
        resource.pop("Metadata", None)
    for stage in ("dev", "prod"):
        (into / f"packaged-{stage}.yaml").write_text(json.dumps(template, default=str))


def error_chain(error: BaseException) -> str:
    parts = []
    current: BaseException | None = error
    while current is not None and len(parts) < 10:
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " <- ".join(parts)


def invoke_sam(argv: list[str], output: io.TextIOBase) -> None:
    """SAM CLI's own entry point on ``argv``, its output into ``output``, a prompt reading end-of-file."""
    from samcli.cli.main import cli

    with (
        contextlib.redirect_stdout(output),
        contextlib.redirect_stderr(output),
        mock.patch("sys.stdin", io.StringIO("")),  # a prompt reads end-of-file: it fails, never waits
    ):
        cli.main(args=argv, prog_name="sam", standalone_mode=False)


def run(command: SamCommand, workdir: Path) -> tuple[str | None, str]:
    """(None, where it stopped) when the command stops only where it needs AWS (or Docker); else
    (what went wrong, "")."""
    os.chdir(workdir)
    # A real file, not StringIO: SAM CLI reconfigures its output streams' encoding.
    with open(workdir / "sam-output.log", "w+", encoding="utf-8") as output:
        try:
            invoke_sam(command.argv, output)
        except SystemExit as stop:
            if stop.code in (0, None):
                return None, "exit 0"
            output.seek(0)
            return f"exited {stop.code}: {output.read()[-1500:]}", ""
        except Exception as error:  # judged below: SAM CLI raises click and its own exception types
            chain = error_chain(error)
            if any(marker in chain.lower() for marker in EXPECTED_STOP.get(command.subcommand, ())):
                return None, chain.split(" <- ")[-1][:160]
            return chain, ""
    return None, "returned"


def resolved_deploy(command: SamCommand, workdir: Path) -> tuple[dict[str, str], str] | str:
    """The parameters and config env SAM CLI's own argument handling gives `sam deploy` for this command
    line and samconfig.toml: its ``do_cli`` is replaced by a recorder, so nothing past the arguments runs."""
    import inspect

    from samcli.commands.deploy import command as deploy_command

    seen: dict[str, object] = {}
    signature = inspect.signature(deploy_command.do_cli)

    def record(*args: object, **kwargs: object) -> None:  # the command passes do_cli's arguments by position
        seen.update(signature.bind(*args, **kwargs).arguments)

    os.chdir(workdir)
    with open(workdir / "sam-resolve.log", "w+", encoding="utf-8") as output:
        try:
            with mock.patch.object(deploy_command, "do_cli", side_effect=record):
                invoke_sam(command.argv, output)
        except SystemExit as stop:
            if stop.code not in (0, None):
                output.seek(0)
                return f"exited {stop.code} before deploying: {output.read()[-800:]}"
        except Exception as error:
            return f"refused before deploying: {error_chain(error)}"
    if "parameter_overrides" not in seen:
        return "SAM CLI never reached its deploy with these arguments"
    overrides = {str(k): str(v) for k, v in dict(seen["parameter_overrides"] or {}).items()}  # type: ignore[call-overload]
    return overrides, str(seen.get("config_env") or "default")


def main() -> int:
    problems: list[str] = []
    commands: list[SamCommand] = []
    for reader in (workflow_sam_commands, jenkins_sam_commands, doc_bootstrap_commands, doc_deploy_commands):
        try:
            commands += reader()
        except UndefinedVariable as error:
            problems.append(str(error))
    with tempfile.TemporaryDirectory(prefix="fraudops-sam-") as folder:
        scratch = Path(folder)
        isolate_from_aws(scratch)
        for command in commands:
            workdir = scratch / "repo"
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir()
            stage_repository(workdir)
            problem, stopped_at = run(command, workdir)
            shown = "sam " + " ".join(command.argv)
            if problem:
                problems.append(f"{command.where}: {shown}\n    {problem}")
                continue
            print(f"ok  {command.where}: sam {command.subcommand}, stops at: {stopped_at}")
            if command.subcommand != "deploy":
                continue
            # What it would deploy: the parameters SAM CLI resolved, against what that environment must deploy.
            resolved = resolved_deploy(command, workdir)
            if isinstance(resolved, str):
                problems.append(f"{command.where}: {shown}\n    {resolved}")
                continue
            parameters, config_env = resolved
            wrong = deployed_parameters_problems(command, parameters, config_env)
            if wrong:
                problems.append(f"{command.where}: {shown}\n    deploys the wrong parameters: " + "; ".join(wrong))
            else:
                print(
                    f"ok  {command.where}: deploys {config_env}'s {len(parameters)} parameters"
                    + (f" with {', '.join(sorted(command.changes))} changed" if command.changes else "")
                )
        os.chdir(ROOT)
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if not commands:
        print("FAIL no sam command found in the pipelines", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
