"""Prediction with a fold ensemble: trained folds as predictors, the test set, the submission file.

Modules: ``ensemble`` (folds loaded and averaged, TTA, precision), ``predict`` (``bengaliai
predict``), ``submission`` (``row_id,target`` in test.csv's order, checked before it is written).
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
