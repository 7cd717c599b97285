"""Step 6 of benchmarks/gpu_check.py, compile: torch.compile of the training step, its loops, train(compile=True)."""

from __future__ import annotations

import time

import torch

from bengaliai.core.config import load_config
from bengaliai.training.train import TrainConfig, train

from gpu_steps.data import device_batches
from gpu_steps.loops import model_only, new_model, run_epoch, step_context, whole_loop
from gpu_steps.runner import Check
from gpu_steps.settings import LOOP_AUGMENT, Result


def dynamo_graphs() -> int | None:
    """Graphs dynamo has compiled in this process (a private counter: None where it is gone)."""
    try:
        from torch._dynamo.utils import counters

        return int(counters["stats"]["unique_graphs"])
    except Exception:  # noqa: BLE001
        return None


def step_compile(check: Check) -> None:
    s, step = check.sizes, "compile"
    if not check.cuda:
        check.skip(step, "torch.compile", "no CUDA")
        return
    model, optimizer, scheduler = new_model(check)
    compiled = torch.compile(model)

    def first_steps() -> Result:
        ctx = step_context(check, "auto", LOOP_AUGMENT)
        batches = device_batches(check.sizes, check.device, 2)
        start = time.perf_counter()
        run_epoch(compiled, batches[:1], optimizer, scheduler, ctx, 0, 1)
        first = time.perf_counter() - start
        start = time.perf_counter()
        run_epoch(compiled, batches, optimizer, scheduler, ctx, 0, 2)
        next_two = time.perf_counter() - start
        text = f"first step {first:.1f} s (compile), the next 2 steps {next_two:.2f} s"
        return "ok", text, {"compile_s": first, "next_2_steps_s": next_two}

    if check.attempt(step, f"compile {s.arch} {s.size}px training step", first_steps, needs_s=90) is None:
        return
    graphs_first = dynamo_graphs()
    eager = check.raw.get("throughput", {}).get("model_only_images_per_s")
    only = check.attempt(step, "model only, compiled", lambda: model_only(check, compiled, optimizer, scheduler), needs_s=15)
    if only and eager:
        check.raw[step]["model only, compiled"]["speedup_vs_eager"] = only["images_per_s"] / eager
        check.add(step, "compiled / eager, model only", "info", f"{only['images_per_s'] / eager:.2f}x")
    reference = only["images_per_s"] if only else None
    for where in ("loader", "device"):
        check.attempt(step, f"whole loop, compiled, augment.where={where}",
                      lambda where=where: whole_loop(check, where, compiled, optimizer, scheduler, reference), needs_s=20)

    graphs = dynamo_graphs()
    check.add(step, "graphs compiled by dynamo", "info" if graphs == graphs_first else "recompiled",
              f"{graphs_first} after the first steps, {graphs} after the compiled loops (more: recompiled on the way)")

    def train_compiled() -> Result:
        input_dir = check.dataset()
        settings = [
            f"data.input={input_dir}", f"output={check.workdir / 'runs'}", f"device={check.device.type}",
            f"data.cache=crop{s.size}", f"data.batch_size={s.batch}", f"model.arch={s.arch}",
            f"model.base_width={s.width}",
            "epochs=1", f"max_batches={s.compile_batches}", "compile=true", "optim.ema_decay=0.999",
            "augment.cutmix_p=0.5", "experiment=compiled",
        ]
        start = time.perf_counter()
        score = train(load_config(TrainConfig, None, settings), folds="0")[0]
        seconds = time.perf_counter() - start
        text = f"{s.compile_batches} batches + validation in {seconds:.0f} s (compile included), score {score:.3f}"
        return "ok", text, {"seconds": seconds}

    check.attempt(step, f"train(compile=True, EMA), {s.compile_batches} batches", train_compiled, needs_s=40)
