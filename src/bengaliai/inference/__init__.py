"""Prediction with a fold ensemble: trained folds as predictors, the test set, the submission file.

Modules: ``checkpoints`` (the folds of a run: their best.pt, training input, loaded models),
``ensemble`` (folds loaded and averaged, TTA, precision), ``prior`` (the prior correction: tuned or
explicit alpha, class counts), ``predict`` (``bengaliai predict``), ``submission`` (``row_id,target``
in test.csv's order, checked before it is written).
"""

from bengaliai.core.lazy import lazy_exports

_EXPORTS = {
    "Ensemble": "ensemble",
    "InferenceConfig": "ensemble",
    "load_fold_model": "ensemble",
    "predict_files": "predict",
    "write_submission": "submission",
}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
