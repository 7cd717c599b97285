"""Training throughput: the loader alone, the model alone, and the whole loop, side by side.

    python benchmarks/bench_train.py [--input DIR] [--cache crop128] [--arch resnet34]

``--input`` is a directory that ``bengaliai synth`` + ``bengaliai prepare`` filled; without it
the benchmark makes 10,000 synthetic training images in a temporary directory first. Prints a
markdown table (images/s) with the machine, the command and the date:

- loader: our uint8 whole-batch loader with the default augmentation, against the common
  per-image Dataset that returns normalised float32 tensors and collates them one by one;
- model: forward + backward + AdamW step on a batch already in memory, fp32 / bf16 / bf16 +
  channels_last;
- loop: ``engine.train_one_epoch`` over the real loader (augmentation, CutMix, step), bf16 +
  channels_last, and its ratio to the model alone (the data pipeline must not be the bottleneck).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from bengaliai.compute.distributed import DistInfo  # noqa: E402
from bengaliai.compute.precision import Precision  # noqa: E402
from bengaliai.compute.threads import apply_threads, plan_threads  # noqa: E402
from bengaliai.core.competition import COMPONENTS, N_CLASSES  # noqa: E402
from bengaliai.model.classifier import ModelConfig, build_model  # noqa: E402
from bengaliai.training.augment import AugmentConfig, build_transform  # noqa: E402
from bengaliai.training.engine import LossConfig, StepContext, train_one_epoch, weighted_loss  # noqa: E402
from bengaliai.training.inputs import DataConfig  # noqa: E402
from bengaliai.training.loader import AugmentedBatches, EpochBatches, make_loader, open_cache  # noqa: E402
from bengaliai.training.optim import OptimConfig, build_optimizer, build_scheduler  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


class NaiveDataset(torch.utils.data.Dataset):
    """The tutorial loader: one image per item, float32 normalised on the host, default collate."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: object) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        image = self.transform(image=np.asarray(self.images[i]))["image"].astype(np.float32) / 255.0
        image = (image - 0.06) / 0.2
        return torch.from_numpy(image)[None], *(torch.tensor(int(v)) for v in self.labels[i])


def time_loader(loader: torch.utils.data.DataLoader, batches: int) -> float:
    iterator = iter(loader)
    next(iterator)  # workers started
    start, seen = time.perf_counter(), 0
    for _ in range(batches):
        seen += len(next(iterator)[0])
    return seen / (time.perf_counter() - start)


def time_model(arch: str, size: int, batch: int, precision: str, channels_last: bool, steps: int) -> float:
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch))
    x = torch.randn(batch, 1, size, size)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    targets = {n: torch.randint(N_CLASSES[n], (batch,)) for n in COMPONENTS}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_config = LossConfig()

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(x)
        loss = weighted_loss(logits, targets, loss_config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def time_loop(store: object, labels: np.ndarray, arch: str, batch: int, steps: int, workers: int) -> float:
    torch.manual_seed(0)
    augment = AugmentConfig(cutmix_p=0.5)
    indices = np.arange(len(labels))
    sampler = EpochBatches(indices, batch, seed=0)
    loader = make_loader(AugmentedBatches(store, labels, build_transform(augment), 0), sampler, workers, False)
    model = build_model(ModelConfig(arch=arch)).to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, OptimConfig())
    scheduler = build_scheduler(optimizer, OptimConfig(), len(sampler), 1)
    ctx = StepContext(torch.device("cpu"), Precision("bf16", "benchmark"), True, DataConfig(), augment, LossConfig(), 5.0, DistInfo())
    warm = (b for _, b in zip(range(1), loader))
    train_one_epoch(model, warm, optimizer, scheduler, None, ctx, torch.Generator().manual_seed(0), 0, 1)
    batches = (b for _, b in zip(range(steps), loader))
    _, images_per_s = train_one_epoch(model, batches, optimizer, scheduler, None, ctx, torch.Generator().manual_seed(1), 0, steps)
    return images_per_s


def make_input(workdir: Path, n_train: int) -> Path:
    from bengaliai.data.prepare import prepare
    from bengaliai.data.preprocess import PreprocessConfig
    from bengaliai.synth.dataset import synthesize

    synthesize(workdir, n_train=n_train, n_test=0, seed=0, workers=os.cpu_count() or 1)
    prepare(workdir, PreprocessConfig(mode="crop", size=128), workers=os.cpu_count() or 1, splits=("train",))
    return workdir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, default=None)
    parser.add_argument("--cache", default="crop128")
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--model-steps", type=int, default=6)
    parser.add_argument("--loader-batches", type=int, default=40)
    parser.add_argument(
        "--workers", type=int, default=None,
        help="loader workers (default: bengaliai.compute.threads' plan for this machine, with its torch threads)",
    )
    args = parser.parse_args()
    # Size torch's pool and the workers as training does (bengaliai.compute.threads): the model-only rows and
    # the whole loop then run with the same torch threads, the loop's workers on the remaining cores.
    plan = plan_threads(None, args.workers)
    apply_threads(plan)
    args.workers = plan.workers
    with tempfile.TemporaryDirectory() as tmp:
        input_dir = args.input or make_input(Path(tmp), 10_000)
        store = open_cache(input_dir, args.cache, "train")
        labels = np.zeros((len(store), 4), dtype=np.int64)
        size = store.image_shape[0]
        rows: list[tuple[str, str, float]] = []

        transform = build_transform(AugmentConfig())
        ours = make_loader(AugmentedBatches(store, labels, transform, 0), EpochBatches(np.arange(len(store)), 128, 0), args.workers, False)
        naive_data = NaiveDataset(store.gather(np.arange(len(store))), labels[:, :3], transform)
        naive = torch.utils.data.DataLoader(naive_data, batch_size=128, shuffle=True, num_workers=args.workers, persistent_workers=True)
        ours_rate, naive_rate = time_loader(ours, args.loader_batches), time_loader(naive, args.loader_batches)
        rows += [
            ("loader", f"common per-image float32 Dataset + collate, {args.workers} workers", naive_rate),
            ("loader", f"ours: uint8 whole batches, {args.workers} workers", ours_rate),
        ]
        model_rates = {}
        for precision, channels_last in (("fp32", False), ("bf16", False), ("bf16", True)):
            label = precision + (" + channels_last" if channels_last else "")
            model_rates[label] = time_model(args.arch, size, args.batch, precision, channels_last, args.model_steps)
            rows.append(("model only", f"{args.arch} {size}px batch {args.batch}, {label}", model_rates[label]))
        loop_rate = time_loop(store, labels, args.arch, args.batch, args.model_steps, args.workers)
        rows.append(("whole loop", f"{args.arch} {size}px batch {args.batch}, bf16 + channels_last, aug + CutMix", loop_rate))

    print(f"\n{dt.date.today()} · {cpu_model()} · {os.cpu_count()} cores · torch {torch.__version__}")
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"threads: {plan.reason}\n")
    print("| what | setting | images/s |\n|---|---|---|")
    for what, setting, rate in rows:
        print(f"| {what} | {setting} | {rate:,.0f} |")
    print(f"\nloader, ours / common: {ours_rate / naive_rate:.1f}x")
    print(f"whole loop / model only (bf16 + channels_last): {loop_rate / model_rates['bf16 + channels_last']:.0%}")


if __name__ == "__main__":
    main()
