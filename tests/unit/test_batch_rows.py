"""Batch rows are validated with the API's own rules: a bad row becomes one error naming its line and
field, never an exception that would fail its whole batch."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.batch.score import line_number, validate_rows
from fraudops.core.errors import InvalidInputError
from fraudops.stages.events import BatchItem, parse_batch_event

GOOD = {"step": "212", "type": "TRANSFER", "amount": "181000.0", "oldbalanceOrg": "181000.0",
        "newbalanceOrig": "0.0", "oldbalanceDest": "0.0", "newbalanceDest": "0.0", "isFraud": "1",
        "transaction_id": "", "nameOrig": "C1", "nameDest": "C2"}  # fmt: skip


def test_csv_strings_are_read_with_the_apis_rules() -> None:
    items = [
        BatchItem(index=0, row=GOOD),
        BatchItem(index=1, row={**GOOD, "amount": "-1"}),
        BatchItem(index=2, row={**GOOD, "type": "WIRE"}),
        BatchItem(index=3, row={**GOOD, "step": ""}),
        BatchItem(index=4, row={**GOOD, "newbalanceDest": "nan"}),
        BatchItem(index=5, row={**GOOD, "surprise": "1"}),
    ]
    good, transactions, errors = validate_rows(items, "csv")
    assert [i.index for i in good] == [0] and transactions[0].amount == 181000.0
    assert transactions[0].transaction_id is None  # an empty optional cell is absent, not ""
    by_line = {e.line: e.message for e in errors}
    assert sorted(by_line) == [3, 4, 5, 6, 7]
    assert by_line[3].startswith("amount:") and by_line[4].startswith("type:")
    assert by_line[5].startswith("step:") and by_line[6].startswith("newbalanceDest:")
    assert by_line[7].startswith("surprise:")


def test_json_lines_count_lines_from_one() -> None:
    assert (line_number(0, "csv"), line_number(0, "jsonl")) == (2, 1)
    _, _, errors = validate_rows([BatchItem(index=9, row={**GOOD, "amount": True})], "jsonl")
    assert errors[0].line == 10


value = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.lists(st.integers()))


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from([*GOOD, "extra"]), value, max_size=4))
def test_any_row_is_either_scored_or_one_error_never_an_exception(changes: dict[str, Any]) -> None:
    row = {**GOOD, **changes}
    good, transactions, errors = validate_rows([BatchItem(index=0, row=row)], "jsonl")
    assert len(good) + len(errors) == 1 and len(transactions) == len(good)
    if errors:
        assert errors[0].line == 1 and ":" in errors[0].message


def test_a_malformed_event_is_an_input_error_naming_the_field() -> None:
    with pytest.raises(InvalidInputError, match="Items"):
        parse_batch_event({"BatchInput": {"model": {}, "output": "/tmp/x"}})
    with pytest.raises(InvalidInputError, match="format"):
        parse_batch_event(
            {"Items": [{"index": 0, "row": GOOD}], "BatchInput": {"model": {}, "output": "o", "format": "xml"}}
        )


@pytest.mark.parametrize("value", [[1, 2], 3, "text", None, True, 2.5])
def test_a_json_lines_value_that_is_not_an_object_is_a_bad_row_not_a_failed_batch(value: Any) -> None:
    """Issue 17 item 9: the Map's ItemReader hands any JSON value; the event still parses."""
    event = parse_batch_event(
        {"Items": [{"index": 0, "row": {**GOOD, "transaction_id": "t-0"}}, {"index": 1, "row": value}],
         "BatchInput": {"model": {}, "output": "o", "format": "jsonl"}}
    )  # fmt: skip
    good, _, errors = validate_rows(event.Items, "jsonl")
    assert [i.index for i in good] == [0]
    assert [(e.line, e.message.split(" (")[0]) for e in errors] == [(2, "row: not a JSON object")]


@pytest.mark.parametrize(("label", "ok"), [("0", True), ("1", True), ("1.0", True), ("", True), ("2", False),
                                           ("-1", False), ("yes", False), (2, False), (1, True)])  # fmt: skip
def test_label_columns_follow_the_importers_rule(label: Any, ok: bool) -> None:
    """Issue 18 item 11: a row import-csv rejects (isFraud=2) is not scored either, with its reason."""
    from fraudops.core.schema import parse_flag

    _, _, errors = validate_rows([BatchItem(index=0, row={**GOOD, "isFraud": label})], "csv")
    assert not errors if ok else errors[0].message.startswith("isFraud:")
    if not ok and isinstance(label, str):
        with pytest.raises(ValueError) as importer_says:
            parse_flag("isFraud", label)
        assert errors[0].message == str(importer_says.value)


def test_local_reader_counts_blank_lines_as_import_csv_and_json_lines_do(tmp_path: Any) -> None:
    """Issue 18 item 5: the line a row is reported on is its line in the file, after a blank line too."""
    from fraudops_dev.batch_local import read_items

    header = ",".join(GOOD)
    row = ",".join(str(v) for v in GOOD.values())
    source = tmp_path / "day.csv"
    source.write_text(f"{header}\n{row}\n\n{row}\n\n\n{row.replace('TRANSFER', 'WIRE')}\n")
    items = [BatchItem.model_validate(item) for item in read_items(source, "csv")]
    assert [line_number(i.index, "csv") for i in items] == [2, 4, 7]
    _, _, errors = validate_rows(items, "csv")
    assert [e.line for e in errors] == [7]
    lines = tmp_path / "day.jsonl"
    lines.write_text('{"a": 1}\n\n[1]\n')
    assert [line_number(i["index"], "jsonl") for i in read_items(lines, "jsonl")] == [1, 3]
