"""Throughput of ``bengaliai synth``: end to end per worker count, and rendering against a naive way.

Usage: python benchmarks/bench_synth.py [--train 6000] [--test 1000] [--workers 1 2] [--render-n 2000]
Prints a markdown table. End to end includes the CSVs and the parquet files. The render-only
rows draw the same graphemes on one core three ways: a naive Pillow pipeline that shapes and
transforms every sample from scratch, our cv2 pipeline with the glyph cache off, and with it on.
"""

from __future__ import annotations

import argparse
import datetime
import filecmp
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from bengaliai.core.competition import HEIGHT, WIDTH, render_text
from bengaliai.core.fonts import font_path
from bengaliai.synth.dataset import synthesize
from bengaliai.synth.render import RenderConfig, Renderer
from bengaliai.synth.sampling import TRAIN_CODE, image_rng, sample_train


class NaiveRenderer:
    """Pillow only, no cache: shape the text at the sample's size, then transform the full frame."""

    def __init__(self, config: RenderConfig) -> None:
        self.paths = [str(font_path(name)) for name in config.fonts]

    def render(self, text: str, rng: np.random.Generator) -> np.ndarray:
        path, size = self.paths[int(rng.integers(len(self.paths)))], int(rng.integers(50, 90))
        font = ImageFont.truetype(path, size, layout_engine=ImageFont.Layout.RAQM)
        image = Image.new("L", (WIDTH, HEIGHT), 0)
        left, top, right, bottom = font.getbbox(text)
        x = (WIDTH - (right - left)) / 2 - left + rng.uniform(-20, 20)
        y = (HEIGHT - (bottom - top)) / 2 - top + rng.uniform(-10, 10)
        ImageDraw.Draw(image).text((x, y), text, font=font, fill=255)
        shear, angle = rng.normal(0, 0.15), rng.normal(0, 5)
        affine = (1, shear, -shear * HEIGHT / 2, 0, 1, 0)
        image = image.transform(image.size, Image.Transform.AFFINE, affine, Image.Resampling.BILINEAR)
        image = image.rotate(angle, Image.Resampling.BILINEAR)
        image = image.filter(ImageFilter.MaxFilter(3)).filter(ImageFilter.GaussianBlur(rng.uniform(0, 1)))
        ink = np.asarray(image, dtype=np.float32)
        paper = rng.uniform(244, 255) + rng.normal(0, 2, ink.shape)
        return np.clip(paper - ink * (paper - rng.uniform(10, 70)) / 255, 0, 255).astype(np.uint8)


def time_rendering(renderer: object, texts: list[str]) -> float:
    """Images per second drawing ``texts`` with per-image generators as synth does."""
    start = time.perf_counter()
    for i, text in enumerate(texts):
        renderer.render(text, image_rng(0, TRAIN_CODE, i))  # type: ignore[attr-defined]
    return len(texts) / (time.perf_counter() - start)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=6000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--render-n", type=int, default=2000, help="images per render-only row")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        outputs = []
        for workers in args.workers:
            out = Path(tmp) / f"w{workers}"
            start = time.perf_counter()
            synthesize(out, n_train=args.train, n_test=args.test, seed=0, workers=workers)
            seconds = time.perf_counter() - start
            outputs.append(out)
            n = args.train + args.test
            rows.append(f"| synthesize end to end, workers={workers} | {n} | {seconds:.1f} s | {n / seconds:.0f} |  |")
        names = sorted(p.name for p in outputs[0].iterdir())
        same = all(
            filecmp.cmp(outputs[0] / name, other / name, shallow=False) for other in outputs[1:] for name in names
        )

    texts = [render_text(g) for g in sample_train(args.render_n, seed=0)]
    naive = time_rendering(NaiveRenderer(RenderConfig()), texts)
    uncached = time_rendering(Renderer(RenderConfig(glyph_cache_size=0)), texts)
    cached_renderer = Renderer(RenderConfig())
    cold = time_rendering(cached_renderer, texts)
    warm = time_rendering(cached_renderer, texts)
    for label, rate in [
        ("render only, naive Pillow, no cache", naive),
        ("render only, cv2 pipeline, no glyph cache", uncached),
        ("render only, cv2 + glyph cache, first use of each glyph", cold),
        ("render only, cv2 + glyph cache, warm", warm),
    ]:
        rows.append(f"| {label} | {len(texts)} | {len(texts) / rate:.1f} s | {rate:.0f} | {rate / naive:.1f}x |")

    print(f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, {platform.system()}")
    print(f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}")
    print(f"Command: `{' '.join(shlex.quote(a) for a in [Path(sys.executable).name, *sys.argv])}`")
    print(f"Same bytes in every output file for workers {args.workers}: {'yes' if same else 'NO'}\n")
    print("| what | images | time | images/s | vs naive |")
    print("|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
