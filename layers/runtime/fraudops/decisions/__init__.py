"""Decisions a fraud team acts on: a versioned policy (score bands, rules, allow/deny lists) turns a
score into ``approve`` / ``review`` / ``block`` and says which rule or band decided; ``reasons`` turns
contributions into readable reasons; ``money`` chooses bands by expected savings. One entry point: import
from here. Where the policy meets a served model (outcomes, TreeSHAP, reasons per request) is
``fraudops.serving.decide``; the back-test over the lake is the stage ``fraudops.stages.backtest``.

- ``expression``: the rule language (parsed and type-checked, never ``eval``);
- ``policy``: the policy document, its validation and evaluation;
- ``store``: publish / rollback / history of policies (one conditional write per change);
- ``reasons``: readable reasons from contributions;
- ``money``: the cost model, bands by money and money metrics;

Imports ``fraudops.core``, ``fraudops.store`` and ``fraudops.model`` (metrics, for money bands).
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
