"""GPU check: every GPU code path of the pipeline tried once, and the GPU numbers measured, in one command.

    PYTHONPATH=src python benchmarks/gpu_check.py --out gpu_check.md [--device cuda] [--quick]
        [--budget-s 450] [--steps precision,resume,throughput,predict,compile]

Written before any GPU was lent to the project, to run the first time one is: ``benchmarks/gpu_check.sh``
is the command for the device machine (it installs the carried wheels first). Each check runs in
its own try/except, so one failure does not hide the others; a step whose time estimate no longer
fits in ``--budget-s`` is skipped and listed. Results go to ``--out`` (one markdown table, rewritten
after every check, so a run stopped at its time limit still leaves what it measured), to the same
name with ``.json`` (raw numbers and tracebacks) and to stdout. Steps:

1. environment: GPU, compute capability, torch / CUDA / cuDNN, arch list, the precision ``auto``
   resolves to, the thread plan, whether the carried packages import.
2. precision: resnet34 training steps at 128 px, batch 256 (``engine.train_one_epoch`` on batches
   already on the device) in bf16 and in fp16 with a GradScaler: loss and weights finite, the scale.
3. resume: a tiny model trained 2 epochs without a break, against the same run crashed in epoch 2
   (an exception from inside the loader) and resumed by ``bengaliai train --resume`` in a fresh
   process; max abs difference of the final weights, beside that of two uninterrupted runs (CUDA
   kernels need not be deterministic). Two variants: precision auto with augmentation in the loader
   and EMA, fp16 + GradScaler with augmentation on the device.
4. throughput: images/s of the step alone (batches on the device) and of the whole loop over the real
   loader on a prepared cache, with ``augment.where=loader`` (albumentations in all workers) and
   ``augment.where=device``; the loop / model ratio (targets: >= 90%, >= 15,000 img/s on H100/H200).
5. predict: ``bengaliai.inference.predict.predict`` end to end with 1 and 5 folds (copies of one random
   checkpoint) on one test file and on all of them; the difference leaves out the fixed costs, and
   gives the projection to 200,000 test images (target for 5 folds: <= 3 minutes).
6. compile: ``torch.compile`` time of the resnet34 step, the compiled step and loop (and whether
   dynamo compiled again on the way), and ``train(compile=True)`` for a few batches (also runs the
   EMA of a compiled model).
7. targets (on a GPU only): the best loop, the 5-fold projection and the resume against the targets.

Every row carries the peak GPU memory of its check (``torch.cuda.max_memory_allocated``). The data is
the pattern dataset of tests/conftest.py (drawn shapes, no fonts: the device's Pillow may lack
raqm); ``--quick`` shrinks every size so the whole check runs on a CPU in a minute or two (the test).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import faulthandler
import gc
import inspect
import itertools
import json
import logging
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the pattern dataset of the tests

from conftest import pattern_image, write_pattern_dataset  # noqa: E402

from bengaliai.compute.device import resolve_device  # noqa: E402
from bengaliai.compute.distributed import DistInfo  # noqa: E402
from bengaliai.compute.precision import grad_scaler, resolve_precision  # noqa: E402
from bengaliai.compute.threads import ThreadPlan, apply_threads, plan_threads  # noqa: E402
from bengaliai.core.competition import COMPONENTS, N_CLASSES, TEST_CSV, TRAIN_CSV, image_parquet_name  # noqa: E402
from bengaliai.core.config import load_config, to_dict  # noqa: E402
from bengaliai.core.fileio import write_csv  # noqa: E402
from bengaliai.data.folds import make_folds  # noqa: E402
from bengaliai.data.labels import make_test_rows, read_train_labels  # noqa: E402
from bengaliai.data.parquet_images import write_image_parquet  # noqa: E402
from bengaliai.data.prepare import prepare  # noqa: E402
from bengaliai.data.preprocess import PreprocessConfig  # noqa: E402
from bengaliai.data.runinfo import write_run_description  # noqa: E402
from bengaliai.inference.ensemble import InferenceConfig  # noqa: E402
from bengaliai.inference.predict import predict  # noqa: E402
from bengaliai.model.checkpoint import load_checkpoint  # noqa: E402
from bengaliai.model.resnet import ModelConfig, build_model  # noqa: E402
from bengaliai.training import engine  # noqa: E402
from bengaliai.training import train as train_module  # noqa: E402
from bengaliai.training.augment import AugmentConfig, build_transform  # noqa: E402
from bengaliai.training.augment_device import DeviceAugment  # noqa: E402
from bengaliai.training.engine import LossConfig, StepContext  # noqa: E402
from bengaliai.training.loader import (  # noqa: E402
    AugmentedBatches,
    DataConfig,
    EpochBatches,
    align_labels,
    make_loader,
    open_cache,
)
from bengaliai.training.optim import OptimConfig, build_optimizer, build_scheduler  # noqa: E402
from bengaliai.training.train import TrainConfig, train  # noqa: E402

log = logging.getLogger("gpu_check")
# What a check returns: its status (ok, FAIL, info, below target), the text for the table, the raw numbers.
Result = tuple[str, str, dict[str, Any]]

STEPS = ("precision", "resume", "throughput", "predict", "compile")
TITLES = {"environment": "1 environment", "precision": "2 precision", "resume": "3 resume",
          "throughput": "4 throughput", "predict": "5 predict", "compile": "6 compile", "targets": "7 targets"}
TEST_IMAGES = 200_000
TARGET_LOOP_RATE, TARGET_RATIO, TARGET_PREDICT_S = 15_000, 0.90, 180.0
# The augmentation of configs/resnet34.yaml.
LOOP_AUGMENT = AugmentConfig(affine_p=0.8, distort_p=0.2, dropout_p=0.5, cutmix_p=0.5)


@dataclass(frozen=True)
class Sizes:
    """How big each check is; ``estimate_s``: seconds a step takes on an H100/H200 (for the budget)."""

    arch: str = "resnet34"
    width: int = 64
    size: int = 128
    batch: int = 256
    warmup: int = 10
    steps: int = 40  # timed steps of the model alone
    loop_steps: int = 200  # timed steps of the whole loop (a longer run: the loader starts cold)
    n_train: int = 4096
    n_folds: int = 5
    resume_size: int = 64
    resume_batch: int = 128
    resume_workers: int = 2
    threads: int | None = None  # torch threads; None: bengaliai.compute.threads decides
    workers: int | None = None  # loader workers; None: bengaliai.compute.threads decides (CPUs - 1)
    test_unique: int = 1024
    test_files: int = 4
    test_per_file: int = 4096
    compile_batches: int = 20
    estimate_s: dict[str, float] = field(default_factory=lambda: {
        "precision": 45, "resume": 90, "throughput": 60, "predict": 50, "compile": 150})


QUICK = Sizes(
    arch="resnet10", width=8, size=32, batch=16, warmup=1, steps=3, loop_steps=4, n_train=240, n_folds=3,
    resume_size=32, resume_batch=16, resume_workers=0, threads=1, workers=1, test_unique=16, test_files=2,
    test_per_file=32, compile_batches=2,
    estimate_s={"precision": 5, "resume": 40, "throughput": 10, "predict": 10, "compile": 10},
)


@dataclass
class Row:
    step: str
    check: str
    status: str  # ok, FAIL, skipped, below target, info
    result: str
    peak_mib: float | None = None


class Check:
    """The rows and raw numbers of one run, the time budget, and what the steps share."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, workdir: Path) -> None:
        self.args, self.sizes, self.workdir = args, sizes, workdir
        self.out = Path(args.out)
        self.start = time.perf_counter()
        self.rows: list[Row] = []
        self.raw: dict[str, dict[str, Any]] = {}
        self.device: torch.device | None = None
        self.plan: ThreadPlan = plan_threads(sizes.threads, sizes.workers)
        self.skipped: list[str] = []
        self._input: Path | None = None
        self._input_error: str | None = None

    @property
    def cuda(self) -> bool:
        return self.device is not None and self.device.type == "cuda"

    def left(self) -> float:
        return self.args.budget_s - (time.perf_counter() - self.start)

    def add(self, step: str, check: str, status: str, result: str, peak: float | None = None, **raw: Any) -> None:
        row = Row(TITLES[step], check, status, result, peak)
        self.rows.append(row)
        self.raw.setdefault(step, {})[check] = {"status": status, "result": result, "peak_mib": peak, **raw}
        print(f"[{time.perf_counter() - self.start:6.1f} s] {row.step} | {check} | {status} | {result}", flush=True)
        self.write()

    def skip(self, step: str, check: str, why: str) -> None:
        self.skipped.append(f"{TITLES[step]}: {check} ({why})")
        self.add(step, check, "skipped", why)

    def attempt(self, step: str, check: str, fn: Callable[[], Result], needs_s: float = 0.0) -> dict[str, Any] | None:
        """Run one check: ``fn`` returns (status, result, raw numbers); an exception becomes a FAIL row."""
        if self.left() < needs_s:
            self.skip(step, check, f"budget: {max(self.left(), 0):.0f} s left, needs about {needs_s:.0f} s")
            return None
        if self.cuda:
            try:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats(self.device)
            except Exception:  # noqa: BLE001 - a broken CUDA context: the check itself will say so
                log.exception("could not reset the peak memory")
        start = time.perf_counter()
        try:
            status, result, raw = fn()
        except Exception as error:  # noqa: BLE001 - the point is to report and go on
            first = (str(error).strip().splitlines() or [""])[0][:300]
            self.add(step, check, "FAIL", f"{type(error).__name__}: {first}", self.peak(),
                     seconds=time.perf_counter() - start, error=traceback.format_exc())
            return None
        raw = {"seconds": round(time.perf_counter() - start, 3), **raw}
        self.add(step, check, status, result, self.peak(), **raw)
        return raw

    def guard(self, step: str, function: Callable[[Check], None]) -> None:
        """Run a whole step; an error outside its checks (its set-up) becomes one FAIL row."""
        apply_threads(self.plan)  # train() and predict() size the pools for themselves: start each step alike
        try:
            function(self)
        except Exception as error:  # noqa: BLE001
            first = (str(error).strip().splitlines() or [""])[0][:300]
            self.add(step, "set-up", "FAIL", f"{type(error).__name__}: {first}", self.peak(),
                     error=traceback.format_exc())

    def peak(self) -> float | None:
        try:
            return torch.cuda.max_memory_allocated(self.device) / 2**20 if self.cuda else None
        except Exception:  # noqa: BLE001
            return None

    def dataset(self) -> Path:
        """The pattern training set, prepared at both crop sizes, with folds (made once, on first use)."""
        if self._input_error is not None:
            raise RuntimeError(f"the dataset could not be made earlier: {self._input_error}")
        if self._input is None:
            try:
                start, s = time.perf_counter(), self.sizes
                input_dir = self.workdir / "input"
                write_pattern_dataset(input_dir, s.n_train, n_files=2)
                for size in sorted({s.size, s.resume_size}):
                    config = PreprocessConfig(mode="crop", size=size)
                    prepare(input_dir, config, workers=self.plan.cpus, splits=("train",))
                make_folds(input_dir, n_splits=s.n_folds, seed=0)
                log.info("dataset: %d pattern images prepared in %.1f s", s.n_train, time.perf_counter() - start)
                self._input = input_dir
            except Exception as error:
                self._input_error = f"{type(error).__name__}: {error}"
                raise
        return self._input

    def write(self) -> None:
        try:
            self._write()
        except Exception:  # noqa: BLE001 - a report that cannot be written must not stop the checks
            log.exception("could not write %s", self.out)

    def _write(self) -> None:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(self.markdown(), encoding="utf-8")
        meta = {"command": sys.argv, "elapsed_s": round(time.perf_counter() - self.start, 1),
                "budget_s": self.args.budget_s, "quick": self.args.quick, "sizes": dataclasses.asdict(self.sizes),
                "skipped": self.skipped}
        payload = {"meta": meta, "rows": [dataclasses.asdict(r) for r in self.rows], "raw": self.raw}
        self.out.with_suffix(".json").write_text(json.dumps(payload, indent=1, default=str), encoding="utf-8")

    def markdown(self) -> str:
        gpu = self.raw.get("environment", {}).get("device (resolve_device: arch check)", {}).get("name", "no GPU")
        lines = [
            f"# GPU check, {dt.datetime.now().strftime('%Y-%m-%d %H:%M')}",
            "",
            f"{gpu} · {platform.node()} · {os.cpu_count()} cores · torch {torch.__version__} · "
            f"{time.perf_counter() - self.start:.0f} s of a {self.args.budget_s:.0f} s budget"
            f"{' · --quick sizes' if self.args.quick else ''}",
            f"command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
            "",
            "| step | check | status | result | peak GPU MiB |",
            "|---|---|---|---|---|",
        ]
        for r in self.rows:
            peak = f"{r.peak_mib:,.0f}" if r.peak_mib is not None else "-"
            lines.append(f"| {r.step} | {r.check} | {r.status} | {r.result.replace('|', '/')} | {peak} |")
        if self.skipped:
            lines += ["", "Skipped: " + "; ".join(self.skipped) + "."]
        return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- shared pieces


def step_context(check: Check, precision_name: str, augment: AugmentConfig) -> StepContext:
    """What train() gives the loop: channels_last, a GradScaler for fp16, device augmentation if asked for."""
    precision = resolve_precision(precision_name, check.device)
    device_augment = DeviceAugment(augment) if augment.where == "device" else None
    return StepContext(
        check.device, precision, True, DataConfig(), augment, LossConfig(), OptimConfig().grad_clip, DistInfo(),
        scaler=grad_scaler(precision, check.device), device_augment=device_augment,
    )


def new_model(check: Check) -> tuple[torch.nn.Module, torch.optim.Optimizer, Any]:
    torch.manual_seed(0)
    s = check.sizes
    model = build_model(ModelConfig(arch=s.arch, base_width=s.width)).to(check.device)
    model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, OptimConfig())
    return model, optimizer, build_scheduler(optimizer, OptimConfig(), 1000, 1)


def device_batches(check: Check, n: int = 4) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """uint8 batches with sparse ink and random labels, already on the device (no loader in the way)."""
    s, generator = check.sizes, torch.Generator().manual_seed(0)
    batches = []
    for _ in range(n):
        images = (torch.rand(s.batch, 1, s.size, s.size, generator=generator) > 0.85).to(torch.uint8).mul_(255)
        labels = torch.stack([torch.randint(N_CLASSES[c], (s.batch,), generator=generator) for c in COMPONENTS], 1)
        batches.append((images.to(check.device), labels.to(check.device), torch.arange(s.batch)))
    return batches


def run_epoch(
    model: torch.nn.Module, batches: Iterable[Any], optimizer: Any, scheduler: Any, ctx: StepContext, epoch: int, total: int
) -> tuple[float, float]:
    """engine.train_one_epoch as training calls it: (mean loss, images/s, measured after a device sync)."""
    mix_generator = torch.Generator().manual_seed(epoch)
    return engine.train_one_epoch(model, batches, optimizer, scheduler, None, ctx, mix_generator, epoch, total)


def cycled(batches: list[Any], n: int) -> list[Any]:
    return [batches[i % len(batches)] for i in range(n)]


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

    def crashing(*args: Any, **kwargs: Any) -> tuple[float, float]:
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


def train_loader(check: Check, where: str) -> tuple[torch.utils.data.DataLoader, EpochBatches, AugmentConfig]:
    """The training loader on the prepared cache, its indices repeated to cover warm-up + timed steps."""
    s, input_dir = check.sizes, check.dataset()
    store = open_cache(input_dir, f"crop{s.size}", "train")
    labels = align_labels(store, read_train_labels(input_dir / TRAIN_CSV), input_dir / TRAIN_CSV)
    augment = dataclasses.replace(LOOP_AUGMENT, where=where)
    indices = np.resize(np.arange(len(store)), (s.warmup + s.loop_steps) * s.batch)
    sampler = EpochBatches(indices, s.batch, seed=0)
    dataset = AugmentedBatches(store, labels, build_transform(augment), seed=0)
    return make_loader(dataset, sampler, check.plan.workers, pin_memory=check.cuda), sampler, augment


# ---------------------------------------------------------------- 1 environment


def step_environment(check: Check) -> None:
    step = "environment"

    def device() -> Result:
        check.device = resolve_device(check.args.device)
        if not check.cuda:
            text = f"{check.device} (skipped: no CUDA; CUDA available: {torch.cuda.is_available()})"
            return "info", text, {"device": str(check.device)}
        torch.backends.cudnn.benchmark = True  # as train() sets it
        p = torch.cuda.get_device_properties(check.device)
        cap = torch.cuda.get_device_capability(check.device)
        text = (f"{p.name}, compute capability {cap[0]}.{cap[1]}, {p.total_memory / 2**30:.0f} GiB, "
                f"{p.multi_processor_count} SMs")
        return "ok", text, {"name": p.name, "capability": list(cap), "memory_gib": p.total_memory / 2**30}

    check.attempt(step, "device (resolve_device: arch check)", device)
    if check.device is None:
        return

    def versions() -> Result:
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        arch = torch.cuda.get_arch_list() if check.cuda else []
        text = (f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, "
                f"numpy {np.__version__}, arch list {' '.join(arch) or '-'}")
        return "info", text, {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn, "arch_list": arch}

    def precision() -> Result:
        p = resolve_precision("auto", check.device)
        expected = "bf16" if check.cuda and torch.cuda.get_device_capability(check.device)[0] >= 8 else p.name
        return ("ok" if p.name == expected else "FAIL"), f"{p.name} ({p.reason})", p.to_dict()

    def threads() -> Result:
        apply_threads(check.plan)
        # Loader workers hand batches over through /dev/shm: a small one (a container's 64 MB) breaks them.
        shm = shutil.disk_usage("/dev/shm").free / 2**30 if Path("/dev/shm").is_dir() else None
        text = f"{check.plan.reason}; /dev/shm free: {f'{shm:.1f} GiB' if shm is not None else 'none'}"
        return "info", text, dataclasses.asdict(check.plan) | {"dev_shm_free_gib": shm}

    def packages() -> Result:
        import albumentations
        import iterstrat
        from PIL import __version__ as pillow
        from PIL import features

        raqm = features.check("raqm")
        text = (f"albumentations {albumentations.__version__}, iterstrat {getattr(iterstrat, '__version__', 'ok')}, "
                f"Pillow {pillow} raqm {'yes' if raqm else 'no (synth cannot shape Bengali here)'}")
        return "ok", text, {"albumentations": albumentations.__version__, "pillow": pillow, "raqm": bool(raqm)}

    check.attempt(step, "versions", versions)
    check.attempt(step, "precision auto", precision)
    check.attempt(step, "thread plan", threads)
    check.attempt(step, "carried packages import", packages)


# ---------------------------------------------------------------- 2 precision


def step_precision(check: Check) -> None:
    s = check.sizes
    batches = device_batches(check)

    def steps(name: str) -> Result:
        model, optimizer, scheduler = new_model(check)
        ctx = step_context(check, name, LOOP_AUGMENT)  # the step alone: CutMix, no per-image augmentation
        run_epoch(model, cycled(batches, s.warmup), optimizer, scheduler, ctx, 0, s.warmup)
        loss, rate = run_epoch(model, cycled(batches, s.steps), optimizer, scheduler, ctx, 1, s.steps)
        finite = all(bool(torch.isfinite(p).all()) for p in model.parameters())
        scale = ctx.scaler.get_scale() if ctx.scaler is not None else None
        ok = math.isfinite(loss) and finite and (scale is None or 0 < scale < math.inf)
        text = (f"{ctx.precision.name}: mean loss {loss:.3f} over {s.steps} steps, weights finite: {finite}, "
                f"{rate:,.0f} img/s")
        if scale is not None:
            text += f", GradScaler scale {scale:g} after {s.warmup + s.steps} steps (starts at 65536)"
        raw = {"loss": loss, "images_per_s": rate, "weights_finite": finite, "scale": scale}
        return ("ok" if ok else "FAIL"), text, raw

    for name, label in (("bf16", "bf16"), ("fp16", "fp16 + GradScaler")):
        check.attempt("precision", f"{s.arch} {s.size}px batch {s.batch}, {label}", lambda name=name: steps(name))


# ---------------------------------------------------------------- 3 resume


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


# ---------------------------------------------------------------- 4 throughput (and the compiled loops of 6)


def model_only(check: Check, model: torch.nn.Module, optimizer: Any, scheduler: Any) -> Result:
    s = check.sizes
    ctx = step_context(check, "auto", LOOP_AUGMENT)
    batches = device_batches(check)
    run_epoch(model, cycled(batches, s.warmup), optimizer, scheduler, ctx, 0, s.warmup)
    _, rate = run_epoch(model, cycled(batches, s.steps), optimizer, scheduler, ctx, 1, s.steps)
    text = f"{rate:,.0f} img/s ({ctx.precision.name}, channels_last, CutMix, batches already on the device)"
    return "ok", text, {"images_per_s": rate}


def whole_loop(
    check: Check, where: str, model: torch.nn.Module, optimizer: Any, scheduler: Any, reference: float | None
) -> Result:
    s = check.sizes
    loader, sampler, augment = train_loader(check, where)
    ctx = step_context(check, "auto", augment)
    try:
        sampler.set_epoch(0)
        run_epoch(model, itertools.islice(loader, s.warmup), optimizer, scheduler, ctx, 0, s.warmup)
        sampler.set_epoch(1)
        _, rate = run_epoch(model, itertools.islice(loader, s.loop_steps), optimizer, scheduler, ctx, 1, s.loop_steps)
    finally:
        del loader
        gc.collect()
    raw: dict[str, Any] = {"images_per_s": rate, "workers": check.plan.workers}
    text = f"{rate:,.0f} img/s, loader workers: {check.plan.workers}"
    status = "ok"
    if reference:
        raw["ratio"] = rate / reference
        text += f", {rate / reference:.0%} of the model alone"
        if check.cuda and (rate < TARGET_LOOP_RATE or rate / reference < TARGET_RATIO):
            status = "below target"
    return status, text, raw


def loader_alone(check: Check) -> Result:
    s = check.sizes
    loader, sampler, _ = train_loader(check, "loader")
    try:
        sampler.set_epoch(0)
        for _ in itertools.islice(loader, s.warmup):
            pass
        sampler.set_epoch(1)
        start, seen = time.perf_counter(), 0
        for images, _, _ in itertools.islice(loader, s.loop_steps):
            seen += len(images)
        rate = seen / (time.perf_counter() - start)
    finally:
        del loader
        gc.collect()
    text = f"{rate:,.0f} img/s, loader workers: {check.plan.workers}, pinned: {check.cuda}"
    return "info", text, {"images_per_s": rate}


def step_throughput(check: Check) -> None:
    s, step = check.sizes, "throughput"
    name = f"{s.arch} {s.size}px batch {s.batch}"
    model, optimizer, scheduler = new_model(check)
    eager = check.attempt(step, f"model only, eager: {name}", lambda: model_only(check, model, optimizer, scheduler))
    reference = eager["images_per_s"] if eager else None
    check.attempt(step, "loader alone (albumentations in the workers)", lambda: loader_alone(check))
    for where in ("loader", "device"):
        check.attempt(step, f"whole loop, eager, augment.where={where}",
                      lambda where=where: whole_loop(check, where, model, optimizer, scheduler, reference))
    check.raw[step]["model_only_images_per_s"] = reference


# ---------------------------------------------------------------- 5 predict


def make_test_sets(check: Check) -> dict[str, Path]:
    """Competition-format test sets of ``test_unique`` pattern images tiled into files of ``test_per_file``:
    ``one`` holds the first file, ``all`` every one of the ``test_files``."""
    s, rng = check.sizes, np.random.default_rng(1)
    roots, vowels, consonants = (13, 22, 23, 38, 53, 64), (0, 1, 2), (0, 2)
    drawn = [pattern_image(roots[i % 6], vowels[i % 3], consonants[i % 2], rng) for i in range(s.test_unique)]
    unique = np.stack(drawn)
    sets = {"one": check.workdir / "test_one", "all": check.workdir / "test_all"}
    ids: list[str] = []
    for f in range(s.test_files):
        file_ids = [f"Test_{f * s.test_per_file + i}" for i in range(s.test_per_file)]
        name = image_parquet_name("test", f)
        write_image_parquet(sets["all"] / name, file_ids, unique[np.arange(s.test_per_file) % len(unique)])
        ids += file_ids
        if f == 0:
            write_csv(make_test_rows(ids), sets["one"] / TEST_CSV)
            shutil.copy(sets["all"] / name, sets["one"] / name)
    write_csv(make_test_rows(ids), sets["all"] / TEST_CSV)
    return sets


def make_run(check: Check, folds: int = 5) -> Path:
    """``runs/predict/fold0..4/best.pt``: copies of one random checkpoint, in the format training writes."""
    s = check.sizes
    config = to_dict(TrainConfig(experiment="predict", model=ModelConfig(arch=s.arch, base_width=s.width)))
    config["data"] |= {"input": str(check.dataset()), "cache": f"crop{s.size}"}
    torch.manual_seed(0)
    weights = build_model(ModelConfig(arch=s.arch, base_width=s.width)).state_dict()
    experiment = check.workdir / "runs" / "predict"
    for fold in range(folds):
        run_dir = experiment / f"fold{fold}"
        write_run_description(run_dir, config)
        torch.save({"config": config, "fold": fold, "epoch": 0, "best_score": 0.0, "weights": weights,
                    "preprocess": PreprocessConfig(mode="crop", size=s.size).to_dict()}, run_dir / "best.pt")
    return experiment


def step_predict(check: Check) -> None:
    """predict end to end on one test file and on all; the difference gives the rate without the fixed
    costs (loading the folds, opening files), from which a 200,000-image run is projected."""
    step, s, made = "predict", check.sizes, {}

    def setup() -> Result:
        made["tests"], made["run"] = make_test_sets(check), make_run(check)
        text = f"test sets of {s.test_per_file} and {s.test_files * s.test_per_file} images, 5 folds of one random {s.arch}"
        return "info", text, {}

    def once(folds: str, which: str, small: dict[str, Any] | None = None) -> Result:
        config = InferenceConfig(device=check.device.type)
        try:
            result = predict(made["run"], input_dir=made["tests"][which], folds=folds, out=check.workdir / "submission.csv",
                             config=config, alpha=0, workers=check.plan.cpus, threads=s.threads)
        finally:
            apply_threads(check.plan)  # predict sized the pools for itself
        n, seconds = result.n_images, result.seconds
        raw: dict[str, Any] = {"images": n, "seconds": seconds, "images_per_s": n / seconds}
        text = f"{n} images in {seconds:.1f} s = {n / seconds:,.0f} img/s end to end (batch {config.batch_size})"
        if small is None:
            return "ok", text, raw
        extra_s = seconds - small["seconds"]
        marginal = (n - small["images"]) / extra_s if extra_s > 0 else n / seconds
        projected = seconds + (TEST_IMAGES - n) / marginal
        raw |= {"marginal_images_per_s": marginal, "projected_200k_s": projected}
        text += f"; without fixed costs {marginal:,.0f} img/s; 200,000 images: {projected / 60:.1f} min"
        below = check.cuda and len(result.folds) == 5 and projected > TARGET_PREDICT_S
        if len(result.folds) == 5:
            text += f" (target <= {TARGET_PREDICT_S / 60:.0f})"
        return ("below target" if below else "ok"), text, raw

    if check.attempt(step, "set-up: test sets and run folder", setup) is None:
        return
    check.attempt(step, "warm-up: 1 fold, 1 file", lambda: once("0", "one"))
    for label, folds in (("1 fold", "0"), ("5 folds", "all")):
        small = check.attempt(step, f"{label}, 1 file", lambda folds=folds: once(folds, "one"))
        if small is not None:
            check.attempt(step, f"{label}, {s.test_files} files",
                          lambda folds=folds, small=small: once(folds, "all", small))


# ---------------------------------------------------------------- 6 compile


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
        batches = device_batches(check, 2)
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


# ---------------------------------------------------------------- main


def summary(check: Check) -> None:
    """The verdicts against the targets, as the last rows (on a GPU only: the targets are for one)."""
    if not check.cuda:
        return
    loops = {k: v for step in ("throughput", "compile") for k, v in check.raw.get(step, {}).items()
             if k.startswith("whole loop") and "images_per_s" in v}
    if loops:
        best = max(loops, key=lambda k: loops[k]["images_per_s"])
        rate, ratio = loops[best]["images_per_s"], loops[best].get("ratio") or 0.0
        met = rate >= TARGET_LOOP_RATE and ratio >= TARGET_RATIO
        check.add("targets", f"training loop >= {TARGET_LOOP_RATE:,} img/s and >= {TARGET_RATIO:.0%} of the model alone",
                  "met" if met else "missed", f"best: {best} ({TITLES['compile' if 'compiled' in best else 'throughput']}), "
                  f"{rate:,.0f} img/s, {ratio:.0%}")
    five = [v for k, v in check.raw.get("predict", {}).items() if k.startswith("5 folds") and "projected_200k_s" in v]
    if five:
        projected = five[0]["projected_200k_s"]
        check.add("targets", f"predict 200,000 images with 5 folds <= {TARGET_PREDICT_S / 60:.0f} min",
                  "met" if projected <= TARGET_PREDICT_S else "missed", f"{projected / 60:.1f} min")
    resumed = list(check.raw.get("resume", {}).values())
    if resumed:
        ok = all(v["status"] == "ok" for v in resumed)
        diffs = ", ".join(f"{v['max_abs_diff']:.1e}" for v in resumed if "max_abs_diff" in v)
        done = sum(v["status"] == "ok" for v in resumed)
        check.add("targets", "kill and resume on CUDA", "met" if ok else "missed",
                  f"{done} of {len(resumed)} variants resumed; max abs weight diff {diffs or '-'}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: the whole check on a CPU in a minute or two")
    parser.add_argument("--out", type=Path, default=Path("gpu_check.md"),
                        help="markdown table; raw numbers go beside it as .json")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="skip steps that no longer fit (default 450, --quick 170)")
    parser.add_argument("--steps", default=",".join(STEPS),
                        help=f"comma list of {', '.join(STEPS)} (environment always runs)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the data and runs go (default: a temporary folder, removed)")
    args = parser.parse_args(argv)
    if args.budget_s is None:
        args.budget_s = 170.0 if args.quick else 450.0
    wanted = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(wanted) - set(STEPS))
    if unknown:
        parser.error(f"--steps: unknown {', '.join(unknown)}; known: {', '.join(STEPS)}")
    args.steps = wanted
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S", force=True)
    for noisy in ("PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    sizes = QUICK if args.quick else Sizes()
    workdir = Path(tempfile.mkdtemp(prefix="gpu_check_")) if args.workdir is None else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    check = Check(args, sizes, workdir)
    # A hang (a stuck loader, a compile that never ends) prints every thread's stack before the
    # device tool's time limit kills the run; the table is already written up to the hanging check.
    faulthandler.dump_traceback_later(args.budget_s + 45, exit=False)
    functions = {"precision": step_precision, "resume": step_resume, "throughput": step_throughput,
                 "predict": step_predict, "compile": step_compile}
    try:
        step_environment(check)
        for step in STEPS:
            if step not in args.steps:
                check.skip(step, "all", "not in --steps")
            elif check.device is None:
                check.skip(step, "all", "no device")
            elif check.left() < sizes.estimate_s[step]:
                needs = sizes.estimate_s[step]
                check.skip(step, "all", f"budget: {max(check.left(), 0):.0f} s left, needs about {needs:.0f} s")
            else:
                check.guard(step, functions[step])
        summary(check)
    finally:
        faulthandler.cancel_dump_traceback_later()
        check.write()
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    print("\n" + check.markdown(), flush=True)
    return 1 if any(r.status == "FAIL" for r in check.rows) else 0


if __name__ == "__main__":
    sys.exit(main())
