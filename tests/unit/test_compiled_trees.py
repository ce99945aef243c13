"""The compiled trees the API serves give the booster's own probabilities (to 1e-6, and bit for bit on
real rows), missing values included; promotion refuses a compiled form that differs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from fraudops_dev.sqlite_io import load_training_frame
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.core.errors import ModelLoadError
from fraudops.model.fraud_model import FraudModel
from fraudops.serving.compiled import CompiledTrees, UnsupportedModelError
from fraudops.serving.treecompiler import compile_booster, largest_difference, probe_rows
from fraudops.training.dataset import raw_columns, split_out_of_time
from fraudops.training.fit import train_model
from tests.helpers.models import served
from tests.helpers.stack import fast_settings


@pytest.fixture(scope="module", params=["engineered", "seed"])
def trained(request: pytest.FixtureRequest, small_db: Path) -> tuple[FraudModel, np.ndarray]:
    frame = load_training_frame(small_db)
    result = train_model(
        split_out_of_time(frame, 0.1, 0.2), fast_settings(n_estimators=120, early_stopping_rounds=120), request.param
    )
    model = FraudModel(result.booster, result.spec)
    rows = model.features(raw_columns(frame.sample(3000, random_state=2)))
    return model, rows


@pytest.mark.slow
def test_compiled_trees_give_the_boosters_exact_bits_on_real_rows(trained: tuple[FraudModel, np.ndarray]) -> None:
    """/predict (the walk) and /predict/batch (the booster) must agree to the last bit, not the 8th digit."""
    model, rows = trained
    compiled = compile_booster(model.booster)
    expected = model.booster.inplace_predict(rows)
    assert [float(e) for e in expected] == [float(p) for p in compiled.probabilities(rows)]
    assert [float(e) for e in expected[:200]] == [compiled.predict_one(row) for row in rows[:200]]


@pytest.mark.slow
def test_missing_values_follow_each_nodes_default_direction(trained: tuple[FraudModel, np.ndarray]) -> None:
    model, rows = trained
    compiled = compile_booster(model.booster)
    holes = rows[:500].copy()
    rng = np.random.default_rng(4)
    holes[rng.random(holes.shape) < 0.3] = np.nan
    assert largest_difference(compiled, model.booster, holes) <= 1e-6
    assert np.isnan(probe_rows(compiled)).any(), "the promotion-time check must include missing values"


@pytest.mark.slow
def test_the_serialised_form_round_trips_and_rejects_garbage(trained: tuple[FraudModel, np.ndarray]) -> None:
    model, rows = trained
    compiled = compile_booster(model.booster)
    again = CompiledTrees.from_bytes(compiled.to_bytes())
    np.testing.assert_array_equal(again.probabilities(rows), compiled.probabilities(rows))
    with pytest.raises(ModelLoadError):
        CompiledTrees.from_bytes(b"not an archive")


_MODEL: dict[str, FraudModel] = {}
_COMPILED: dict[str, CompiledTrees] = {}


def _shared_model(small_db: Path) -> FraudModel:
    if "m" not in _MODEL:
        frame = load_training_frame(small_db)
        result = train_model(
            split_out_of_time(frame, 0.1, 0.2), fast_settings(n_estimators=80, early_stopping_rounds=80)
        )
        _MODEL["m"] = FraudModel(result.booster, result.spec)
    return _MODEL["m"]


def _shared_compiled(small_db: Path) -> CompiledTrees:
    """The shared model compiled once: compiling is a pure function of the booster (and checks itself), so
    each of the 300 examples below need not compile it again (most of that test's minute)."""
    if "m" not in _COMPILED:
        _COMPILED["m"] = compile_booster(_shared_model(small_db).booster)
    return _COMPILED["m"]


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_trees_match_on_arbitrary_rows(data: st.DataObject, small_db: Path) -> None:
    model = _shared_model(small_db)
    compiled = _shared_compiled(small_db)
    values = st.one_of(st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=32), st.just(float("nan")))
    row = np.array(data.draw(st.lists(values, min_size=compiled.n_features, max_size=compiled.n_features)), np.float32)
    expected = float(model.booster.inplace_predict(row[None, :])[0])
    assert compiled.predict_one(row) == pytest.approx(expected, abs=1e-6)


def test_a_wrong_compilation_is_refused(small_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _shared_model(small_db)
    good = CompiledTrees.from_model_json.__func__  # type: ignore[attr-defined]

    def tampered(cls: type[CompiledTrees], dump: dict[str, object]) -> CompiledTrees:
        trees = good(cls, dump)
        return replace(trees, leaf_value=trees.leaf_value * np.float32(1.01))

    monkeypatch.setattr(CompiledTrees, "from_model_json", classmethod(tampered))
    with pytest.raises(UnsupportedModelError, match="differ"):
        compile_booster(model.booster)


def test_other_objectives_are_refused() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 3)), rng.random(200)
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), 3)
    with pytest.raises(UnsupportedModelError, match="objective"):
        compile_booster(booster)


def test_a_model_without_compiled_trees_is_served_by_the_booster(small_db: Path) -> None:
    model = _shared_model(small_db)
    booster_only = served(model.booster, model.spec, compiled=False)
    with_trees = served(model.booster, model.spec)
    assert booster_only.compiled is None and with_trees.compiled is not None
    transaction = {"step": 3, "type": "CASH_OUT", "amount": 5000.0, "oldbalanceOrg": 5000.0,
                   "newbalanceOrig": 0.0, "oldbalanceDest": 10.0, "newbalanceDest": 5010.0}  # fmt: skip
    assert booster_only.predict_one(transaction) == with_trees.predict_one(transaction)
    frame = load_training_frame(small_db).head(300)
    np.testing.assert_array_equal(
        booster_only.predict_proba(raw_columns(frame)), model.predict_proba(raw_columns(frame))
    )


def test_large_inputs_are_scored_in_chunks_with_the_same_result(small_db: Path) -> None:
    from fraudops.serving.served import CHUNK_ROWS

    model = _shared_model(small_db)
    frame = load_training_frame(small_db).head(CHUNK_ROWS * 2 + 123)
    columns = {name: frame[name].to_numpy() for name in frame.columns}
    expected = model.booster.inplace_predict(model.features(columns))
    np.testing.assert_array_equal(served(model.booster, model.spec).predict_proba(columns), expected)
