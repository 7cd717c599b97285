"""Benchmark ``bengaliai prepare`` against the common pandas approach: time and peak memory.

The common approach, as most public kernels did it:
``pd.read_parquet(f).iloc[:, 1:].values.reshape(-1, 137, 236)`` per file, then the same
``preprocess_batch`` on that (strided) array, saved with ``np.save``. Each approach runs in its
own subprocess so that its peak RSS (``VmHWM``) is its own. By default one full-size file of
50,210 synthetic images (light noisy background, a few dark anti-aliased strokes, so it
compresses like real scans rather than like random bytes) is generated into a temporary folder;
``--input DIR`` uses the competition-format image files of DIR instead (linked, not modified).

    .venv/bin/python benchmarks/bench_prepare.py [--input DIR] [--repeat 3]

A third run, "one block", is prepare with the whole file decoded into one buffer (no spill to
disk): faster, but its peak is a file's pixels (1.6 GB) plus overhead.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from bengaliai.core.competition import HEIGHT, WIDTH
from bengaliai.data.parquet_images import write_image_parquet
from bengaliai.data.prepare import DEFAULT_MAX_BLOCK_BYTES, SPLITS, find_image_files, prepare
from bengaliai.data.preprocess import PreprocessConfig, preprocess_batch

APPROACHES = ("bengaliai prepare", "pd.read_parquet + strided", "bengaliai prepare, one block")


def make_images(n: int, seed: int) -> np.ndarray:
    """Images like scans of handwriting: background 245-255 with mild noise, dark thick strokes."""
    rng = np.random.default_rng(seed)
    noise = np.clip(rng.normal(0, 1.0, (64, HEIGHT, WIDTH)), -6, 6).astype(np.int32)
    images = np.empty((n, HEIGHT, WIDTH), dtype=np.uint8)
    for i in range(n):
        image = np.full((HEIGHT, WIDTH), int(rng.integers(245, 256)), dtype=np.int32)
        if rng.random() < 0.3:
            image += noise[i % len(noise)]
        strokes = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
        cx, cy = int(rng.integers(60, WIDTH - 60)), int(rng.integers(40, HEIGHT - 40))
        for _ in range(int(rng.integers(2, 6))):
            thickness = int(rng.integers(4, 12))
            if rng.random() < 0.5:
                p1 = (cx + int(rng.integers(-50, 50)), cy + int(rng.integers(-35, 35)))
                p2 = (cx + int(rng.integers(-50, 50)), cy + int(rng.integers(-35, 35)))
                cv2.line(strokes, p1, p2, 255, thickness, cv2.LINE_AA)
            else:
                center = (cx + int(rng.integers(-30, 30)), cy + int(rng.integers(-20, 20)))
                axes = (int(rng.integers(8, 35)), int(rng.integers(8, 25)))
                end = int(rng.integers(180, 360))
                cv2.ellipse(strokes, center, axes, int(rng.integers(0, 180)), 0, end, 255, thickness, cv2.LINE_AA)
        ink = int(rng.integers(40, 90))
        image -= strokes.astype(np.int32) * (image - ink) // 255
        images[i] = np.clip(image, 0, 255)
    return images


def _child_common(input_dir: Path, out_dir: Path, config: PreprocessConfig) -> int:
    import pandas as pd

    out_dir.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in find_image_files(input_dir, _present_splits(input_dir)):
        frame = pd.read_parquet(path)
        images = frame.iloc[:, 1:].values.reshape(-1, HEIGHT, WIDTH)
        np.save(out_dir / f"{path.stem}.npy", preprocess_batch(images, config))
        n += len(images)
        del frame, images
    return n


def _child_ours(input_dir: Path, config: PreprocessConfig, workers: int, max_block_bytes: int) -> int:
    splits = _present_splits(input_dir)
    paths = prepare(input_dir, config, workers=workers, splits=splits, max_block_bytes=max_block_bytes)
    return sum(np.load(p, mmap_mode="r").shape[0] for p in paths)


def _present_splits(input_dir: Path) -> tuple[str, ...]:
    return tuple(s for s in SPLITS if any(input_dir.glob(f"{s}_image_data_*.parquet")))


def _run_child(approach: int, input_dir: Path, work: Path, args: argparse.Namespace) -> dict[str, float]:
    """Run one approach in a fresh process on a fresh copy (links) of the input; time and peak RSS."""
    run_dir = work / f"run{approach}"
    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.mkdir(parents=True)
    for path in find_image_files(input_dir, _present_splits(input_dir)):
        (run_dir / path.name).symlink_to(path.resolve())
    command = [sys.executable, __file__, "--child", str(approach), "--input", str(run_dir)]
    command += ["--mode", args.mode, "--size", str(args.size), "--workers", str(args.workers)]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    shutil.rmtree(run_dir)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _peak_rss() -> int:
    """Peak resident bytes of this process image. Not ru_maxrss: Linux carries that over from
    the parent across fork and exec, so the parent's generated images would count."""
    with open("/proc/self/status", encoding="utf-8") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        models = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
    model = models[0] if models else model
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB RAM, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", type=Path, help="directory of competition-format image files")
    parser.add_argument("--n-images", type=int, default=50_210, help="images to generate without --input")
    parser.add_argument("--mode", default="crop", choices=("raw", "resize", "crop"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each approach, alternating; the median is kept")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    config = PreprocessConfig(mode=args.mode, size=args.size)

    if args.child is not None:
        started = time.perf_counter()
        if args.child == 0:
            n = _child_ours(args.input, config, args.workers, DEFAULT_MAX_BLOCK_BYTES)
        elif args.child == 1:
            n = _child_common(args.input, args.input / "common_out", config)
        else:  # the whole file in one block: no spill, more memory
            n = _child_ours(args.input, config, args.workers, 2**40)
        seconds = time.perf_counter() - started
        peak = _peak_rss()
        print(json.dumps({"seconds": seconds, "images": n, "peak_bytes": peak}))
        return

    with tempfile.TemporaryDirectory(prefix="bench_prepare_") as tmp:
        work = Path(tmp)
        input_dir = args.input
        if input_dir is None:
            input_dir = work / "data"
            started = time.perf_counter()
            images = make_images(args.n_images, seed=0)
            ids = [f"Train_{i}" for i in range(args.n_images)]
            write_image_parquet(input_dir / "train_image_data_0.parquet", ids, images)
            del images
            size = (input_dir / "train_image_data_0.parquet").stat().st_size
            print(f"generated {args.n_images} images ({size / 2**20:.0f} MiB parquet) in {time.perf_counter() - started:.0f} s")
        for path in find_image_files(input_dir, _present_splits(input_dir)):
            with open(path, "rb") as f:  # same warm page cache for both approaches
                while f.read(2**24):
                    pass
        runs: dict[int, list[dict[str, float]]] = {approach: [] for approach in range(len(APPROACHES))}
        for _ in range(args.repeat):
            for approach in runs:
                result = _run_child(approach, input_dir, work, args)
                print(f"{APPROACHES[approach]}: {result['seconds']:.1f} s, peak {result['peak_bytes'] / 2**30:.2f} GiB")
                runs[approach].append(result)

    median = {a: sorted(r, key=lambda x: x["seconds"])[len(r) // 2] for a, r in runs.items()}
    common = median[1]
    print()
    print(f"Machine: {_machine()}  ")
    print(f"Command: `{' '.join(shlex.quote(a) for a in sys.argv)}` (mode {config.tag}, workers {args.workers})  ")
    print(f"Date: {datetime.datetime.now().isoformat(timespec='minutes')}; {common['images']} images; median of {args.repeat} runs")
    print()
    print("| approach | seconds | images/s | peak RSS | speed-up | memory vs common |")
    print("|---|---|---|---|---|---|")
    for approach in (0, 2, 1):
        r = median[approach]
        print(
            f"| {APPROACHES[approach]} | {r['seconds']:.1f} | {r['images'] / r['seconds']:,.0f} "
            f"| {r['peak_bytes'] / 2**30:.2f} GiB | {common['seconds'] / r['seconds']:.1f}x "
            f"| {r['peak_bytes'] / common['peak_bytes']:.2f} |"
        )
    print("\nTargets: >= 5x faster and <= 0.25 of the memory of the common approach.")


if __name__ == "__main__":
    main()
