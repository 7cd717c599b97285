"""The run of benchmarks/gpu_check.py: ``Check`` runs each check within the time budget and keeps what it found."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from bengaliai.compute.threads import ThreadPlan, apply_threads, plan_threads

from gpu_steps.data import make_dataset
from gpu_steps.report import Row, markdown_table, write_json, write_table
from gpu_steps.settings import TITLES, Result, Sizes

log = logging.getLogger("gpu_check")


class Check:
    """The rows and raw numbers of one run, the time budget, and what the steps share."""

    def __init__(self, args: argparse.Namespace, sizes: Sizes, workdir: Path) -> None:
        self.args, self.sizes, self.workdir = args, sizes, workdir
        self.out = Path(args.out)
        self.start = time.perf_counter()
        self.rows: list[Row] = []
        self.raw: dict[str, dict[str, Any]] = {}
        self.device: torch.device | None = None
        # Set with the device (set_device): beside a GPU the loader gets every CPU but one, on a CPU one worker.
        self.plan: ThreadPlan
        self.skipped: list[str] = []
        self._input: Path | None = None
        self._input_error: str | None = None

    def set_device(self, device: torch.device) -> None:
        """The device the checks run on, and the thread plan for it (as train() makes it for that device)."""
        self.device = device
        self.plan = plan_threads(self.sizes.threads, self.sizes.workers, device_type=device.type)

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
                self._input = make_dataset(self.workdir, self.sizes, self.plan.cpus)
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
        write_table(self.out, self.markdown())
        meta = {"command": sys.argv, "elapsed_s": round(time.perf_counter() - self.start, 1),
                "budget_s": self.args.budget_s, "quick": self.args.quick, "sizes": dataclasses.asdict(self.sizes),
                "skipped": self.skipped}
        write_json(self.out, meta, self.rows, self.raw)

    def markdown(self) -> str:
        gpu = self.raw.get("environment", {}).get("device (resolve_device: arch check)", {}).get("name", "no GPU")
        return markdown_table(self.rows, self.skipped, gpu, self.start, self.args.budget_s, self.args.quick)
