"""Throughput and peak memory of ``bengaliai import banglalekha`` against a naive importer.

Usage: python benchmarks/bench_import.py --src DIR [--limit-per-class 40] [--workers 1 2]
DIR is the user's own BanglaLekha-Isolated copy (the folder holding Images/). Each row runs in a
fresh process; peak memory is the largest sum of the resident memory of that process and its
workers, sampled every 20 ms. The naive importer is what a first script does: Pillow opens each
image, float64 numpy ops on the full 137x236 frame, every image kept in a list, one pandas
DataFrame of all pixels written with to_parquet. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from bengaliai.core.competition import BANGLALEKHA_ROOTS, HEIGHT, PIXEL_COLUMNS, WIDTH
from bengaliai.handwriting.banglalekha import scan_source


def naive_import(src: Path, out: Path, limit_per_class: int, seed: int = 0) -> None:
    """Pillow, float64 full-frame numpy, everything in memory, pandas to_parquet: a typical first try."""
    import pandas as pd
    from PIL import Image, ImageFilter

    images, ids, labels = [], [], []
    for source in scan_source(src, limit_per_class):
        rng = np.random.default_rng([seed, source.folder, source.index])
        ink = 255.0 - np.asarray(Image.open(source.path).convert("L"), dtype=np.float64)  # dark ink, light paper
        ys, xs = np.nonzero(ink < 128)
        crop = Image.fromarray(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1].astype(np.uint8))
        scale = min(rng.uniform(0.5, 0.85), 132 / crop.height, 226 / crop.width)
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))), Image.BILINEAR)
        frame = Image.new("L", (WIDTH, HEIGHT), 255)
        frame.paste(crop, ((WIDTH - crop.width) // 2, (HEIGHT - crop.height) // 2))
        frame = frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 0.8)))
        pixels = np.asarray(frame, dtype=np.float64)
        ink_level, paper = rng.uniform(25, 65), rng.uniform(251, 256)
        pixels = paper - (255.0 - pixels) / 255.0 * (paper - ink_level) + rng.normal(0, 1.5, pixels.shape)
        images.append(np.clip(pixels, 0, 255).astype(np.uint8))
        ids.append(f"BLI_{source.folder}_{source.index}")
        labels.append(BANGLALEKHA_ROOTS[source.folder])
    frame_df = pd.DataFrame(np.stack(images).reshape(len(images), -1), columns=list(PIXEL_COLUMNS))
    frame_df.insert(0, "image_id", ids)
    frame_df.to_parquet(out / "train_image_data_0.parquet")
    pd.DataFrame({"image_id": ids, "grapheme_root": labels}).to_csv(out / "train.csv", index=False)


def run_child(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.child == "naive":
        naive_import(args.src, out, args.limit_per_class)
    else:
        from bengaliai.handwriting.banglalekha import import_banglalekha

        import_banglalekha(args.src, out, seed=0, workers=int(args.child), limit_per_class=args.limit_per_class)


def measure(command: list[str]) -> tuple[float, float]:
    """Wall seconds and peak resident memory (GiB) of a command and all its descendants."""
    start = time.perf_counter()
    process = psutil.Popen(command, stdout=subprocess.DEVNULL, env=os.environ | {"TQDM_DISABLE": "1"})
    peak = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    code = process.wait()
    done.set()
    sampler.join()
    if code:
        raise SystemExit(f"{shlex.join(command)} failed with exit code {code}")
    return time.perf_counter() - start, peak / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, required=True, help="the BanglaLekha-Isolated folder holding Images/")
    parser.add_argument("--limit-per-class", type=int, default=40, help="images per class (73 classes)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return

    n = len(scan_source(args.src, args.limit_per_class))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        naive_rate = None
        for child in ["naive", *map(str, args.workers)]:
            command = [
                sys.executable, __file__, "--src", str(args.src), "--limit-per-class", str(args.limit_per_class),
                "--child", child, "--out", str(Path(tmp) / child),
            ]
            seconds, peak = measure(command)
            rate = n / seconds
            naive_rate = naive_rate or rate
            label = "naive: Pillow + float64 full frame + pandas, 1 process" if child == "naive" else (
                f"bengaliai import banglalekha, workers={child}"
            )
            rows.append(f"| {label} | {n} | {seconds:.1f} s | {rate:.0f} | {peak:.2f} GiB | {rate / naive_rate:.1f}x |")

    print(f"Machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}")
    print(f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"Command: `{' '.join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}`")
    print("Times include process start-up and writing the files.\n")
    print("| what | images | time | images/s | peak memory | vs naive |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
