"""Step 5 of benchmarks/gpu_check.py, predict: end to end with 1 and 5 folds, projected to the 200,000 test images."""

from __future__ import annotations

from typing import Any

from bengaliai.compute.threads import apply_threads
from bengaliai.inference.ensemble import InferenceConfig
from bengaliai.inference.predict import predict

from gpu_steps.data import make_run, make_test_sets
from gpu_steps.runner import Check
from gpu_steps.settings import TARGET_PREDICT_S, TEST_IMAGES, Result


def step_predict(check: Check) -> None:
    """predict end to end on one test file and on all; the difference gives the rate without the fixed
    costs (loading the folds, opening files), from which a 200,000-image run is projected."""
    step, s, made = "predict", check.sizes, {}

    def setup() -> Result:
        made["tests"] = make_test_sets(s, check.workdir)
        made["run"] = make_run(s, check.workdir, check.dataset())
        text = f"test sets of {s.test_per_file} and {s.test_files * s.test_per_file} images, 5 folds of one random {s.arch}"
        return "info", text, {}

    def once(folds: str, which: str, small: dict[str, Any] | None = None) -> Result:
        config = InferenceConfig(device=check.device.type)
        try:
            result = predict(made["run"], input_dir=made["tests"][which], folds=folds, out=check.workdir / "submission.csv",
                             config=config, alpha=0, workers=check.plan.cpus, threads=s.threads)
        finally:
            apply_threads(check.plan)  # predict sized the pools for itself
        n, seconds = result.n_images, result.seconds
        raw: dict[str, Any] = {"images": n, "seconds": seconds, "images_per_s": n / seconds}
        text = f"{n} images in {seconds:.1f} s = {n / seconds:,.0f} img/s end to end (batch {config.batch_size})"
        if small is None:
            return "ok", text, raw
        extra_s = seconds - small["seconds"]
        marginal = (n - small["images"]) / extra_s if extra_s > 0 else n / seconds
        projected = seconds + (TEST_IMAGES - n) / marginal
        raw |= {"marginal_images_per_s": marginal, "projected_200k_s": projected}
        text += f"; without fixed costs {marginal:,.0f} img/s; 200,000 images: {projected / 60:.1f} min"
        below = check.cuda and len(result.folds) == 5 and projected > TARGET_PREDICT_S
        if len(result.folds) == 5:
            text += f" (target <= {TARGET_PREDICT_S / 60:.0f})"
        return ("below target" if below else "ok"), text, raw

    if check.attempt(step, "set-up: test sets and run folder", setup) is None:
        return
    check.attempt(step, "warm-up: 1 fold, 1 file", lambda: once("0", "one"))
    for label, folds in (("1 fold", "0"), ("5 folds", "all")):
        small = check.attempt(step, f"{label}, 1 file", lambda folds=folds: once(folds, "one"))
        if small is not None:
            check.attempt(step, f"{label}, {s.test_files} files",
                          lambda folds=folds, small=small: once(folds, "all", small))
