from __future__ import annotations

import numpy as np
import pytest
from fraudops_dev.datagen import GeneratorConfig, generate

from fraudops.core.errors import FeatureMismatchError
from fraudops.core.schema import RAW_FEATURE_COLUMNS
from fraudops.model.features import FEATURE_SETS, FeatureSpec, build_features

TAKEOVER = {
    "step": 26, "type": "TRANSFER", "amount": 1000.0, "oldbalanceOrg": 1000.0, "newbalanceOrig": 0.0,
    "oldbalanceDest": 0.0, "newbalanceDest": 0.0,
}  # fmt: skip


def one(features: dict[str, object], names: tuple[str, ...]) -> dict[str, float]:
    row = build_features({k: [v] for k, v in features.items()}, names)[0]
    return dict(zip(names, row.tolist(), strict=True))


def test_engineered_features_of_a_takeover() -> None:
    values = one(TAKEOVER, FEATURE_SETS["engineered"])
    assert values["type_TRANSFER"] == 1.0 and values["type_CASH_OUT"] == 0.0
    assert values["balance_error_orig"] == 0.0  # 0 + 1000 - 1000
    assert values["balance_error_dest"] == 1000.0  # 0 + 1000 - 0: the money vanished
    assert values["origin_emptied"] == 1.0
    assert values["dest_balances_zero"] == 1.0
    assert values["hour_of_day"] == 2.0
    assert values["amount_to_balance"] == pytest.approx(1000 / 1001)


def test_one_row_equals_its_row_in_a_batch() -> None:
    """No training/serving skew: the API scores one row with the same code training used on many."""
    frame = generate(GeneratorConfig(500, seed=4))
    names = FEATURE_SETS["engineered"]
    batch = build_features({c: frame[c].to_numpy() for c in RAW_FEATURE_COLUMNS}, names)
    for index in (0, 17, 499):
        row = {c: frame[c].iloc[index] for c in RAW_FEATURE_COLUMNS}
        single = build_features({k: [v] for k, v in row.items()}, names)
        np.testing.assert_array_equal(single[0], batch[index])
    assert batch.dtype == np.float32
    assert batch.shape == (500, len(names))


def test_seed_feature_set() -> None:
    values = one(TAKEOVER, FEATURE_SETS["seed"])
    assert values == {
        "amount": 1000.0,
        "step": 26.0,
        "type_CASH_IN": 0.0,
        "type_CASH_OUT": 0.0,
        "type_DEBIT": 0.0,
        "type_PAYMENT": 0.0,
        "type_TRANSFER": 1.0,
    }


def test_unknown_features_are_refused() -> None:
    with pytest.raises(FeatureMismatchError, match="merchant_risk"):
        build_features({k: [v] for k, v in TAKEOVER.items()}, ("amount", "merchant_risk"))
    with pytest.raises(FeatureMismatchError):
        FeatureSpec(feature_names=("amount", "merchant_risk"), threshold=0.5).validate()
    with pytest.raises(FeatureMismatchError):
        FeatureSpec(feature_names=("amount",), threshold=0.5, raw_columns=("amount", "ip_address")).validate()
    with pytest.raises(FeatureMismatchError):
        FeatureSpec(feature_names=("amount",), threshold=1.5).validate()


def test_spec_round_trips() -> None:
    spec = FeatureSpec(feature_names=FEATURE_SETS["engineered"], threshold=0.73)
    assert FeatureSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(FeatureMismatchError, match="malformed"):
        FeatureSpec.from_dict({"threshold": 0.5})
