"""Batch scoring, one batch at a time: what each child of the BatchScoreStateMachine's Distributed Map runs
(``functions/batch``) and what ``fraudops batch-score`` runs locally (``score``: ``score_batch``,
``validate_rows``). An adapter like ``fraudops.api``, whose row rules it shares: the top of the order."""

from fraudops.core.exports import lazy_exports

_EXPORTS = {"score_batch": "fraudops.batch.score", "validate_rows": "fraudops.batch.score"}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
