"""The single-row fast path gives the booster's own probabilities (to 1e-6) or is not used at all."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from hypothesis import given, settings
from hypothesis import strategies as st

from fraudops.data import load_training_frame, raw_columns, split_out_of_time
from fraudops.model import FraudModel
from fraudops.training import train_model
from fraudops.treeeval import CompiledTrees, UnsupportedModelError
from tests.helpers.stack import fast_settings


@pytest.fixture(scope="module", params=["engineered", "seed"])
def trained(request: pytest.FixtureRequest, small_db: Path) -> tuple[FraudModel, np.ndarray]:
    frame = load_training_frame(small_db)
    result = train_model(
        split_out_of_time(frame, 0.1, 0.2), fast_settings(n_estimators=120, early_stopping_rounds=120), request.param
    )
    model = FraudModel(result.booster, result.spec, fast_path=True)
    rows = model.features(raw_columns(frame.sample(3000, random_state=2)))
    return model, rows


def test_compiled_trees_match_the_booster_on_real_rows(trained: tuple[FraudModel, np.ndarray]) -> None:
    model, rows = trained
    assert model.compiled is not None
    expected = model.booster.inplace_predict(rows)
    got = np.array([model.compiled.predict_one(row) for row in rows])
    np.testing.assert_allclose(got, expected, atol=1e-6)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_compiled_trees_match_on_arbitrary_finite_rows(data: st.DataObject, small_db: Path) -> None:
    model = _shared_model(small_db)
    assert model.compiled is not None
    values = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, width=32)
    row = np.array(
        data.draw(st.lists(values, min_size=model.compiled.n_features, max_size=model.compiled.n_features)),
        dtype=np.float32,
    )
    expected = float(model.booster.inplace_predict(row[None, :])[0])
    assert model.compiled.predict_one(row) == pytest.approx(expected, abs=1e-6)


_MODEL: dict[str, FraudModel] = {}


def _shared_model(small_db: Path) -> FraudModel:
    if "m" not in _MODEL:
        frame = load_training_frame(small_db)
        result = train_model(
            split_out_of_time(frame, 0.1, 0.2), fast_settings(n_estimators=80, early_stopping_rounds=80)
        )
        _MODEL["m"] = FraudModel(result.booster, result.spec, fast_path=True)
    return _MODEL["m"]


def test_predict_one_uses_the_booster_for_nan(small_db: Path) -> None:
    model = _shared_model(small_db)
    transaction = {"step": 1, "type": "TRANSFER", "amount": float("nan"), "oldbalanceOrg": 1.0,
                   "newbalanceOrig": 0.0, "oldbalanceDest": 0.0, "newbalanceDest": 0.0}  # fmt: skip
    row = model.features({k: [v] for k, v in transaction.items()})
    assert model.predict_one(transaction) == pytest.approx(float(model.booster.inplace_predict(row)[0]), abs=1e-7)


def test_a_wrong_compilation_is_caught_by_verify(small_db: Path) -> None:
    model = _shared_model(small_db)
    assert model.compiled is not None
    tampered = replace(model.compiled, leaf_value=model.compiled.leaf_value * 1.01)
    with pytest.raises(UnsupportedModelError, match="differ"):
        tampered.verify(model.booster)


def test_other_objectives_are_refused() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((200, 3)), rng.random(200)
    booster = xgb.train({"objective": "reg:squarederror"}, xgb.DMatrix(x, label=y), 3)
    with pytest.raises(UnsupportedModelError, match="objective"):
        CompiledTrees.from_booster(booster)


def test_fast_path_is_off_when_unsupported_but_scoring_still_works(small_db: Path) -> None:
    model = _shared_model(small_db)
    slow = FraudModel(model.booster, model.spec, fast_path=False)
    assert slow.compiled is None
    transaction = {"step": 3, "type": "CASH_OUT", "amount": 5000.0, "oldbalanceOrg": 5000.0,
                   "newbalanceOrig": 0.0, "oldbalanceDest": 10.0, "newbalanceDest": 5010.0}  # fmt: skip
    assert slow.predict_one(transaction) == pytest.approx(model.predict_one(transaction), abs=1e-6)


def test_single_row_walk_gives_the_boosters_exact_bits(small_db: Path) -> None:
    """/predict (this walk) and /predict/batch (the booster) must agree to the last bit, not the 8th digit."""
    from fraudops.data import load_training_frame, raw_columns
    from tests.helpers.models import train_local_model
    from tests.helpers.stack import fast_settings

    model = train_local_model(fast_settings(db_path=small_db)).model
    assert model.compiled is not None
    frame = load_training_frame(small_db).sample(2000, random_state=3)
    matrix = model.features(raw_columns(frame))
    expected = model.booster.inplace_predict(matrix)
    walked = [model.compiled.predict_one(row) for row in matrix]
    assert [float(e) for e in expected] == walked
