"""GPU check: every GPU code path of the pipeline tried once, and the GPU numbers measured, in one command.

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.md [--device cuda] [--quick]
        [--budget-s 450] [--steps precision,resume,throughput,predict,compile]

Written before any GPU was lent to the project, to run the first time one is: ``benchmarks/gpu_check.sh``
is the command for the device machine (it installs the carried wheels first). Each check runs in
its own try/except, so one failure does not hide the others; a step whose time estimate no longer
fits in ``--budget-s`` is skipped and listed. Results go to ``--out`` (one markdown table, rewritten
after every check, so a run stopped at its time limit still leaves what it measured), to the same
name with ``.json`` (raw numbers and tracebacks) and to stdout. Steps:

1. environment: GPU, compute capability, torch / CUDA / cuDNN, numpy / pandas / pyarrow / OpenCV /
   albumentations ('missing' where one does not import), arch list, the precision ``auto`` resolves to,
   the thread plan for the device (beside a GPU: every CPU but one loads), whether the carried packages import.
2. precision: resnet34 training steps at 128 px, batch 256 (``engine.train_one_epoch`` on batches
   already on the device) in bf16 and in fp16 with a GradScaler: loss and weights finite, the scale.
3. resume: a tiny model trained 2 epochs without a break, against the same run crashed in epoch 2
   (an exception from inside the loader) and resumed by ``bengaliai train --resume`` in a fresh
   process; max abs difference of the final weights, beside that of two uninterrupted runs (CUDA
   kernels need not be deterministic). Two variants: precision auto with augmentation in the loader
   and EMA, fp16 + GradScaler with augmentation on the device.
4. throughput: images/s of the step alone (batches on the device) and of the whole loop over the real
   loader on a prepared cache, with ``augment.where=loader`` (albumentations in all workers) and
   ``augment.where=device``, and the latter with the weight EMA (as configs/resnet34.yaml trains); the
   loop / model ratio (targets: >= 90%, >= 15,000 img/s on H100/H200); then the model alone for
   seresnext50_32x4d (skipped, 'arch not available', where model.resnet lacks it).
5. predict: ``bengaliai.inference.predict.predict`` end to end with 1 and 5 folds (copies of one random
   checkpoint) on one test file and on all of them; the difference leaves out the fixed costs, and
   gives the projection to 200,000 test images (target for 5 folds: <= 3 minutes).
6. compile: ``torch.compile`` time of the resnet34 step, the compiled step and loop (and whether
   dynamo compiled again on the way), and ``train(compile=True)`` for a few batches (also runs the
   EMA of a compiled model).
7. targets (on a GPU only): the best loop, the 5-fold projection and the resume against the targets.

Every row carries the peak GPU memory of its check (``torch.cuda.max_memory_allocated``). The data is
the pattern dataset of tests/builders.py (drawn shapes, no fonts: the device's Pillow may lack
raqm); ``--quick`` shrinks every size so the whole check runs on a CPU in a minute or two (the test).
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import shutil
import sys
import tempfile
from pathlib import Path

from gpu_steps.compiled import step_compile
from gpu_steps.environment import step_environment
from gpu_steps.inference import step_predict
from gpu_steps.loops import step_precision, step_throughput
from gpu_steps.resume import step_resume
from gpu_steps.runner import Check
from gpu_steps.settings import QUICK, STEPS, TARGET_LOOP_RATE, TARGET_PREDICT_S, TARGET_RATIO, TITLES, Sizes


def summary(check: Check) -> None:
    """The verdicts against the targets, as the last rows (on a GPU only: the targets are for one)."""
    if not check.cuda:
        return
    loops = {k: v for step in ("throughput", "compile") for k, v in check.raw.get(step, {}).items()
             if k.startswith("whole loop") and "images_per_s" in v}
    if loops:
        best = max(loops, key=lambda k: loops[k]["images_per_s"])
        rate, ratio = loops[best]["images_per_s"], loops[best].get("ratio") or 0.0
        met = rate >= TARGET_LOOP_RATE and ratio >= TARGET_RATIO
        check.add("targets", f"training loop >= {TARGET_LOOP_RATE:,} img/s and >= {TARGET_RATIO:.0%} of the model alone",
                  "met" if met else "missed", f"best: {best} ({TITLES['compile' if 'compiled' in best else 'throughput']}), "
                  f"{rate:,.0f} img/s, {ratio:.0%}")
    five = [v for k, v in check.raw.get("predict", {}).items() if k.startswith("5 folds") and "projected_200k_s" in v]
    if five:
        projected = five[0]["projected_200k_s"]
        check.add("targets", f"predict 200,000 images with 5 folds <= {TARGET_PREDICT_S / 60:.0f} min",
                  "met" if projected <= TARGET_PREDICT_S else "missed", f"{projected / 60:.1f} min")
    resumed = list(check.raw.get("resume", {}).values())
    if resumed:
        ok = all(v["status"] == "ok" for v in resumed)
        diffs = ", ".join(f"{v['max_abs_diff']:.1e}" for v in resumed if "max_abs_diff" in v)
        done = sum(v["status"] == "ok" for v in resumed)
        check.add("targets", "kill and resume on CUDA", "met" if ok else "missed",
                  f"{done} of {len(resumed)} variants resumed; max abs weight diff {diffs or '-'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the whole check on a CPU in a minute or two")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"),
                        help="markdown table; raw numbers go beside it as .json")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip steps that no longer fit (default 450, --quick 170)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma list of {', '.join(STEPS)} (environment always runs)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the data and runs go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 170.0 if args.quick else 450.0
    wanted = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown {', '.join(unknown)}; known: {', '.join(STEPS)}")
    args.steps = wanted
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for noisy in ("PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = QUICK if args.quick else Sizes()
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_")) if args.workdir is None else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    check = Check(args, sizes, workdir)
    # A hang (a stuck loader, a compile that never ends) prints every thread's stack before the
    # device tool's time limit kills the run; the table is already written up to the hanging check.
    faulthandler.dump_traceback_later(args.budget_s + 45, exit=False)
    functions = {"precision": step_precision, "resume": step_resume, "throughput": step_throughput,
                 "predict": step_predict, "compile": step_compile}
    try:
        step_environment(check)
        for step in STEPS:
            if step not in args.steps:
                check.skip(step, "all", "not in --steps")
            elif check.device is None:
                check.skip(step, "all", "no device")
            elif check.left() < sizes.estimate_s[step]:
                needs = sizes.estimate_s[step]
                check.skip(step, "all", f"budget: {max(check.left(), 0):.0f} s left, needs about {needs:.0f} s")
            else:
                check.guard(step, functions[step])
        summary(check)
    finally:
        faulthandler.cancel_dump_traceback_later()
        check.write()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + check.markdown(), flush=True)
    return 1 if any(r.status == "FAIL" for r in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
