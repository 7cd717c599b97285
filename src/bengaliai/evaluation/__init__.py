"""Scores and what is tuned on them: the metric, out-of-fold reports, the prior, routing, plots, the leaderboard.

Modules: ``metric`` (the competition's weighted macro recall), ``priors`` (prior correction),
``routing`` (seen/unseen routing with the auxiliary head), ``oof`` (``bengaliai oof``), ``oof_report``
(``oof.json`` written and read back, the routing predict applies), ``leaderboard``
(``bengaliai leaderboard``), ``plots`` (curves, per-class recall).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "competition_score": "metric",
    "macro_recall": "metric",
    "evaluate_oof": "oof",
    "read_oof_report": "oof_report",
    "resolve_routing": "oof_report",
    "collect_leaderboard": "leaderboard",
    "format_leaderboard": "leaderboard",
    "plot_curves": "plots",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
