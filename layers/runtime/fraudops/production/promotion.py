"""The promotion rule, as pure functions of metrics: no store, no files (``stages/promote.py`` does I/O).

A candidate replaces Production only when, on the same held-out rows, the *lower confidence bound* of
its AUPRC gain (paired bootstrap, ``metrics.paired_bootstrap_auprc_gain``) clears the margin, and it
loses no more than the tolerance on the guardrail metrics. Retraining the same data with another seed
moves AUPRC by several points; a rule on the point estimate alone would promote by luck.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fraudops.core.config import Settings
from fraudops.model.metrics import EvaluationMetrics, GainInterval

if TYPE_CHECKING:
    from fraudops.decisions.money import MoneyMetrics

GUARDRAILS = ("roc_auc", "recall_at_1pct_fpr")

# The words used everywhere: CLI, decision tags, history, Lambda output, state machine (ProductionKept).
PROMOTED, KEPT, ALREADY_PRODUCTION = "promoted", "kept", "already_production"
MANUAL, ROLLED_BACK, RECONCILED = "manual", "rolled_back", "reconciled"


@dataclass(frozen=True)
class PromotionRules:
    margin: float
    floor: float
    guardrail_tolerance: float
    confidence: float
    resamples: int
    seed: int

    @classmethod
    def from_settings(cls, settings: Settings) -> PromotionRules:
        return cls(
            settings.promotion_margin,
            settings.promotion_floor,
            settings.guardrail_tolerance,
            settings.promotion_confidence,
            settings.promotion_bootstrap_resamples,
            settings.seed,
        )


def decide(
    candidate: EvaluationMetrics,
    production: EvaluationMetrics | None,
    rules: PromotionRules,
    gain: GainInterval | None = None,
    money: tuple[MoneyMetrics, MoneyMetrics] | None = None,
) -> tuple[bool, str]:
    """(promote?, human-readable reason). ``gain`` is required when there is a Production model.
    ``money``: (candidate, Production) on the same holdout, each with its own bands (chosen by money
    within the alert budget): a candidate that catches less fraud money is kept whatever its AUPRC."""
    if production is None:
        if candidate.auprc >= rules.floor:
            return True, f"no working Production model; candidate AUPRC {candidate.auprc:.4f} >= floor {rules.floor}"
        return False, f"no Production model, but candidate AUPRC {candidate.auprc:.4f} < floor {rules.floor}"
    if gain is None:
        raise ValueError("a comparison with Production needs the gain interval")
    level = f"{gain.confidence:.0%}"
    if gain.lower < rules.margin:
        return False, (
            f"candidate AUPRC {candidate.auprc:.4f} vs Production {production.auprc:.4f}: gain {gain.gain:+.4f}, "
            f"{level} lower bound {gain.lower:+.4f} does not clear the margin {rules.margin}"
        )
    for metric in GUARDRAILS:
        drop = getattr(production, metric) - getattr(candidate, metric)
        if drop > rules.guardrail_tolerance:
            return False, (
                f"guardrail {metric}: candidate {getattr(candidate, metric):.4f} is {drop:.4f} below "
                f"Production {getattr(production, metric):.4f} (tolerance {rules.guardrail_tolerance})"
            )
    if money is not None and money[0].fraud_amount_caught < money[1].fraud_amount_caught:
        caught, production_caught = money[0].fraud_amount_caught, money[1].fraud_amount_caught
        return False, (
            f"money guardrail: candidate catches {caught:,.0f} of fraud at its bands ({money[0].alerts_per_1000:.1f} "
            f"alerts per 1,000) against Production's {production_caught:,.0f} ({money[1].alerts_per_1000:.1f}), "
            f"although its AUPRC {candidate.auprc:.4f} beats {production.auprc:.4f} (gain {gain.gain:+.4f})"
        )
    return True, (
        f"candidate AUPRC {candidate.auprc:.4f} beats Production {production.auprc:.4f}: gain {gain.gain:+.4f}, "
        f"{level} lower bound {gain.lower:+.4f} >= margin {rules.margin}; guardrails within {rules.guardrail_tolerance}"
    )
