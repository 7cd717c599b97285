"""Thread planning: CPUs from affinity and cgroup quotas, the worker/thread split, applying a plan."""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import torch

from bengaliai.compute import threads
from bengaliai.compute.threads import (
    ThreadPlan,
    apply_threads,
    auto_workers,
    available_cpus,
    intra_op_threads,
    plan_threads,
    worker_init,
)
from bengaliai.core.errors import BengaliaiError


@pytest.fixture
def affinity(monkeypatch: pytest.MonkeyPatch):
    """Set the number of CPUs os.sched_getaffinity reports."""

    def set_cpus(n: int) -> None:
        monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(n)), raising=False)

    return set_cpus


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def cpus_in(root: Path, cgroup_lines: str = "0::/\n") -> int:
    write(root / "proc_self_cgroup", cgroup_lines)
    return available_cpus(root / "fs", root / "proc_self_cgroup")


def test_affinity_without_cgroup_files(tmp_path: Path, affinity) -> None:
    affinity(3)
    assert cpus_in(tmp_path) == 3


@pytest.mark.parametrize(
    ("affinity_cpus", "cpu_max", "expected"),
    [
        (8, "150000 100000\n", 2),
        (8, "max 100000\n", 8),
        (4, "50000 100000\n", 1),
    ],
    ids=["quota-rounds-up", "no-limit-keeps-affinity", "fraction-of-a-cpu-is-one"],
)
def test_cgroup_v2_quota(tmp_path: Path, affinity, affinity_cpus: int, cpu_max: str, expected: int) -> None:
    affinity(affinity_cpus)
    write(tmp_path / "fs" / "cpu.max", cpu_max)
    assert cpus_in(tmp_path) == expected


def test_cgroup_v2_own_group_and_ancestors(tmp_path: Path, affinity) -> None:
    affinity(8)
    write(tmp_path / "fs" / "kubepods" / "cpu.max", "400000 100000\n")
    write(tmp_path / "fs" / "kubepods" / "pod1" / "cpu.max", "max 100000\n")
    assert cpus_in(tmp_path, "0::/kubepods/pod1\n") == 4


def test_cgroup_v1_quota(tmp_path: Path, affinity) -> None:
    affinity(16)
    group = tmp_path / "fs" / "cpu,cpuacct" / "docker" / "abc"
    write(group / "cpu.cfs_quota_us", "300000\n")
    write(group / "cpu.cfs_period_us", "100000\n")
    assert cpus_in(tmp_path, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n") == 3


def test_cgroup_v1_unlimited_and_root_fallback(tmp_path: Path, affinity) -> None:
    affinity(16)
    write(tmp_path / "fs" / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(tmp_path / "fs" / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert cpus_in(tmp_path, "3:cpu:/not/mounted/here\n") == 16
    write(tmp_path / "fs" / "cpu" / "cpu.cfs_quota_us", "200000\n")
    assert cpus_in(tmp_path, "3:cpu:/not/mounted/here\n") == 2


@pytest.mark.parametrize("text", ["banana", "", "100000", "0 100000", "100000 0", "-5 x"])
def test_garbage_quota_is_ignored(tmp_path: Path, affinity, text: str) -> None:
    affinity(6)
    write(tmp_path / "fs" / "cpu.max", text)
    assert cpus_in(tmp_path, "garbage line\n") == 6


def test_missing_proc_file_and_no_affinity(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert available_cpus(tmp_path / "none", tmp_path / "none") == 1


@pytest.mark.parametrize(
    ("device", "cpus", "ranks", "workers", "intra_op"),
    [
        # On a CPU the model is the bottleneck: one bursty worker, and torch keeps every CPU.
        ("cpu", 1, 1, 0, 1),
        ("cpu", 2, 1, 1, 2),
        ("cpu", 8, 1, 1, 8),
        ("cpu", 8, 4, 1, 2),
        ("cpu", 2, 4, 0, 1),
        # Beside a GPU the loader is: workers get the cores, the main process one.
        ("cuda", 1, 1, 0, 1),
        ("cuda", 2, 1, 1, 1),
        ("cuda", 8, 1, 7, 1),
        ("cuda", 8, 4, 1, 1),
        ("cuda", 64, 1, 16, 48),
    ],
)
def test_auto_split(device: str, cpus: int, ranks: int, workers: int, intra_op: int) -> None:
    assert auto_workers(cpus, ranks, device) == workers
    assert intra_op_threads(cpus, workers, ranks, device) == intra_op
    plan = plan_threads(None, None, ranks, cpus=cpus, device_type=device)
    assert (plan.cpus, plan.workers, plan.intra_op) == (cpus, workers, intra_op)


def test_auto_never_oversubscribes() -> None:
    for device in ("cpu", "cuda"):
        for cpus in range(1, 40):
            for ranks in range(1, 9):
                plan = plan_threads(None, None, ranks, cpus=cpus, device_type=device)
                assert plan.workers >= 0 and plan.intra_op >= 1
                if cpus >= 2 * ranks:
                    assert plan.intra_op * ranks <= cpus
                    if device == "cuda":
                        assert (plan.workers + plan.intra_op) * ranks <= cpus


def test_cpus_busy_with_other_processes_are_left_to_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """Beside a busy neighbour on 2 CPUs: 1 torch thread (2 would stall at every operator); alone: 2."""
    assert intra_op_threads(2, 1, 1, "cpu", busy=1) == 1
    assert intra_op_threads(8, 1, 1, "cpu", busy=3) == 5
    monkeypatch.setattr(threads, "cpu_limits", lambda: threads.CpuLimits(affinity=2, quota=None))
    monkeypatch.setattr(threads, "busy_cpus", lambda: 1)
    plan = plan_threads(None, None)
    assert (plan.workers, plan.intra_op) == (1, 1) and "1 busy with other processes" in plan.reason
    monkeypatch.setattr(threads, "busy_cpus", lambda: 5)  # never below one thread of our own
    assert plan_threads(None, None).intra_op == 1
    monkeypatch.setattr(threads, "busy_cpus", lambda: 0)
    assert plan_threads(None, None).intra_op == 2
    assert plan_threads(1, None).intra_op == 1  # an explicit count is kept, nothing measured


def test_busy_cpus_samples_this_machine() -> None:
    assert 0 <= threads.busy_cpus(0.05) <= (os.cpu_count() or 1)


class FakeProcess:
    """psutil.Process as busy_cpus reads it: the first cpu_percent(None) primes and says 0.0, later ones the use."""

    def __init__(self, percent: float, children: list[FakeProcess] | None = None, gone: bool = False) -> None:
        self.percent, self.kids, self.gone, self.primed = percent, children or [], gone, False

    def children(self, recursive: bool = False) -> list[FakeProcess]:
        assert recursive
        return self.kids

    def cpu_percent(self, interval: float | None = None) -> float:
        if self.gone:
            raise psutil.NoSuchProcess(4242)
        first, self.primed = not self.primed, True
        return 0.0 if first else self.percent


@pytest.mark.parametrize(
    ("allowed", "per_cpu", "own", "expected"),
    [
        ([0, 1, 2, 3], [0.0, 0.0, 0.0, 0.0], [], 0),
        ([0, 1, 2, 3], [100.0, 75.0, 0.0, 0.0], [], 2),  # 1.75 CPUs: the second counts from three quarters
        ([0, 1, 2, 3], [100.0, 74.0, 0.0, 0.0], [], 1),  # 1.74: it does not
        ([0, 1, 2, 3], [40.0, 35.0, 0.0, 0.0], [], 1),  # use is summed, not per CPU: 0.75 in all is one
        ([0, 1, 2, 3], [100.0, 100.0, 100.0, 0.0], [100.0], 2),  # this process's own CPU is not busy
        ([0, 1, 2, 3], [100.0, 100.0, 100.0, 0.0], [100.0, 60.0, 40.0], 1),  # nor its children's
        ([0, 1, 2, 3], [100.0, 0.0, 0.0, 0.0], [100.0, 80.0], 0),  # more than sampled: never below 0
        ([0, 1], [100.0, 80.0, 100.0, 100.0], [], 2),  # CPUs outside the affinity set are not ours to count
        ([2, 3], [100.0, 80.0, 0.0, 90.0], [], 1),
        ([0, 1, 7], [90.0, 90.0], [], 2),  # an allowed CPU psutil does not report is skipped
    ],
)
def test_busy_cpus_arithmetic(
    monkeypatch: pytest.MonkeyPatch, allowed: list[int], per_cpu: list[float], own: list[float], expected: int
) -> None:
    """Sampled use of the allowed CPUs less this process tree's, in CPUs, counted from 0.75 up."""
    me = FakeProcess(own[0] if own else 0.0, [FakeProcess(p) for p in own[1:]] + [FakeProcess(99.0, gone=True)])
    sampled = []

    def cpu_percent(interval: float, percpu: bool) -> list[float]:
        assert percpu and all(p.primed for p in [me, *me.kids] if not p.gone)  # own use over the same interval
        sampled.append(interval)
        return per_cpu

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(allowed), raising=False)
    monkeypatch.setattr(psutil, "Process", lambda: me)
    monkeypatch.setattr(psutil, "cpu_percent", cpu_percent)
    assert threads.busy_cpus(0.125) == expected
    assert sampled == [0.125]


def test_explicit_values_are_kept() -> None:
    assert plan_threads(6, 3, cpus=2) == ThreadPlan(2, 3, 6, plan_threads(6, 3, cpus=2).reason)
    assert plan_threads(None, 0, cpus=4).intra_op == 4
    assert (plan_threads(3, None, cpus=4).workers, plan_threads(3, None, cpus=4).intra_op) == (1, 3)
    assert "(as set)" in plan_threads(6, 3, cpus=2).reason


def test_invalid_values_are_refused() -> None:
    with pytest.raises(BengaliaiError, match="threads"):
        plan_threads(0, None, cpus=2)
    with pytest.raises(BengaliaiError, match="workers"):
        plan_threads(None, -1, cpus=2)


def test_reason_text() -> None:
    assert plan_threads(None, None, cpus=2).reason == "2 CPUs available (given): 1 loader worker, 2 torch threads"


def test_apply_threads_sets_torch_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    before = torch.get_num_threads()
    target = 1 if before != 1 else 2
    try:
        with caplog.at_level(logging.INFO, logger=threads.__name__):
            apply_threads(plan_threads(target, 0, cpus=2))
        assert torch.get_num_threads() == target
        assert f"{target} torch thread" in caplog.text
    finally:
        torch.set_num_threads(before)


def test_worker_init_is_picklable_and_sets_one_thread() -> None:
    assert pickle.loads(pickle.dumps(worker_init)) is worker_init
    code = (
        "import cv2, torch; from bengaliai.compute.threads import worker_init; torch.set_num_threads(2); worker_init(0); "
        "print(torch.get_num_threads(), cv2.getNumThreads())"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["1", "1"]
