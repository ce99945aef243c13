"""cfn-lint on the CloudFormation that CloudFormation itself receives: the template after the SAM
transform, once per samconfig environment.

`sam validate --lint` and cfn-lint on ``template.yaml`` see the SAM source, where the resources SAM
generates (the usage plan, its stage, the REST API whose body names the function's ARN, the roles)
do not exist yet; a dependency cycle through them (E3004) only shows after the transform. This runs
the SAM translator offline on the template as `sam package` leaves it (image URIs, S3 definition
URIs) with each environment's parameter overrides, and cfn-lint on the result. Run by `make lint`
(``python -m fraudops_dev.transformed_template``); ``tests/unit/test_sam_translation.py`` uses the
same functions.
"""

from __future__ import annotations

import copy
import json
import shlex
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
SAMCONFIG_PATH = REPO_ROOT / "samconfig.toml"
PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "fraudops-lint",
}


class NoManagedPolicies:
    """The translator asks IAM for AWS managed policy ARNs only when a function names one by its
    short name; ours name none (X-Ray's policy ARN it builds itself), so nothing is looked up."""

    def load(self) -> dict[str, str]:
        return {}


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    from cfnlint.decode import decode

    parsed, errors = decode(str(path))
    if errors or parsed is None:
        raise ValueError(f"cannot parse {path}: {errors}")
    return dict(parsed)


def environments(path: Path = SAMCONFIG_PATH) -> dict[str, dict[str, str]]:
    """samconfig environment -> its deploy parameter overrides."""
    config = tomllib.loads(path.read_text())
    found = {}
    for name, sections in config.items():
        if isinstance(sections, dict) and "deploy" in sections:
            overrides = sections["deploy"]["parameters"].get("parameter_overrides", "")
            found[name] = dict(item.split("=", 1) for item in shlex.split(overrides))
    return found


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
    """The CloudFormation template the SAM transform produces for these parameter values."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import to_py27_compatible_template, undo_mark_unicode_str_in_template

    defaults = {name: spec.get("Default") for name, spec in template["Parameters"].items() if "Default" in spec}
    values = {**defaults, **parameters, **PSEUDO_PARAMETERS}
    fragment = packaged(template)
    to_py27_compatible_template(fragment, values)  # as samtranslator's own transform() does
    # An explicit session: the region comes from PSEUDO_PARAMETERS, never from the caller's AWS config.
    translator = Translator(None, Parser(), boto_session=boto3.Session(region_name=PSEUDO_PARAMETERS["AWS::Region"]))
    output = translator.translate(fragment, values, get_managed_policy_map=NoManagedPolicies().load)
    return dict(undo_mark_unicode_str_in_template(output))


def lint(outputs: dict[str, dict[str, Any]], cfn_lint: str | None = None) -> tuple[bool, str]:
    """(no error, cfn-lint's report) for translated templates, one cfn-lint run for all of them.

    Errors fail; warnings are reported only. The transform itself leaves a few warnings in code we do
    not write (parameters it inlined, W2001; SAM's redundant DependsOn, W3005; a Sub with no variable,
    W1020); the source template is linted with warnings failing by `make lint` already."""
    executable = cfn_lint or str(Path(sys.executable).parent / "cfn-lint")
    with tempfile.TemporaryDirectory() as folder:
        paths = []
        for name, output in outputs.items():
            path = Path(folder) / f"{name}.transformed.json"
            path.write_text(json.dumps(output, indent=1, default=str))
            paths.append(str(path))
        result = subprocess.run([executable, "--", *paths], capture_output=True, text=True, check=False)
    report = (result.stdout + result.stderr).replace(folder + "/", "")
    # cfn-lint's exit code is a bit field: 2 errors, 4 warnings, 8 informational, 1 a crash.
    return not result.returncode & 3, report


def transformed_per_environment() -> dict[str, dict[str, Any]]:
    """The transformed template for each samconfig environment (one per distinct set of overrides)."""
    import logging

    logging.getLogger("samtranslator").setLevel(logging.ERROR)  # feature-toggle and metrics chatter
    template = load_template()
    groups: dict[str, list[str]] = {}  # environments with the same overrides deploy the same template
    found = environments()
    for name, parameters in sorted(found.items()):
        groups.setdefault(json.dumps(parameters, sort_keys=True), []).append(name)
    return {"+".join(names): translated(template, found[names[0]]) for names in groups.values()}


def main() -> int:
    outputs = transformed_per_environment()
    clean, report = lint(outputs)
    if not clean:
        print(f"cfn-lint on the SAM-transformed template found errors:\n{report}", file=sys.stderr)
        return 1
    print(f"cfn-lint on the SAM-transformed template: no error for samconfig envs {', '.join(outputs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
