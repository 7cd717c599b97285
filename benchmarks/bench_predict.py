"""Inference speed and memory: the model alone, predict end to end, and predict against the naive kernel.

    python benchmarks/bench_predict.py [--images-per-file 8192] [--files 4] [--arch resnet34]

Makes a test set in the competition format in a temporary directory (synthetic renders, tiled
into ``--files`` parquet files) and a run folder with one ``--arch`` fold at 128 px (random
weights: speed does not depend on them). Prints markdown tables with the machine and the date:

- model alone: forward passes of one fold on a batch already in memory, fp32, bf16 +
  channels_last, and ``torch.compile`` with frozen weights (bf16 + channels_last);
- predict end to end (decode, crop, model, submission) with 1 and 5 folds, and the projection for
  200,000 test images with a 5-fold ensemble;
- peak memory (max RSS of a fresh process) of ``predict`` on one test file and on all files,
  against the naive kernel that loads every test file with ``pd.read_parquet`` first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from bengaliai.compute.precision import resolve_precision  # noqa: E402
from bengaliai.core.competition import TEST_CSV, image_parquet_name  # noqa: E402
from bengaliai.core.config import to_dict  # noqa: E402
from bengaliai.core.fileio import write_csv  # noqa: E402
from bengaliai.data.labels import make_test_rows  # noqa: E402
from bengaliai.data.parquet_images import read_images, write_image_parquet  # noqa: E402
from bengaliai.data.preprocess import PreprocessConfig  # noqa: E402
from bengaliai.data.runinfo import write_run_description  # noqa: E402
from bengaliai.model.classifier import ModelConfig, build_model  # noqa: E402
from bengaliai.training.train import TrainConfig  # noqa: E402

PREPROCESS = PreprocessConfig(mode="crop", size=128)
TEST_IMAGES = 200_000


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def make_test_set(workdir: Path, files: int, per_file: int) -> Path:
    """Competition-format test files: 1,000 synthetic renders tiled to ``per_file`` images each."""
    from bengaliai.synth.dataset import synthesize

    source = workdir / "source"
    synthesize(source, n_train=0, n_test=1000, seed=3, workers=os.cpu_count() or 1)
    _, images = read_images(source / image_parquet_name("test", 0))
    input_dir = workdir / "input"
    ids = []
    for f in range(files):
        file_ids = [f"Test_{f * per_file + i}" for i in range(per_file)]
        tiled = images[np.arange(per_file) % len(images)]
        write_image_parquet(input_dir / image_parquet_name("test", f), file_ids, tiled)
        ids += file_ids
    rows = make_test_rows(ids)
    write_csv(rows, input_dir / TEST_CSV)
    return input_dir


def make_run(runs: Path, input_dir: Path, arch: str, folds: int) -> Path:
    """``runs/bench/fold<K>/best.pt`` with random weights in the format training writes."""
    config = TrainConfig(experiment="bench", model=ModelConfig(arch=arch))
    config_dict = to_dict(config)
    config_dict["data"]["input"] = str(input_dir)
    torch.manual_seed(0)
    model = build_model(config.model)
    for fold in range(folds):
        run_dir = runs / "bench" / f"fold{fold}"
        write_run_description(run_dir, config_dict)
        state = {
            "config": config_dict, "fold": fold, "epoch": 0, "best_score": 0.0, "weights": model.state_dict(),
            "preprocess": PREPROCESS.to_dict(),
        }
        torch.save(state, run_dir / "best.pt")
    return runs / "bench"


def time_model(arch: str, batch: int, bf16: bool, channels_last: bool, compiled: bool, seconds: float = 20.0) -> float:
    model = build_model(ModelConfig(arch=arch)).eval()
    x = torch.randn(batch, 1, PREPROCESS.size, PREPROCESS.size)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)
    if compiled:
        import torch._inductor.config as inductor_config

        inductor_config.freezing = True
        model = torch.compile(model)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(3 if compiled else 1):
            model(x)
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            model(x)
            done += batch
    return done / (time.perf_counter() - start)


def child(mode: str, run: str, input_dir: str, files: int, out: str) -> None:
    """Run one prediction in this (fresh) process and print its time and peak memory as JSON."""
    logging.basicConfig(level=logging.WARNING)
    start = time.perf_counter()
    if mode == "naive":
        naive_predict(Path(run), Path(input_dir), files, Path(out))
    else:
        from bengaliai.inference.ensemble import InferenceConfig
        from bengaliai.inference.predict import predict

        folds = "0" if mode == "predict1" else "all"
        config = InferenceConfig(compile=mode == "predict5-compile")
        predict(Path(run), input_dir=Path(input_dir), folds=folds, out=Path(out), config=config, alpha=0,
                workers=os.cpu_count() or 1)
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def naive_predict(run: Path, input_dir: Path, files: int, out: Path) -> None:
    """The public kernels' way: every test file into one DataFrame, then preprocess and predict it all."""
    from bengaliai.data.preprocess import preprocess_batch
    from bengaliai.inference.ensemble import Ensemble, InferenceConfig, load_fold_model

    frames = [pd.read_parquet(input_dir / image_parquet_name("test", f)) for f in range(files)]
    frame = pd.concat(frames, ignore_index=True)
    del frames
    images = frame.iloc[:, 1:].to_numpy(dtype=np.uint8).reshape(-1, 137, 236)
    prepared = preprocess_batch(np.ascontiguousarray(images), PREPROCESS)
    config = InferenceConfig()
    ensemble = Ensemble([load_fold_model(run / "fold0" / "best.pt", torch.device("cpu"))], config, torch.device("cpu"))
    probabilities = ensemble.predict(prepared)
    labels = {k: v.argmax(1) for k, v in probabilities.items()}
    pd.DataFrame({"image_id": frame["image_id"], **labels}).to_csv(out, index=False)


def run_child(mode: str, run: Path, input_dir: Path, files: int, out: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", mode, "--run", str(run), "--input", str(input_dir), "--files", str(files),
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images-per-file", type=int, default=8192)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--arch", default="resnet34")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--skip-model", action="store_true", help="skip the model-alone table")
    parser.add_argument(
        "--runs", default="predict1,predict4,naive4,predict5,predict5-compile",
        help="end-to-end runs to time (default: all of predict1,predict4,naive4,predict5,predict5-compile)",
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--input", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.run, args.input, args.files, args.out)
        return
    logging.basicConfig(level=logging.WARNING)
    print(f"# bench_predict, {dt.date.today()}, {cpu_model()}, {os.cpu_count()} CPUs, torch {torch.__version__}")
    print(f"command: python benchmarks/bench_predict.py {' '.join(sys.argv[1:])}".rstrip())
    chosen = resolve_precision("auto", torch.device("cpu"))
    print(f"precision=auto here: {chosen.name} ({chosen.reason})\n")

    if not args.skip_model:
        print(f"## Model alone: {args.arch}, 128 px, batch {args.batch}, images/s\n")
        print("| fp32 | bf16 + channels_last | torch.compile (freezing) + bf16 + channels_last |\n|---|---|---|")
        rates = [
            time_model(args.arch, args.batch, False, False, False),
            time_model(args.arch, args.batch, True, True, False),
            time_model(args.arch, args.batch, True, True, True),
        ]
        print("| " + " | ".join(f"{r:.0f}" for r in rates) + " |\n", flush=True)
    wanted = set(args.runs.split(","))

    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        input_dir = make_test_set(workdir, args.files, args.images_per_file)
        run = make_run(workdir / "runs", input_dir, args.arch, folds=5)
        one_file = workdir / "one"
        one_file.mkdir()
        for name in (TEST_CSV, image_parquet_name("test", 0)):
            (one_file / name).symlink_to(input_dir / name)
        ids_one = pd.read_csv(input_dir / TEST_CSV)["image_id"].unique()[: args.images_per_file]
        rows = pd.read_csv(input_dir / TEST_CSV)
        write_csv(rows[rows["image_id"].isin(ids_one)], workdir / "one_test.csv")
        (one_file / TEST_CSV).unlink()
        (workdir / "one_test.csv").rename(one_file / TEST_CSV)

        n_all = args.files * args.images_per_file
        plan = {
            "predict1": ("predict, 1 fold, 1 file", "predict1", one_file, 1, args.images_per_file),
            "predict4": (f"predict, 1 fold, {args.files} files", "predict1", input_dir, args.files, n_all),
            "naive4": (f"naive (pd.read_parquet all), 1 fold, {args.files} files", "naive", input_dir, args.files, n_all),
            "predict5": ("predict, 5 folds, 1 file", "predict5", one_file, 1, args.images_per_file),
            "predict5-compile": ("predict --compile, 5 folds, 1 file", "predict5-compile", one_file, 1, args.images_per_file),
        }
        results = {
            name: (run_child(mode, run, folder, files, workdir / f"{key}.csv"), n)
            for key, (name, mode, folder, files, n) in plan.items()
            if key in wanted
        }
    print(f"## predict end to end ({args.images_per_file} images per file, crop 128, precision auto)\n")
    print("| run | images | seconds | images/s | peak RSS MB |\n|---|---|---|---|---|")
    for name, (result, n) in results.items():
        print(f"| {name} | {n} | {result['seconds']:.1f} | {n / result['seconds']:.0f} | {result['max_rss_mb']:.0f} |")
    by_key = {key: results[plan_name] for key, plan_name in _names(args.files).items() if plan_name in results}
    if {"predict1", "predict4"} <= by_key.keys():
        flat = by_key["predict4"][0]["max_rss_mb"] / by_key["predict1"][0]["max_rss_mb"]
        print(f"\npeak memory, {args.files} files / 1 file: {flat:.2f}x")
    if {"predict4", "naive4"} <= by_key.keys():
        ratio = by_key["naive4"][0]["max_rss_mb"] / by_key["predict4"][0]["max_rss_mb"]
        print(f"peak memory, naive / predict on {args.files} files: {ratio:.1f}x")
    for key in ("predict5", "predict5-compile"):
        if key in by_key:
            seconds = TEST_IMAGES / (args.images_per_file / by_key[key][0]["seconds"])
            print(f"projected ({key}): {TEST_IMAGES:,} test images with a 5-fold ensemble: {seconds / 3600:.2f} h")


def _names(files: int) -> dict[str, str]:
    return {
        "predict1": "predict, 1 fold, 1 file", "predict4": f"predict, 1 fold, {files} files",
        "naive4": f"naive (pd.read_parquet all), 1 fold, {files} files", "predict5": "predict, 5 folds, 1 file",
        "predict5-compile": "predict --compile, 5 folds, 1 file",
    }


if __name__ == "__main__":
    main()
