"""Cost per image of the per-image augmentation: albumentations in a loader worker against `DeviceAugment`.

    python benchmarks/bench_augment.py [--batch 256] [--size 128] [--seconds 3] [--device cuda]

Same stroke images, default `AugmentConfig`. Rows: albumentations (`build_transform`, one image at
a time on uint8, one core, what a loader worker does), then the device path on a float32 batch
on the CPU with 1 and 2 torch threads, and with ``--device cuda`` also on the GPU (generator on
the CPU, parameters copied asynchronously, and generator on the GPU). Ratio is against
albumentations on one core. Run it alone: other processes on the cores void the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import torch
from augment_sheet import stroke_images

from bengaliai.training.augment import AugmentConfig, build_transform
from bengaliai.training.augment_device import DeviceAugment, batch_seed


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def images_per_second(
    step: Callable[[int], None], images_per_step: int, seconds: float, sync: Callable[[], None] = lambda: None
) -> float:
    """Run ``step(i)`` once to warm up, then for about ``seconds``; images per second of wall time."""
    step(0)
    sync()
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(steps + 1)
        steps += 1
        if steps % 4 == 0:
            sync()
    sync()
    return steps * images_per_step / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per row")
    parser.add_argument("--device", default="cpu", help="also time the device path here (e.g. cuda)")
    args = parser.parse_args()
    config = AugmentConfig()
    prepared = stroke_images(args.batch, args.size, seed=0)
    rows: list[tuple[str, float]] = []

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    transform = build_transform(config)
    assert transform is not None

    def loader_step(i: int) -> None:
        for image in prepared:
            transform(image=image)

    rows.append(("albumentations, per image, uint8, 1 core", images_per_second(loader_step, args.batch, args.seconds)))

    augment = DeviceAugment(config)
    generator = torch.Generator()
    batch = torch.from_numpy(prepared).float().div(255)[:, None].contiguous(memory_format=torch.channels_last)

    def device_step(images: torch.Tensor, gen: torch.Generator) -> Callable[[int], None]:
        def step(i: int) -> None:
            augment(images, gen.manual_seed(batch_seed(0, 0, i)))

        return step

    for threads in (1, 2):
        torch.set_num_threads(threads)
        rate = images_per_second(device_step(batch, generator), args.batch, args.seconds)
        rows.append((f"DeviceAugment, batch {args.batch}, fp32, CPU, {threads} thread{'s' * (threads > 1)}", rate))

    if args.device != "cpu":
        device = torch.device(args.device)
        sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
        cases = [(torch.float32, generator), (torch.bfloat16, generator)]
        if device.type == "cuda":
            cases.insert(1, (torch.float32, torch.Generator(device)))
        for dtype, gen in cases:
            step = device_step(batch.to(device, dtype), gen)
            name = f"DeviceAugment, {str(dtype)[6:]}, {device}, generator on {gen.device.type}"
            rows.append((name, images_per_second(step, args.batch, args.seconds, sync)))

    print(f"# bench_augment, {dt.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"command: python benchmarks/bench_augment.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"images {args.size}x{args.size}, default AugmentConfig\n")
    print("| path | images/s | µs per image | × albumentations (1 core) |\n|---|---|---|---|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {1e6 / rate:.1f} | {rate / rows[0][1]:.2f} |")


if __name__ == "__main__":
    main()
