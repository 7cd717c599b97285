"""Training speed with torch's default thread pools against the planned ones, alone and beside a busy neighbour.

    python benchmarks/bench_threads.py [--seconds 10] [--grid 2:0,1:0,2:1]

The step is the demo's: a ResNet-18 of base width 32 at 64x64 px, batch 64, AdamW, bf16 autocast,
channels_last, fed by the real loader (uint8 batches, the default albumentations pipeline in
worker processes). Each configuration runs in a fresh process (thread settings are process-wide),
warms up for two steps, then steps for ``--seconds``. "Beside a neighbour" starts one process
that spins a pure-Python loop for the whole measurement and kills it afterwards.

- before: torch's default threads (every host core) and the demo's 2 loader workers;
- after: ``plan_threads(None, None)`` applied with ``apply_threads``, ``worker_init`` in the workers;
- ``--grid T:W,...``: more configurations with T torch threads and W workers, planned the same way.

Prints a markdown table of images/s with the ratios neighbour/alone and after/before. Run it on
an otherwise idle machine: figures taken while anything else runs are void.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

SIZE, BATCH, IMAGES = 64, 64, 4096
NEIGHBOUR = "while True: pass"


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def measure(threads: int | None, workers: int, seconds: float) -> dict[str, float]:
    """Images/s of the demo's training step in this process; ``threads`` None keeps torch's defaults,
    -1 plans them here (``plan_threads(None, workers)``: it sees a neighbour that is already running)."""
    import numpy as np
    import torch

    from bengaliai.compute.threads import apply_threads, plan_threads, worker_init
    from bengaliai.core.competition import COMPONENTS, N_CLASSES
    from bengaliai.model.classifier import ModelConfig, build_model
    from bengaliai.training.augment import AugmentConfig, build_transform
    from bengaliai.training.engine import LossConfig, targets_of, weighted_loss
    from bengaliai.training.inputs import DataConfig
    from bengaliai.training.loader import AugmentedBatches, EpochBatches, ImageStore, to_model_input
    from bengaliai.training.optim import OptimConfig, build_optimizer

    planned = threads is not None
    if planned:
        apply_threads(plan_threads(None if threads == -1 else threads, workers))
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # Sparse ink on a zero background, like the prepared cache.
    images = (rng.random((IMAGES, SIZE, SIZE)) < 0.15).astype(np.uint8) * rng.integers(0, 256, (IMAGES, SIZE, SIZE), dtype=np.uint8)
    labels = np.column_stack([rng.integers(N_CLASSES[n], size=IMAGES) for n in COMPONENTS]).astype(np.int64)
    store = ImageStore([images], [str(i) for i in range(IMAGES)])
    loader = torch.utils.data.DataLoader(
        AugmentedBatches(store, labels, build_transform(AugmentConfig()), 0),
        sampler=EpochBatches(np.arange(IMAGES), BATCH, seed=0),
        batch_size=None,
        num_workers=workers,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        worker_init_fn=worker_init if planned else None,
    )
    model = build_model(ModelConfig(arch="resnet18", base_width=32)).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, OptimConfig())
    data, loss_config, device = DataConfig(), LossConfig(), torch.device("cpu")

    def step(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> None:
        x = to_model_input(batch[0], data, device, True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(x)
        loss = weighted_loss(logits, targets_of(batch[1]), loss_config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def batches():
        while True:
            yield from loader

    stream = batches()
    for _ in range(2):
        step(next(stream))
    start, steps = time.perf_counter(), 0
    while steps < 2 or time.perf_counter() - start < seconds:
        step(next(stream))
        steps += 1
    elapsed = time.perf_counter() - start
    return {"images_per_s": steps * BATCH / elapsed, "steps": steps, "torch_threads": torch.get_num_threads()}


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (every process, /proc/stat)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # minus idle and iowait


def run_child(threads: int | None, workers: int, seconds: float, neighbour: bool) -> dict[str, float]:
    """``measure`` in a fresh interpreter, beside a spinning neighbour process if asked.

    Also returns ``others``: the cores that processes outside this benchmark kept busy meanwhile
    (the machine's busy time minus that of the benchmark's children); above about 0.1 the
    figures are void.
    """
    command = [sys.executable, __file__, "--child", str(0 if threads is None else threads), str(workers), "--seconds", str(seconds)]
    times, busy, start = os.times(), busy_seconds(), time.perf_counter()
    spinner = subprocess.Popen([sys.executable, "-c", NEIGHBOUR]) if neighbour else None
    try:
        if spinner is not None:
            time.sleep(0.5)
        out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()
    after = os.times()
    ours = after.children_user + after.children_system - times.children_user - times.children_system
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["others"] = max(busy_seconds() - busy - ours, 0.0) / (time.perf_counter() - start)
    return result


def parse_grid(text: str) -> list[tuple[int, int]]:
    pairs = [tuple(int(v) for v in part.split(":")) for part in text.split(",") if part]
    if any(len(p) != 2 or p[0] < 1 or p[1] < 0 for p in pairs):
        raise SystemExit(f"--grid {text!r}: expected THREADS:WORKERS pairs such as 2:0,1:1")
    return pairs  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured time per configuration, after warm-up")
    parser.add_argument("--before-workers", type=int, default=2, help="loader workers of the 'before' run (the demo's)")
    parser.add_argument("--grid", type=parse_grid, default=[], help="extra THREADS:WORKERS configurations")
    parser.add_argument("--child", nargs=2, type=int, metavar=("THREADS", "WORKERS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        threads, workers = args.child
        print(json.dumps(measure(threads or None, workers, args.seconds)))
        return

    from bengaliai.compute.threads import cpu_limits, plan_threads

    plan = plan_threads(None, None)
    load = os.getloadavg()
    # "after" plans in the measured process itself, as training does: beside a neighbour it sees it.
    configs = [("before: torch default", None, args.before_workers), ("after: planned", -1, plan.workers)]
    configs += [(f"{t} threads, {w} workers", t, w) for t, w in args.grid]
    rows = []
    for name, threads, workers in configs:
        alone = run_child(threads, workers, args.seconds, neighbour=False)
        busy = run_child(threads, workers, args.seconds, neighbour=True)
        rows.append((name, f"{alone['torch_threads']} / {busy['torch_threads']}", workers, alone, busy))
        print(f"{name}: {alone['images_per_s']:.0f} img/s alone, {busy['images_per_s']:.0f} beside a neighbour", file=sys.stderr)

    print(f"\n{dt.date.today()} · {cpu_model()} · {os.cpu_count()} host cores · {cpu_limits()} · load average before: {load[0]:.2f}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"plan: {plan.reason}\n")
    print("| configuration | torch threads (alone / beside) | workers | alone img/s | beside a neighbour img/s | neighbour / alone | other load (cores) |")
    print("|---|---|---|---|---|---|---|")
    for name, threads, workers, alone, busy in rows:
        rate, busy_rate = alone["images_per_s"], busy["images_per_s"]
        others = f"{alone['others']:.2f} / {busy['others']:.2f}"
        print(f"| {name} | {threads} | {workers} | {rate:,.0f} | {busy_rate:,.0f} | {busy_rate / rate:.2f} | {others} |")
    (*_, before_alone, before_busy), (*_, after_alone, after_busy) = rows[:2]
    print(
        f"\nafter / before: alone {after_alone['images_per_s'] / before_alone['images_per_s']:.2f}, "
        f"beside a neighbour {after_busy['images_per_s'] / before_busy['images_per_s']:.2f}"
    )
    worst = max(max(a["others"], b["others"]) for *_, a, b in rows)
    if worst > 0.1:
        print(f"\nWARNING: other processes kept up to {worst:.2f} cores busy during the runs: these figures are void.")


if __name__ == "__main__":
    main()
