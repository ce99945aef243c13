"""Exact TreeSHAP for a few rows, in numpy, from tables built once per model: the request path's reasons.

Why: XGBoost's own TreeSHAP (``NativeBooster.contributions``) walks every path of every tree for every
row, recomputes every tree's node means on every call and needs a DMatrix per call: about 0.5 ms of CPU
for one row of a 141-tree model, when a flagged decision may add at most 1 ms at p99. The values are the
same ones (path-dependent TreeSHAP, node covers as XGBoost's ``sum_hessian``), computed another way.

The maths. For one leaf with value ``v``, whose path splits on the distinct features ``U`` (``d`` of
them), feature ``j`` has a cover fraction ``r_j`` (the product, over the path's splits on ``j``, of the
child's cover over its parent's) and, for the row explained, ``z_j`` = 1 when the row goes the leaf's way
at every split on ``j`` (else 0). TreeSHAP's game is the product ``v * prod_j (z_j if j in S else r_j)``;
its Shapley value for ``i`` in ``U`` is ``v * (z_i - r_i) * sum_{S in U-i} w(|S|, d) prod_{j in S} z_j
prod_{j in U-S-i} r_j`` with ``w(s, d) = s! (d-s-1)! / d!``. Since each ``z`` is 0 or 1 only subsets of
``A`` (the features where the row agrees) count, and with ``K(T) = sum_{S in T} w(|S|, d) prod_{j in
U-S} r_j`` (a number per leaf and subset ``T`` of ``U``, at most ``2 ** depth`` of them, tabled here):

- ``z_i = 1``: the leaf adds ``v * (1 - r_i) / r_i * K(A - i)`` to feature ``i``;
- ``z_i = 0``: it adds ``-v * K(A)``.

Both depend on the row only through the leaf's *path pattern* (which of its ancestors the row goes away
from: at most ``2 ** depth`` of them), so every leaf's terms are tabled per pattern when the model is
first explained (float32, about 5 MB and 0.1 s for 141 trees of depth 6). One row then costs a comparison
per split, one gather per path position, one table row per leaf and a sum per feature, all vectorised
over the forest: about 0.15 ms against XGBoost's 0.5 ms. Per row the contributions add up, with the bias
(the base margin plus every tree's cover-weighted mean leaf), to the margin the trees compute; a feature
no tree splits on has no slot on any path and contributes exactly 0. ``tests/unit/test_reasons.py``
checks both, and checks the values against XGBoost's ``pred_contribs``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from fraudops.serving.compiled import UnsupportedModelError, base_margin, gbtree_trees

MAX_DEPTH = 8  # a leaf's path pattern is one byte
MAX_TABLE_BYTES = 64 << 20  # 400 trees of depth 6 need about 40 MB; larger models use the C library
_GATHER_BYTES = np.uint64(0x0102040810204080)


@dataclass(frozen=True)
class TreeShap:
    split_feature: np.ndarray  # intp [trees * internal nodes]: every split position of every tree, padded
    split_threshold: np.ndarray  # float32: x < threshold goes left, as XGBoost compares
    split_default_left: np.ndarray  # bool: where a missing value (NaN) goes
    path_node: np.ndarray  # intp [leaves * 8]: the leaf's ancestors, root first, then the dummy node
    path_goes_left: np.ndarray  # bool [leaves * 8]: the leaf is left of that ancestor
    table: np.ndarray  # float32 [leaves * patterns, slots]: each slot's term for each pattern of the path
    table_row: np.ndarray  # intp [leaves]: the leaf's first row in ``table``
    slot_feature: np.ndarray  # intp [leaves * slots]: the feature of each slot (n_features: none)
    bias: float  # the base margin + every tree's expected value
    n_features: int

    @classmethod
    def from_model_json(cls, model: Mapping[str, Any]) -> TreeShap:
        """From XGBoost's JSON model (``NativeBooster.model_json``): binary:logistic gbtree, numerical splits."""
        trees = gbtree_trees(model)
        learner = model["learner"]
        if any(int(s) != 0 for tree in trees for s in tree.get("split_type", [])):
            raise UnsupportedModelError("categorical splits")
        return _build(_Heap.of(trees), base_margin(learner), int(learner["learner_model_param"]["num_feature"]))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """As ``Booster.predict(pred_contribs=True)``: rows x (features + 1) float32, the last column the bias."""
        rows = np.ascontiguousarray(matrix, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] != self.n_features:
            raise ValueError(f"expected a rows x {self.n_features} matrix, got shape {rows.shape}")
        result = np.empty((len(rows), self.n_features + 1), np.float32)
        result[:, -1] = self.bias
        for i, row in enumerate(rows):
            result[i, :-1] = self._explained(row)
        return result

    def _explained(self, row: np.ndarray) -> np.ndarray:
        """One row: which way it goes at every split, each leaf's path pattern (bit j: the row goes away
        from the leaf at its j-th ancestor), each leaf's tabled terms for that pattern, summed by feature."""
        goes_left = np.empty(len(self.split_feature) + 1, bool)
        values = np.take(row, self.split_feature)
        np.less(values, self.split_threshold, out=goes_left[:-1])
        if np.isnan(values).any():
            goes_left[:-1] = np.where(np.isnan(values), self.split_default_left, goes_left[:-1])
        goes_left[-1] = True  # the dummy ancestor of a leaf above the bottom level: always agrees
        away = np.take(goes_left, self.path_node) != self.path_goes_left  # [leaves * 8]
        # Eight 0/1 bytes per leaf read as one little-endian integer; the multiply gathers byte j into bit
        # 56 + j (no two partial products meet, so nothing carries): the leaf's pattern in one byte.
        pattern = ((away.view(np.uint64) * _GATHER_BYTES) >> np.uint64(56)).view(np.int64)
        terms = np.take(self.table, pattern + self.table_row, axis=0)  # [leaves, slots]
        summed = np.bincount(self.slot_feature, weights=terms.ravel(), minlength=self.n_features + 1)
        return summed[: self.n_features]


@dataclass(frozen=True)
class _Heap:
    """The trees padded to complete binary trees in heap order (children of ``i``: ``2i+1``, ``2i+2``)."""

    feature: np.ndarray  # int [trees, nodes]
    threshold: np.ndarray  # float32
    default_left: np.ndarray  # bool
    cover: np.ndarray  # float64
    value: np.ndarray  # float64: a leaf's value
    is_leaf: np.ndarray  # bool: a real leaf (padding below it is neither)
    depth: int

    @classmethod
    def of(cls, trees: list[dict[str, Any]]) -> _Heap:
        placed = []  # per tree: (node in the dump, heap position, depth)
        for tree in trees:
            left, right = tree["left_children"], tree["right_children"]
            nodes, pending = [], [(0, 0, 0)]
            while pending:
                node, position, level = pending.pop()
                nodes.append((node, position, level))
                if left[node] != -1:
                    pending += [(left[node], 2 * position + 1, level + 1), (right[node], 2 * position + 2, level + 1)]
            placed.append(nodes)
        depth = max(level for nodes in placed for _, _, level in nodes)
        if depth > MAX_DEPTH:
            raise UnsupportedModelError(f"depth {depth}: deeper than {MAX_DEPTH}")
        shape = (len(trees), 2 ** (depth + 1) - 1)
        feature, threshold = np.zeros(shape, np.intp), np.zeros(shape, np.float32)
        default_left, is_leaf = np.ones(shape, bool), np.zeros(shape, bool)
        cover, value = np.zeros(shape), np.zeros(shape)
        for t, (tree, nodes) in enumerate(zip(trees, placed, strict=True)):
            dump = np.array([node for node, _, _ in nodes], dtype=np.intp)
            heap = np.array([position for _, position, _ in nodes], dtype=np.intp)
            leaf = np.asarray(tree["left_children"], dtype=np.intp)[dump] == -1
            conditions = np.asarray(tree["split_conditions"], dtype=np.float32)[dump]
            feature[t, heap] = np.where(leaf, 0, np.asarray(tree["split_indices"], dtype=np.intp)[dump])
            threshold[t, heap] = conditions
            default_left[t, heap] = np.asarray(tree["default_left"], dtype=bool)[dump]
            cover[t, heap] = np.asarray(tree["sum_hessian"], dtype=np.float64)[dump]
            value[t, heap] = np.where(leaf, conditions.astype(np.float64), 0.0)
            is_leaf[t, heap] = leaf
        return cls(feature, threshold, default_left, cover, value, is_leaf, depth)


def _build(heap: _Heap, base_margin: float, n_features: int) -> TreeShap:
    trees, nodes = heap.feature.shape
    depth = max(heap.depth, 1)
    internal = nodes // 2  # heap positions that can split: all but the bottom level
    if int(heap.feature.max()) >= n_features:
        raise UnsupportedModelError("a split names a feature the model does not have")
    roots = heap.is_leaf[:, 0]
    bias = base_margin + float(heap.value[roots, 0].sum())  # a tree that is one leaf: all bias
    tree_of, position = np.nonzero(heap.is_leaf & (np.arange(nodes) > 0))
    leaves = len(position)
    level = np.floor(np.log2(position + 1)).astype(np.intp)  # the leaf's depth (>= 1)
    # Ancestors root first; positions past the leaf's depth point at the dummy (global index trees * nodes).
    dummy = trees * internal
    path_node = np.full((leaves, depth), dummy, np.intp)
    path_goes_left = np.ones((leaves, depth), bool)
    path_feature = np.full((leaves, depth), -1, np.intp)
    path_ratio = np.ones((leaves, depth))
    for j in range(depth):
        real = j < level
        shift = np.where(real, level - j, 0)
        ancestor = ((position + 1) >> shift) - 1
        child = ((position + 1) >> np.maximum(shift - 1, 0)) - 1
        path_node[:, j] = np.where(real, tree_of * internal + ancestor, dummy)
        path_goes_left[:, j] = np.where(real, child == 2 * ancestor + 1, True)
        path_feature[:, j] = np.where(real, heap.feature[tree_of, ancestor], -1)
        parent_cover, child_cover = heap.cover[tree_of, ancestor], heap.cover[tree_of, child]
        if np.any(real & ~((parent_cover > 0) & (child_cover > 0))):
            raise UnsupportedModelError("a node without cover: its TreeSHAP weight is undefined")
        with np.errstate(divide="ignore", invalid="ignore"):
            path_ratio[:, j] = np.where(real, child_cover / parent_cover, 1.0)
    value = heap.value[tree_of, position]
    bias += float(np.sum(value * np.prod(path_ratio, axis=1)))

    # Slots: the path's distinct features in order of first appearance; a feature's ratio is the product
    # over its splits on the path.
    slot = np.zeros((leaves, depth), np.intp)
    distinct = np.zeros(leaves, np.intp)
    slot_ratio = np.ones((leaves, depth))
    slot_feature = np.full((leaves, depth), -1, np.intp)
    rows = np.arange(leaves)
    for j in range(depth):
        real = path_feature[:, j] >= 0
        earlier = (path_feature[:, :j] == path_feature[:, j : j + 1]) if j else np.zeros((leaves, 0), bool)
        seen = earlier.any(axis=1)
        first = np.argmax(earlier, axis=1) if j else np.zeros(leaves, np.intp)
        slot[:, j] = np.where(seen, slot[rows, first], distinct)
        new = real & ~seen
        slot_feature[rows[new], distinct[new]] = path_feature[new, j]
        distinct = distinct + new
        slot_ratio[rows[real], slot[real, j]] *= path_ratio[real, j]
    k_table = _k_table(slot_ratio, distinct)  # [leaves, 2 ** depth] over slot subsets

    # A path pattern (bit j: the row goes away from the leaf at ancestor j) -> the slots that agree.
    patterns = np.arange(1 << depth)
    away_slots = np.zeros((leaves, 1 << depth), np.intp)
    for j in range(depth):
        taken = (patterns >> j) & 1
        away_slots |= taken[None, :] * np.where(path_feature[:, j] >= 0, 1 << slot[:, j], 0)[:, None]
    agreeing = ((1 << distinct) - 1)[:, None] & ~away_slots  # [leaves, patterns]

    slots = int(distinct.max()) if leaves else 0
    if leaves * (4 << depth) * slots > MAX_TABLE_BYTES:
        raise UnsupportedModelError(f"{leaves} leaves, paths of {slots} features: too large a table")
    table = np.zeros((leaves, 1 << depth, slots), np.float32)
    for i in range(slots):
        bit, ratio, used = 1 << i, slot_ratio[:, i : i + 1], (i < distinct)[:, None]
        looked_up = np.take_along_axis(k_table, agreeing & ~bit, axis=1)  # K(A - i), or K(A) when i is not in A
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.where(agreeing & bit, value[:, None] * (1.0 - ratio) / ratio, -value[:, None]) * looked_up
        table[:, :, i] = np.where(used, term, 0.0)
    slot_feature[slot_feature < 0] = n_features
    return TreeShap(
        split_feature=heap.feature[:, :internal].ravel(),
        split_threshold=heap.threshold[:, :internal].ravel(),
        split_default_left=heap.default_left[:, :internal].ravel(),
        path_node=np.pad(path_node, ((0, 0), (0, MAX_DEPTH - depth)), constant_values=dummy).ravel(),
        path_goes_left=np.pad(path_goes_left, ((0, 0), (0, MAX_DEPTH - depth)), constant_values=True).ravel(),
        table=table.reshape(leaves << depth, slots),
        table_row=np.arange(leaves, dtype=np.intp) << depth,
        slot_feature=np.ascontiguousarray(slot_feature[:, :slots]).ravel(),
        bias=bias,
        n_features=n_features,
    )


def _k_table(ratio: np.ndarray, distinct: np.ndarray) -> np.ndarray:
    """``K(T) = sum_{S in T} w(|S|, d) prod_{j in U-S} r_j`` for every leaf and subset ``T`` (a bit mask
    over the leaf's slots; slots past a leaf's ``d`` have r = 1 and are never asked for), [leaves, masks].

    ``prod_{j in T} (t + r_j)`` has ``sum_{S in T, |S| = k} prod_{j in T-S} r_j`` as its ``t ** k``
    coefficient: each mask's polynomial is its parent's (the mask without its highest bit) times one
    factor, visited depth first so only one polynomial per level is held."""
    leaves, slots = ratio.shape
    weight = np.zeros((leaves, slots + 1))  # w(k, d) per leaf: k! (d - k - 1)! / d!, 0 for k >= d
    for d in range(1, slots + 1):
        for k in range(d):
            weight[distinct == d, k] = math.factorial(k) * math.factorial(d - k - 1) / math.factorial(d)
    everything = np.prod(ratio, axis=1)
    table = np.empty((leaves, 1 << slots))
    start = np.zeros((leaves, slots + 1))
    start[:, 0] = 1.0
    stack: list[tuple[int, np.ndarray, np.ndarray, int]] = [(0, start, np.ones(leaves), 0)]
    while stack:
        mask, polynomial, inside, next_slot = stack.pop()
        table[:, mask] = np.einsum("lk,lk->l", polynomial, weight) * (everything / inside)
        for slot in range(next_slot, slots):
            r = ratio[:, slot]
            child = np.empty_like(polynomial)
            child[:, 0] = polynomial[:, 0] * r
            child[:, 1:] = polynomial[:, 1:] * r[:, None] + polynomial[:, :-1]
            stack.append((mask | (1 << slot), child, inside * r, slot + 1))
    return table
