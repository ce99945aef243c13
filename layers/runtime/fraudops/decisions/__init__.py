"""Decisions a fraud team acts on: a versioned policy (score bands, rules, allow/deny lists) turns a
score into ``approve`` / ``review`` / ``block``, says which rule or band decided, and gives the reasons
(exact TreeSHAP contributions) behind every flagged transaction; ``money`` chooses bands by expected
savings. One entry point: import from here.

- ``expression``: the rule language (parsed and type-checked, never ``eval``);
- ``policy``: the policy document, its validation and evaluation;
- ``store``: publish / rollback / history of policies (one conditional write per change);
- ``serving``: the active policy in the API and batch scoring, outcomes and reasons;
- ``reasons``: readable reasons from contributions;
- ``treeshap``: exact TreeSHAP contributions for a few rows from per-leaf tables (numpy);
- ``money``: the cost model, bands by money and money metrics;
- ``backtest``: per list / rule / band performance, and a draft policy replayed on the lake's past
  decisions beside the active one (imported on its own: it reads the lake with pandas).
"""

from fraudops.decisions.expression import ExpressionError, parse_condition
from fraudops.decisions.policy import (
    APPROVE,
    BLOCK,
    OUTCOMES,
    REVIEW,
    Bands,
    Decision,
    DecisionPolicy,
    PolicyError,
    builtin_policy,
)
from fraudops.decisions.store import (
    Activation,
    PolicyChangeError,
    active_policy,
    policy_history,
    publish_policy,
    rollback_policy,
)

__all__ = [
    "APPROVE",
    "BLOCK",
    "OUTCOMES",
    "REVIEW",
    "Activation",
    "Bands",
    "Decision",
    "DecisionPolicy",
    "ExpressionError",
    "PolicyChangeError",
    "PolicyError",
    "active_policy",
    "builtin_policy",
    "parse_condition",
    "policy_history",
    "publish_policy",
    "rollback_policy",
]
