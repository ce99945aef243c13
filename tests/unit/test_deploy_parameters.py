"""`fraudops deploy`: one parameter changed, every other one as the samconfig environment sets it."""

from __future__ import annotations

import pytest
from fraudops_dev import deploy_parameters as dp
from hypothesis import given
from hypothesis import strategies as st


def test_the_merged_list_keeps_the_environment_and_changes_only_what_was_named() -> None:
    prod = dp.environment_overrides("prod")
    merged = dp.merged_overrides("prod", {"TrainMemorySize": "3008", "ApiMemorySize": "2048"})
    assert merged == {**prod, "TrainMemorySize": "3008", "ApiMemorySize": "2048"}
    assert list(merged)[: len(prod)] == list(prod)  # a changed key keeps its place
    assert dp.parse_overrides(dp.render(merged)) == merged


def test_the_sam_argv_names_the_environment_and_carries_the_whole_list() -> None:
    image = "1.dkr.ecr.us-east-1.amazonaws.com/r:t"
    argv = dp.deploy_argv("prod", {"SparkImageUri": image}, ["--no-confirm-changeset"])
    assert argv[:5] == ["sam", "deploy", "--config-env", "prod", "--no-confirm-changeset"]
    overrides = dp.parse_overrides(argv[argv.index("--parameter-overrides") + 1])
    assert overrides["Stage"] == "prod" and overrides["SparkImageUri"].endswith("/r:t")
    assert "--config-env" not in dp.deploy_argv("default", {}, [])


@pytest.mark.parametrize(
    ("config_env", "changes", "message"),
    [
        ("prod", {"TrainMemory": "3008"}, "declares no parameter TrainMemory"),
        ("staging", {}, "no environment 'staging'"),
        ("default", {"ModelName": 'a"b'}, "double quote"),
    ],
)
def test_bad_input_is_refused_with_a_clear_error(config_env: str, changes: dict[str, str], message: str) -> None:
    with pytest.raises(dp.DeployParameterError, match=message):
        dp.merged_overrides(config_env, changes)


def test_the_command_line_refuses_without_running_sam(capsys: pytest.CaptureFixture[str]) -> None:
    assert dp.main(["--config-env", "prod", "--print", "NotAParameter=1"]) == 2
    assert "declares no parameter NotAParameter" in capsys.readouterr().err
    assert dp.main(["--print", "Stage"]) == 2
    assert dp.main(["--config-env", "prod", "--print", "TrainMemorySize=3008"]) == 0
    printed = capsys.readouterr().out.strip()
    assert dp.parse_overrides(printed) == {**dp.environment_overrides("prod"), "TrainMemorySize": "3008"}


def test_the_template_parameters_are_read_from_its_parameters_section() -> None:
    names = dp.template_parameters()
    assert {"Stage", "SparkImageUri", "TrainMemorySize", "LambdaTrainingMaxRows"} <= set(names)
    assert "ApiFunction" not in names and "HasSparkImage" not in names  # resources, conditions


VALUES = st.text(st.characters(blacklist_characters='"\\', blacklist_categories=("Cs", "Cc")), max_size=30)


@given(st.dictionaries(st.sampled_from(["ModelName", "TrackingUri", "SparkImageUri"]), VALUES))
def test_any_value_without_a_double_quote_survives_the_round_trip(changes: dict[str, str]) -> None:
    merged = dp.merged_overrides("default", changes)
    assert dp.parse_overrides(dp.render(merged)) == merged
