"""Step 1 of benchmarks/gpu_check.py, the environment: the device, versions, precision, threads, carried packages."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import platform
import shutil
from pathlib import Path

import torch

from bengaliai.compute.device import resolve_device
from bengaliai.compute.precision import resolve_precision
from bengaliai.compute.threads import apply_threads

from gpu_steps.runner import Check
from gpu_steps.settings import Result

log = logging.getLogger("gpu_check")


# The libraries whose version decides what the data path does (name shown -> module), beside torch's.
LIBRARIES = {"numpy": "numpy", "pandas": "pandas", "pyarrow": "pyarrow", "OpenCV": "cv2", "albumentations": "albumentations"}


def library_versions() -> dict[str, str]:
    """Each of ``LIBRARIES``' version, 'missing' where it does not import (its import error in the log)."""
    found = {}
    for name, module in LIBRARIES.items():
        try:
            found[name] = str(getattr(importlib.import_module(module), "__version__", "unknown"))
        except Exception as error:  # noqa: BLE001 - a broken install is as absent as a missing one
            log.warning("environment: %s does not import: %s: %s", module, type(error).__name__, error)
            found[name] = "missing"
    return found


def step_environment(check: Check) -> None:
    step = "environment"

    def device() -> Result:
        check.set_device(resolve_device(check.args.device))
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
        libraries = library_versions()
        text = (f"python {platform.python_version()}, torch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {cudnn}, "
                f"{', '.join(f'{name} {version}' for name, version in libraries.items())}, arch list {' '.join(arch) or '-'}")
        raw = {"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": cudnn, "arch_list": arch}
        return "info", text, raw | libraries

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
