"""Thread pools sized to the CPUs this process may really use: torch, OpenCV and loader workers.

torch and OpenCV size their pools from the host's core count, which ignores a CPU quota (a
container, a Kaggle kernel) and every other busy process. torch's OpenMP threads wait for each
other at the end of every operator, so one thread that shares its core with another busy process
stalls them all: on 2 cores beside one busy process, a ResNet-18 step ran at 3 img/s with
2 threads against 110 img/s with 1 (issue 10). This module counts the usable CPUs (affinity and
cgroup quota), splits them between loader workers and the training process, applies the plan
once, and gives every loader worker a single thread of each kind.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path

from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
# More workers per rank than this only add memory and start-up time: at 64-137 px one worker
# augments thousands of images per second.
MAX_WORKERS_PER_RANK = 16


@dataclass(frozen=True)
class CpuLimits:
    """What bounds this process: its affinity mask and a cgroup quota (None when unlimited)."""

    affinity: int
    quota: int | None

    @property
    def cpus(self) -> int:
        return max(1, min(self.affinity, self.quota) if self.quota is not None else self.affinity)


@dataclass(frozen=True)
class ThreadPlan:
    """How many loader workers and torch threads one training or inference process uses, and why."""

    cpus: int
    workers: int
    intra_op: int
    reason: str


def cpu_limits(cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> CpuLimits:
    """The affinity mask size and the cgroup CPU quota (rounded up to whole CPUs) of this process."""
    try:
        affinity = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        affinity = os.cpu_count() or 1
    return CpuLimits(max(1, affinity), _cgroup_quota(cgroup_root, proc_self_cgroup))


def available_cpus(cgroup_root: Path = CGROUP_ROOT, proc_self_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """CPUs this process may use: its affinity mask, further limited by a cgroup quota; at least 1."""
    return cpu_limits(cgroup_root, proc_self_cgroup).cpus


def auto_workers(cpus: int, local_ranks: int = 1, device_type: str = "cpu") -> int:
    """Loader workers per rank: all of the rank's CPUs but one beside an accelerator, one on a CPU.

    Beside a GPU the loader is the bottleneck and the main process only launches kernels, so every
    CPU but the main process's one augments (at most 16 per rank). On a CPU the model is the
    bottleneck: one worker augments faster than any CPU trains (thousands of images per second
    against hundreds), and the rest of the CPUs go to torch. 1 CPU gives 0 workers: the main
    process loads, as a worker would only take turns with it on the same core.
    """
    per_rank = max(cpus // max(local_ranks, 1), 1)
    if device_type == "cpu":
        return min(per_rank - 1, 1)
    return min(per_rank - 1, MAX_WORKERS_PER_RANK)


def intra_op_threads(cpus: int, workers: int, local_ranks: int = 1, device_type: str = "cpu", busy: int = 0) -> int:
    """torch threads for a rank's main process: its share of the CPUs that are free now, at least 1.

    Never more threads than free CPUs: an OpenMP thread that has to share its core with another busy
    process stalls the whole team at every operator, which costs far more than the core it would
    add (2 threads beside one busy process: 3 img/s against 110 with 1). ``busy`` CPUs are taken by
    other processes. Beside a GPU the workers need their cores; on a CPU they augment in short bursts
    (one worker keeps up with any CPU model at a fraction of a core), so torch keeps every free CPU.
    """
    per_rank = max((cpus - busy) // max(local_ranks, 1), 1)
    return per_rank if device_type == "cpu" else max(per_rank - workers, 1)


def busy_cpus(sample_s: float = 0.3) -> int:
    """Whole CPUs of this process's affinity set kept busy by other processes right now.

    A short sample of each CPU's use (psutil), minus what this process and its children used
    meanwhile; a CPU counts from three quarters busy (a spinning neighbour is a whole one, a
    finishing child process or a kernel thread is not).
    """
    import psutil

    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = list(range(os.cpu_count() or 1))
    me = psutil.Process()
    ours = [me, *me.children(recursive=True)]
    for process in ours:
        with contextlib.suppress(psutil.Error):
            process.cpu_percent(None)
    per_cpu = psutil.cpu_percent(interval=sample_s, percpu=True)
    own = 0.0
    for process in ours:
        with contextlib.suppress(psutil.Error):
            own += process.cpu_percent(None)
    used = (sum(per_cpu[i] for i in allowed if i < len(per_cpu)) - own) / 100.0
    return max(int(used + 0.25), 0)


def plan_threads(
    threads: int | None,
    workers: int | None,
    local_ranks: int = 1,
    cpus: int | None = None,
    device_type: str = "cpu",
) -> ThreadPlan:
    """Size the pools of one process; None means auto, explicit values are kept as given.

    ``cpus`` defaults to ``available_cpus()``; ``local_ranks`` is the number of processes of the
    job on this machine (torchrun's LOCAL_WORLD_SIZE), which share its CPUs; ``device_type`` is
    where the model runs (``torch.device.type``), which decides who needs the CPUs.
    """
    if threads is not None and threads < 1:
        raise BengaliaiError(f"threads: expected at least 1 or auto, got {threads}")
    if workers is not None and workers < 0:
        raise BengaliaiError(f"workers: expected at least 0 or auto, got {workers}")
    busy = 0
    if cpus is None:
        limits = cpu_limits()
        cpus, source = limits.cpus, f"affinity {limits.affinity}, cgroup quota {limits.quota or 'none'}"
        if threads is None:
            # CPUs other jobs keep busy (never more than leave this process one) are not ours to use.
            busy = min(busy_cpus(), max(limits.affinity - 1, 0), cpus - 1)
            source += f", {busy} busy with other processes" if busy else ""
    else:
        source = "given"
    n_workers = auto_workers(cpus, local_ranks, device_type) if workers is None else workers
    n_threads = intra_op_threads(cpus, n_workers, local_ranks, device_type, busy) if threads is None else threads
    ranks = f", {local_ranks} local ranks" if local_ranks > 1 else ""
    reason = (
        f"{cpus} CPU{'s' if cpus != 1 else ''} available ({source}{ranks}): "
        f"{n_workers} loader worker{'s' if n_workers != 1 else ''}{'' if workers is None else ' (as set)'}, "
        f"{n_threads} torch thread{'s' if n_threads != 1 else ''}{'' if threads is None else ' (as set)'}"
    )
    return ThreadPlan(cpus, n_workers, n_threads, reason)


def apply_threads(plan: ThreadPlan) -> None:
    """Size torch's and OpenCV's pools in this process to the plan, and log it once.

    OpenCV gets one thread when workers load the data (loader processes, or inference's
    preprocessing threads, which run beside the model: a wider pool would take torch's cores),
    and torch's count when the main process loads between model steps. torch's inter-op pool can
    only be sized before its first parallel work; later calls leave it as it is.
    """
    import cv2
    import torch

    torch.set_num_threads(plan.intra_op)
    cv2.setNumThreads(1 if plan.workers > 0 else plan.intra_op)
    try:
        torch.set_num_interop_threads(plan.intra_op)
    except RuntimeError:
        log.debug("threads: torch's inter-op pool already started; left at %d", torch.get_num_interop_threads())
    log.info("threads: %s", plan.reason)


def worker_init(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: one torch and one OpenCV thread per loader worker.

    Workers inherit the parent's pool sizes; several workers with several threads each would
    fight the training process for the same cores.
    """
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def _cgroup_quota(cgroup_root: Path, proc_self_cgroup: Path) -> int | None:
    """The tightest CPU quota over this process's cgroup and its ancestors, in whole CPUs."""
    quotas = [q for d in _cgroup_dirs(cgroup_root, proc_self_cgroup) if (q := _read_quota(d)) is not None]
    return min(quotas) if quotas else None


def _cgroup_dirs(cgroup_root: Path, proc_self_cgroup: Path) -> list[Path]:
    """Every directory that may hold this process's CPU limits: its own cgroup up to the root.

    Inside a container /proc/self/cgroup often names a host path that is not mounted there; then
    the root (the container's own cgroup) is what is left, so it is always included.
    """
    paths: list[tuple[Path, str]] = []  # (mount point, cgroup path)
    try:
        lines = proc_self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            paths.append((cgroup_root, path))
        elif "cpu" in controllers.split(","):
            paths += [(cgroup_root / mount, path) for mount in ("cpu", "cpu,cpuacct", "cpuacct,cpu")]
    mounts = [cgroup_root, cgroup_root / "cpu", cgroup_root / "cpu,cpuacct", cgroup_root / "cpuacct,cpu"]
    dirs: list[Path] = []
    for mount, path in paths:
        relative = Path(path.strip().lstrip("/"))
        for up in (relative, *relative.parents):
            if str(up) != ".":
                dirs.append(mount / up)
    return [d for d in dict.fromkeys([*dirs, *mounts]) if d.is_dir()]


def _read_quota(directory: Path) -> int | None:
    """A quota in whole CPUs (rounded up) from cgroup v2 ``cpu.max`` or v1 ``cpu.cfs_*``; None if none or unreadable."""
    try:
        if (directory / "cpu.max").is_file():
            quota, period = (directory / "cpu.max").read_text().split()
        elif (directory / "cpu.cfs_quota_us").is_file():
            quota = (directory / "cpu.cfs_quota_us").read_text().strip()
            period = (directory / "cpu.cfs_period_us").read_text().strip()
        else:
            return None
        if quota == "max" or int(quota) < 0:  # v2 "max", v1 -1: no limit
            return None
        quota_us, period_us = int(quota), int(period)
    except (OSError, ValueError):
        log.debug("threads: unreadable CPU quota in %s, ignored", directory)
        return None
    if quota_us <= 0 or period_us <= 0:
        return None
    return max(1, math.ceil(quota_us / period_us))
