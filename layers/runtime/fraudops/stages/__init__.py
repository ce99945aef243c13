"""One file per pipeline stage, what each Lambda (and the CLI) runs, with the inputs the state machines
send (``events``): the top of the import order.

- ``events``: the train, promote, monitor and batch Lambdas' inputs, validated up front;
- ``train``: read the lake -> split -> train -> track (``run_training``);
- ``promote``: score candidate and Production on the holdout -> decide -> tags + alias -> history ->
  manifest (``run_promotion``);
- ``rollback``: rollback and reconcile (the registry's alias wins; the manifest follows), pin;
- ``monitor``: the lake's decisions + labels + profiles -> report, metrics, drift trigger (``run_monitor``);
- ``backtest``: per rule / band performance, a draft policy replayed on past decisions (``backtest_policy``).
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "run_training": "fraudops.stages.train",
    "run_promotion": "fraudops.stages.promote",
    "rollback": "fraudops.stages.rollback",
    "reconcile": "fraudops.stages.rollback",
    "run_monitor": "fraudops.stages.monitor",
    "backtest_policy": "fraudops.stages.backtest",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
