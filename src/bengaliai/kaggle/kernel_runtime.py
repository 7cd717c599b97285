"""What the offline Kaggle kernel runs: find the inputs under /kaggle/input, predict, write the submission.

The kernel script that ``bengaliai kernel`` writes unpacks this package from itself and calls
``run_kernel``. It reads the weights dataset (``inference.json`` and one slim checkpoint per fold)
and the competition files, and calls the same ``predict_files`` and ``write_outputs`` as
``bengaliai predict`` with the settings the kernel was built with, so the two submissions match.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from bengaliai.compute.threads import apply_threads, available_cpus, plan_threads
from bengaliai.core.competition import TEST_CSV, image_parquet_name
from bengaliai.core.errors import BengaliaiError
from bengaliai.core.fileio import ensure_writable
from bengaliai.data.labels import read_test_rows
from bengaliai.data.prepare import find_image_files
from bengaliai.evaluation.routing import Routing
from bengaliai.inference.checkpoints import load_models
from bengaliai.inference.ensemble import Ensemble, InferenceConfig
from bengaliai.inference.predict import predict_files, write_outputs
from bengaliai.inference.prior import Prior
from bengaliai.kaggle.inputs import find_dir

log = logging.getLogger(__name__)

INFERENCE_JSON = "inference.json"


def read_settings(weights_dir: Path) -> dict[str, Any]:
    path = Path(weights_dir) / INFERENCE_JSON
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise BengaliaiError(f"{path}: cannot read the kernel settings ({error})") from None


def run_kernel(root: Path = Path("/kaggle"), out: Path | None = None) -> Path:
    """Predict the competition's test set with the bundled weights; return the submission path."""
    root = Path(root)
    competition_dir = find_dir(root / "input", image_parquet_name("test", 0), "competition data")
    if not (competition_dir / TEST_CSV).exists():
        raise BengaliaiError(f"{competition_dir} has test images but no {TEST_CSV}")
    test_rows = read_test_rows(competition_dir / TEST_CSV)  # a bad test.csv fails before the inference
    weights_dir = find_dir(root / "input", INFERENCE_JSON, "weights dataset")
    settings = read_settings(weights_dir)
    out = Path(out) if out is not None else root / "working" / "submission.csv"
    ensure_writable(out)  # fails now, not after the inference
    import bengaliai

    log.info("bengaliai %s from %s", bengaliai.__version__, Path(bengaliai.__file__).parent)
    log.info("competition data %s, weights %s (experiment %s, folds %s)",
             competition_dir, weights_dir, settings["experiment"], settings["folds"])
    config = InferenceConfig(**settings["inference"])
    # Kaggle's containers show the host's cores but grant 4 (cgroup quota): size the pools to the grant.
    apply_threads(plan_threads(None, 0))
    models, device = load_models([weights_dir / name for name in settings["checkpoints"]], config)
    prior = Prior(float(settings["prior"]["alpha"]), settings["prior"]["class_counts"])
    routing = Routing(**settings["routing"]) if settings.get("routing") else None
    if routing is not None:
        log.info("routing: %s to the grapheme head", routing.describe())
    files = find_image_files(competition_dir, ("test",))
    ids, probabilities = predict_files(
        Ensemble(models, config, device, aux=routing is not None), files, workers=available_cpus(),
        block_images=int(settings["block_images"]),
        test_rows=test_rows, test_csv=competition_dir / TEST_CSV,
    )
    submission, _, _ = write_outputs(competition_dir / TEST_CSV, test_rows, ids, probabilities, prior, out, routing)
    log.info("submission written: %s (%d images)", submission, len(ids))
    return submission


def configure_logging() -> None:
    """Kaggle shows stdout and stderr of a script kernel in its log: one line per message."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stdout, force=True)
