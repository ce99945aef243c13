"""Which version is Production, and how that changes: the promotion rule, the record of every change, a
change applied all or nothing, and the lease that keeps one retraining at a time.

- ``promotion``: THE promotion rule, pure: (metrics, gain interval) -> promote?, why (``decide``);
- ``history``: one event object per decision or change (the API's ``/model/history`` reads it);
- ``change``: one change of Production, all or nothing: written ahead, completed or abandoned;
- ``retraining_lock``: one retraining at a time, a lease held with conditional writes.

Imports ``fraudops.core``, ``store``, ``model`` (metrics) and ``decisions`` (money). The stages that
change Production are ``fraudops.stages.promote`` and ``fraudops.stages.rollback``.
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "PromotionRules": "fraudops.production.promotion",
    "decide": "fraudops.production.promotion",
    "read_history": "fraudops.production.history",
    "ProductionChange": "fraudops.production.history",
    "acquire": "fraudops.production.retraining_lock",
    "release": "fraudops.production.retraining_lock",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
