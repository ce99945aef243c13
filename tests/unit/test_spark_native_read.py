"""How the Spark job reads its window: on EMR Serverless the Iceberg table itself (the template names it in
the job's Spark conf), filtered to the window's steps; anywhere else the planned files. The native read
needs the release's Iceberg runtime jar, which local PySpark cannot load (no Maven here), so it runs only
in AWS; what is checked here is the step range it filters on and the choice between the two reads."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from cfnlint.decode import decode
from hypothesis import given
from hypothesis import strategies as st

from fraudops.core.errors import TrainingError
from fraudops.lake.schemas import dt_of_step
from fraudops.spark_training.job import LAKE_TABLE_CONF, read_window, window_steps
from fraudops.spark_training.plan import TrainingWindow

ROOT = Path(__file__).resolve().parents[2]


def _window(partitions: list[str]) -> TrainingWindow:
    return cast(TrainingWindow, SimpleNamespace(partitions=sorted(partitions), snapshot_id=7))


@given(st.integers(0, 400), st.integers(1, 30))
def test_the_step_range_holds_exactly_the_windows_partitions(first_day: int, days: int) -> None:
    """The window is the newest partitions: [first, end) selects a row iff its partition is one of them."""
    partitions = [dt_of_step(24 * day) for day in range(first_day, first_day + days)]
    first, end = window_steps(_window(partitions))
    for step in range(max(0, first - 48), end + 48):
        assert (first <= step < end) == (dt_of_step(step) in partitions), step


def test_an_empty_window_has_no_step_range() -> None:
    with pytest.raises(TrainingError):
        window_steps(_window([]))


class FakeReader:
    def __init__(self) -> None:
        self.parquet_files: tuple[str, ...] = ()

    def parquet(self, *files: str) -> str:
        self.parquet_files = files
        return "frame of the planned files"

    def format(self, name: str) -> Any:
        raise AssertionError(f"read the table ({name}) where only the files may be read")


def _spark(conf: dict[str, str]) -> tuple[Any, FakeReader]:
    reader = FakeReader()
    settings = SimpleNamespace(get=lambda key, default=None: conf.get(key, default))
    return SimpleNamespace(conf=settings, read=reader), reader


def test_without_the_table_in_the_spark_conf_the_job_reads_the_planned_files() -> None:
    spark, reader = _spark({})
    files = ["file:///lake/transactions/data/dt=2026-01-02/a.parquet"]
    assert read_window(spark, _window(["2026-01-02"]), files, native=True) == "frame of the planned files"
    assert reader.parquet_files == tuple(files)
    # The emulation's local copies (native=False) are read as files even where the conf names the table.
    spark, reader = _spark({LAKE_TABLE_CONF: "lake.db.transactions"})
    assert read_window(spark, _window(["2026-01-02"]), files, native=False) == "frame of the planned files"


def test_the_template_names_the_table_the_job_looks_for() -> None:
    template, _ = decode(str(ROOT / "template.yaml"))
    assert template is not None
    substitutions = template["Resources"]["RetrainStateMachine"]["Properties"]["DefinitionSubstitutions"]
    conf = dict(re.findall(r"--conf (\S+?)=(\S+)", substitutions["SparkSubmitParameters"]["Fn::Sub"]))
    catalog, database, table = conf[LAKE_TABLE_CONF].split(".")
    assert (database, table) == ("${LakeDatabase}", "transactions")
    assert conf[f"spark.sql.catalog.{catalog}"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf[f"spark.sql.catalog.{catalog}.catalog-impl"] == "org.apache.iceberg.aws.glue.GlueCatalog"
    assert conf["spark.jars"] == "/usr/share/aws/iceberg/lib/iceberg-spark3-runtime.jar"
