"""Training throughput with the weight EMA on: torch's AveragedModel (the old code) against WeightEma, in one run.

    python benchmarks/bench_ema.py [--arch resnet18] [--base-width 32] [--size 64] [--batch 128]

The training step is ``engine.train_one_epoch``'s, on batches already in memory (uint8, as the
loader yields them), so the figures are the step and the EMA update alone, with no loader beside
them. Three loops take turns, ``--rounds`` times each, and the median round is reported:

- no EMA;
- old: ``AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)``, as
  ``training/optim.py`` built it before issue 22 (its ``n_averaged`` lives on the CPU and is copied
  to the model's device at every update);
- new: ``training.ema.WeightEma`` (``torch._foreach_lerp_``, the count a Python int).

Then the update alone, in milliseconds (median of ``--updates`` updates after a warm-up). On a CPU
the old update's copy of ``n_averaged`` does not wait for anything, so the difference here is the
cost of the update itself; on a GPU the old one also makes every step wait for the one before
(``benchmarks/gpu_check.py`` measures that when a device is lent).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from bengaliai.compute.distributed import DistInfo  # noqa: E402
from bengaliai.compute.precision import Precision  # noqa: E402
from bengaliai.compute.threads import apply_threads, plan_threads  # noqa: E402
from bengaliai.core.competition import COMPONENTS, N_CLASSES  # noqa: E402
from bengaliai.model.classifier import ModelConfig, build_model  # noqa: E402
from bengaliai.training.augment import AugmentConfig  # noqa: E402
from bengaliai.training.ema import WeightEma  # noqa: E402
from bengaliai.training.engine import LossConfig, StepContext, train_one_epoch  # noqa: E402
from bengaliai.training.inputs import DataConfig  # noqa: E402
from bengaliai.training.optim import OptimConfig, build_optimizer, build_scheduler  # noqa: E402

from bench_train import cpu_model  # noqa: E402

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
log = logging.getLogger("bench_ema")
KINDS = ("no EMA", "old: AveragedModel", "new: WeightEma")


def make_batches(n: int, batch: int, size: int, seed: int) -> list[Batch]:
    """``n`` random uint8 batches with labels, shaped as ``training.loader`` yields them."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for _ in range(n):
        images = torch.randint(0, 256, (batch, 1, size, size), dtype=torch.uint8, generator=generator)
        labels = torch.stack([torch.randint(N_CLASSES[c], (batch,), generator=generator) for c in COMPONENTS], 1)
        batches.append((images, labels, torch.arange(batch)))
    return batches


def make_ema(kind: str, model: torch.nn.Module, decay: float) -> AveragedModel | WeightEma | None:
    if kind == KINDS[1]:
        return AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)
    if kind == KINDS[2]:
        return WeightEma(model, decay)
    return None


def median_ms(update: Callable[[], None], count: int) -> float:
    for _ in range(3):
        update()
    times = []
    for _ in range(count):
        start = time.perf_counter()
        update()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--base-width", type=int, default=32, help="model.base_width (32: the 40k protocol's)")
    parser.add_argument("--size", type=int, default=64, help="image side (64: the 40k protocol's crop)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="training steps per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each loop, taken in turn")
    parser.add_argument("--updates", type=int, default=50, help="EMA updates timed alone")
    parser.add_argument("--decay", type=float, default=0.99)
    args = parser.parse_args()
    plan = plan_threads(None, 0)
    apply_threads(plan)
    batches = make_batches(args.steps, args.batch, args.size, seed=0)
    config = ModelConfig(arch=args.arch, base_width=args.base_width)
    ctx = StepContext(
        torch.device("cpu"), Precision("bf16", "benchmark"), True, DataConfig(), AugmentConfig(cutmix_p=0.0),
        LossConfig(), 5.0, DistInfo(),
    )
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for round_ in range(args.rounds):
        for kind in KINDS:
            torch.manual_seed(0)
            model = build_model(config).to(memory_format=torch.channels_last)
            optimizer = build_optimizer(model, OptimConfig())
            scheduler = build_scheduler(optimizer, OptimConfig(), args.steps + 1, 1)
            ema = make_ema(kind, model, args.decay)
            generator = torch.Generator().manual_seed(round_)
            train_one_epoch(model, batches[:1], optimizer, scheduler, ema, ctx, generator, 0, 1)  # warm-up
            _, images_per_s, _ = train_one_epoch(model, batches, optimizer, scheduler, ema, ctx, generator, 0, args.steps)
            rates[kind].append(images_per_s)
            log.info("round %d/%d %s: %.0f images/s", round_ + 1, args.rounds, kind, images_per_s)

    torch.manual_seed(0)
    model = build_model(config).to(memory_format=torch.channels_last)
    old = make_ema(KINDS[1], model, args.decay)
    new = make_ema(KINDS[2], model, args.decay)
    old_ms = median_ms(lambda: old.update_parameters(model), args.updates)
    new_ms = median_ms(lambda: new.update_parameters(model), args.updates)
    n_tensors = len([*model.parameters(), *model.buffers()])

    print(f"\n{dt.date.today()} · {cpu_model()} · {os.cpu_count()} cores · torch {torch.__version__}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"threads: {plan.reason}")
    print(f"model: {args.arch} base width {args.base_width}, {args.size}px, batch {args.batch}, bf16 + channels_last, "
          f"{n_tensors} parameter and buffer tensors; {args.steps} steps a round, median of {args.rounds} rounds\n")
    print("| loop | images/s (median) | rounds | vs no EMA |\n|---|---|---|---|")
    medians = {kind: statistics.median(rates[kind]) for kind in KINDS}
    for kind in KINDS:
        rounds = ", ".join(f"{r:,.0f}" for r in rates[kind])
        print(f"| {kind} | {medians[kind]:,.0f} | {rounds} | {medians[kind] / medians[KINDS[0]]:.0%} |")
    print(f"\nnew / old, training loop: {medians[KINDS[2]] / medians[KINDS[1]]:.2f}x")
    print(f"EMA update alone: old {old_ms:.2f} ms, new {new_ms:.2f} ms (old / new {old_ms / new_ms:.1f}x)")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    main()
