"""A single-row fast path for the served booster: its trees as flat numpy arrays, walked for all trees
at once (one vectorised step per tree level).

Why: ``Booster.inplace_predict`` costs ~150 us for one row, almost all of it call overhead, while the
API scores exactly one row per request. The arrays come from the booster's own JSON dump, so this is
the registered model, not an approximation; ``CompiledTrees.verify`` checks it against the booster on
probe rows at every split threshold when a model loads, and ``FraudModel`` falls back to the booster
for anything this does not cover (categorical splits, other objectives, NaN inputs).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import xgboost as xgb


class UnsupportedModelError(ValueError):
    """The booster uses something this evaluator does not implement; use the booster itself."""


def _base_margin(learner: dict[str, Any]) -> float:
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    base_score = float(raw.split(",")[0])
    if not 0.0 < base_score < 1.0:
        raise UnsupportedModelError(f"base_score {base_score} is not a probability")
    return math.log(base_score / (1.0 - base_score))


@dataclass(frozen=True)
class CompiledTrees:
    feature: np.ndarray  # int32, flat over all trees' nodes; leaves point at feature 0
    threshold: np.ndarray  # float32; x < threshold goes left (XGBoost's numerical split)
    left: np.ndarray  # int64 absolute node index; a leaf points at itself
    right: np.ndarray
    leaf_value: np.ndarray  # float64 (0 for inner nodes)
    roots: np.ndarray  # int64 absolute index of each tree's root
    depth: int
    base_margin: float
    n_features: int

    @classmethod
    def from_booster(cls, booster: xgb.Booster) -> CompiledTrees:
        model = json.loads(booster.save_raw("json"))
        learner = model["learner"]
        if learner["objective"]["name"] != "binary:logistic":
            raise UnsupportedModelError(f"objective {learner['objective']['name']}")
        gbm = learner["gradient_booster"]
        if gbm.get("name") != "gbtree":
            raise UnsupportedModelError(f"booster {gbm.get('name')}")
        trees = gbm["model"]["trees"]
        features, thresholds, lefts, rights, values, roots = [], [], [], [], [], []
        offset, depth = 0, 0
        for tree in trees:
            if any(int(t) != 0 for t in tree.get("split_type", [])):
                raise UnsupportedModelError("categorical splits")
            left = np.asarray(tree["left_children"], dtype=np.int64)
            right = np.asarray(tree["right_children"], dtype=np.int64)
            leaf = left == -1
            nodes = np.arange(len(left), dtype=np.int64)
            lefts.append(np.where(leaf, nodes, left) + offset)
            rights.append(np.where(leaf, nodes, right) + offset)
            features.append(np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.int32)))
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)
            thresholds.append(np.where(leaf, np.float32(0), conditions))
            values.append(np.where(leaf, conditions.astype(np.float64), 0.0))
            roots.append(offset)
            depth = max(depth, _tree_depth(left, right))
            offset += len(left)
        return cls(
            feature=np.concatenate(features).astype(np.int32),
            threshold=np.concatenate(thresholds).astype(np.float32),
            left=np.concatenate(lefts),
            right=np.concatenate(rights),
            leaf_value=np.concatenate(values),
            roots=np.asarray(roots, dtype=np.int64),
            depth=depth,
            base_margin=_base_margin(learner),
            n_features=booster.num_features(),
        )

    @cached_property
    def _leaf32(self) -> np.ndarray:
        return self.leaf_value.astype(np.float32)

    @cached_property
    def _base32(self) -> np.float32:
        return np.float32(self.base_margin)

    def margin(self, row: np.ndarray) -> float:
        node = self.roots
        for _ in range(self.depth):
            values = row[self.feature[node]]
            node = np.where(values < self.threshold[node], self.left[node], self.right[node])
        return self.base_margin + float(self.leaf_value[node].sum())

    def margins(self, rows: np.ndarray) -> np.ndarray:
        """The same walk for many rows at once (rows x trees); used to verify, not to serve."""
        node = np.broadcast_to(self.roots, (len(rows), len(self.roots)))
        row_index = np.arange(len(rows))[:, None]
        for _ in range(self.depth):
            values = rows[row_index, self.feature[node]]
            node = np.where(values < self.threshold[node], self.left[node], self.right[node])
        return np.asarray(self.base_margin + self.leaf_value[node].sum(axis=1))

    def predict_one(self, row: np.ndarray) -> float:
        """Probability for one float32 feature row (no NaN: the caller checks), in XGBoost's own float32
        arithmetic (trees summed in order, then the base margin, then the sigmoid), so a row scores the
        same bits alone (/predict, this walk) and in a batch (/predict/batch, the booster)."""
        node = self.roots
        for _ in range(self.depth):
            node = np.where(row[self.feature[node]] < self.threshold[node], self.left[node], self.right[node])
        margin = self._base32 + np.cumsum(self._leaf32[node], dtype=np.float32)[-1]
        exp = np.float32(math.exp(-float(margin)))
        return float(np.float32(1.0) / (np.float32(1.0) + exp))

    def probe_rows(self, extra: int = 64, seed: int = 0) -> np.ndarray:
        """Rows that sit just below and on every split threshold, the other features drawn at random
        from the same candidate values (so every branch near a threshold gets exercised)."""
        rng = np.random.default_rng(seed)
        inner = self.left != np.arange(len(self.left))
        below = np.nextafter(self.threshold[inner], np.float32(-np.inf))
        pinned_feature = np.concatenate([self.feature[inner], self.feature[inner], np.zeros(extra, np.int32)])
        pinned_value = np.concatenate([below, self.threshold[inner], np.zeros(extra, np.float32)])
        candidates = [np.concatenate([[0.0], pinned_value[pinned_feature == f]]) for f in range(self.n_features)]
        n = len(pinned_feature)
        rows = np.column_stack([c[rng.integers(0, len(c), size=n)] for c in candidates]).astype(np.float32)
        pinned = np.arange(n) < n - extra
        rows[np.arange(n)[pinned], pinned_feature[pinned]] = pinned_value[pinned]
        return rows

    def verify(self, booster: xgb.Booster, tolerance: float = 1e-6) -> float:
        """Largest |difference| from the booster over the probe rows; raises if above ``tolerance``."""
        rows = self.probe_rows()
        expected = np.asarray(booster.inplace_predict(rows, validate_features=False), dtype=np.float64)
        got = 1.0 / (1.0 + np.exp(-self.margins(rows)))
        worst = float(np.max(np.abs(got - expected))) if len(rows) else 0.0
        if worst > tolerance:
            raise UnsupportedModelError(f"compiled trees differ from the booster by {worst:.2e}")
        return worst


def _tree_depth(left: np.ndarray, right: np.ndarray) -> int:
    depth, frontier = 0, [0]
    while frontier:
        children = [c for n in frontier for c in (left[n], right[n]) if c != -1]
        if not children:
            break
        depth += 1
        frontier = children
    return depth
