"""What happens after a decision: it is captured, its label arrives late, and the traffic is compared with
what the model was trained on. The monitor stage (``fraudops.stages.monitor``) assembles these.

- ``capture``: one record per decision (a log line in AWS, a local file), and reading them back;
- ``labels``: late fraud labels, one object of label events per call (newest word wins);
- ``profile``: reference profiles and PSI, pure (saved with every model as ``profile.json``);
- ``report``: the monitor's self-contained HTML page.

Imports ``fraudops.core`` and ``fraudops.store``.
"""

from fraudops.core.exports import lazy_exports

_EXPORTS = {
    "capture_sink": "fraudops.monitoring.capture",
    "read_captures": "fraudops.monitoring.capture",
    "store_labels": "fraudops.monitoring.labels",
    "read_labels": "fraudops.monitoring.labels",
    "build_profile": "fraudops.monitoring.profile",
    "compare": "fraudops.monitoring.profile",
    "render_html": "fraudops.monitoring.report",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
