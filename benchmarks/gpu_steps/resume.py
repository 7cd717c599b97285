"""Step 3 of benchmarks/gpu_check.py, resume: a run crashed mid-epoch, resumed by the CLI, against an unbroken one."""

from __future__ import annotations

import gc
import inspect
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from bengaliai.core.config import load_config
from bengaliai.model.checkpoint import load_checkpoint
from bengaliai.training import engine
from bengaliai.training import train as train_module
from bengaliai.training.train import TrainConfig, train

from gpu_steps.runner import Check
from gpu_steps.settings import ROOT, Result


def train_settings(check: Check, input_dir: Path, output: Path, *extra: str) -> list[str]:
    s = check.sizes
    return [
        f"data.input={input_dir}", f"output={output}", f"device={check.device.type}",
        f"data.batch_size={s.resume_batch}", f"data.cache=crop{s.resume_size}", f"data.workers={s.resume_workers}",
        "model.arch=resnet10", "model.base_width=16",
        "epochs=2", "optim.lr=3e-3", "optim.warmup_epochs=0.5", "augment.cutmix_p=0.5", "experiment=resume",
        f"threads={s.threads or 'auto'}", *extra,
    ]


class SimulatedCrash(Exception):
    """Raised from inside the training loader to stop a run mid-epoch, as a kill would."""


def crash_in_epoch(epoch: int, after_batches: int) -> Callable[..., Any]:
    """A stand-in for train.train_one_epoch whose loader breaks after ``after_batches`` batches of ``epoch``."""
    real = engine.train_one_epoch
    signature = inspect.signature(real)

    def breaking(batches: Iterable[Any]) -> Iterator[Any]:
        for i, batch in enumerate(batches):
            if i == after_batches:
                raise SimulatedCrash(f"simulated crash in epoch {epoch} after {after_batches} batches")
            yield batch

    def crashing(*args: Any, **kwargs: Any) -> tuple[float, float, int]:
        bound = signature.bind(*args, **kwargs)
        if bound.arguments["epoch"] == epoch:
            bound.arguments["loader"] = breaking(bound.arguments["loader"])
        return real(*bound.args, **bound.kwargs)

    return crashing


def weight_difference(a: Path, b: Path) -> tuple[bool, float]:
    """(bit-equal, max abs difference) of the model weights of two checkpoints."""
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    if wa.keys() != wb.keys():
        raise ValueError(f"{a} and {b} hold different parameter names")
    equal = all(torch.equal(wa[k], wb[k]) for k in wa)
    floats = [k for k in wa if wa[k].is_floating_point() and wa[k].numel()]
    diffs = [float((wa[k].double() - wb[k].double()).abs().max()) for k in floats]
    return equal, max(diffs, default=0.0)



def step_resume(check: Check) -> None:
    input_dir = check.dataset()
    variants = {
        "precision auto, augment.where=loader, EMA": ("precision=auto", "augment.where=loader", "optim.ema_decay=0.99"),
        "fp16 + GradScaler, augment.where=device": ("precision=fp16", "augment.where=device"),
    }
    for i, (label, extra) in enumerate(variants.items()):
        check.attempt("resume", label,
                      lambda i=i, extra=extra: resume_variant(check, input_dir, f"v{i}", extra, repeat=i == 0),
                      needs_s=check.sizes.estimate_s["resume"] / len(variants))


def resume_variant(check: Check, input_dir: Path, name: str, extra: tuple[str, ...], repeat: bool) -> Result:
    root = check.workdir / "resume" / name
    last = Path("resume") / "fold0" / "last.pt"
    whole = load_config(TrainConfig, None, train_settings(check, input_dir, root / "whole", *extra))
    train(whole, folds="0")

    settings = train_settings(check, input_dir, root / "crashed", *extra)
    real = train_module.train_one_epoch
    train_module.train_one_epoch = crash_in_epoch(epoch=1, after_batches=2)
    try:
        train(load_config(TrainConfig, None, settings), folds="0")
        raise RuntimeError("the simulated crash did not happen")
    except SimulatedCrash:
        pass
    finally:
        train_module.train_one_epoch = real
    gc.collect()  # let the crashed run's loader workers go
    crashed_epoch = load_checkpoint(root / "crashed" / last)["epoch"]

    # Resume as a user would after a kill: the CLI, in a fresh process.
    command = [sys.executable, "-m", "bengaliai", "train", "--fold", "0", "--resume"]
    for setting in settings:
        command += ["--set", setting]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, check=False)
    resume_s = time.perf_counter() - start
    raw: dict[str, Any] = {
        "crashed_at_epoch": crashed_epoch, "resume_returncode": result.returncode, "resume_s": resume_s,
    }
    if result.returncode != 0:
        raw["resume_stderr"] = result.stderr[-4000:]
        lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
        return "FAIL", f"resume exited {result.returncode}: {lines[-1][:300] if lines else 'no output'}", raw
    resumed_msg = "resumed after epoch 0" in result.stderr
    resumed = load_checkpoint(root / "crashed" / last)
    equal, diff = weight_difference(root / "whole" / last, root / "crashed" / last)
    raw |= {"resume_logged": resumed_msg, "final_epoch": resumed["epoch"], "bit_equal": equal, "max_abs_diff": diff}
    text = (f"crashed in epoch 1 (last.pt at epoch {crashed_epoch}); resumed in a fresh process without error "
            f"({resume_s:.0f} s, 'resumed after epoch 0' logged: {resumed_msg}); final weights bit-equal: {equal}, "
            f"max abs diff {diff:.2e}")
    if repeat:
        again = load_config(TrainConfig, None, train_settings(check, input_dir, root / "again", *extra))
        train(again, folds="0")
        noise_equal, noise = weight_difference(root / "whole" / last, root / "again" / last)
        raw |= {"repeat_bit_equal": noise_equal, "repeat_max_abs_diff": noise}
        text += f"; two uninterrupted runs: bit-equal {noise_equal}, max abs diff {noise:.2e}"
    ok = resumed_msg and resumed["epoch"] == 1 and crashed_epoch == 0
    return ("ok" if ok else "FAIL"), text, raw
