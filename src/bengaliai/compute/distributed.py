"""Several processes under torchrun: set-up, rank checks, and gathering results to every rank."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job; world_size 1 means a plain single process."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group that torchrun describes in the environment (nccl on GPUs, else gloo)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size == 1:
        return DistInfo()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    info = DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), dist.get_world_size())
    if device_type == "cuda":
        torch.cuda.set_device(info.local_rank)
    return info


def all_gather(value: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``value``, in rank order (just ``[value]`` without torchrun)."""
    if not info.enabled:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def ranks_with(flag: torch.Tensor, info: DistInfo) -> list[int]:
    """The ranks whose boolean ``flag`` (a 0-d tensor on the training device) is set; a collective
    under torchrun, so every rank learns it at once and they stop together instead of waiting
    for a rank that has already left."""
    if not info.enabled:
        return [0] if bool(flag) else []
    flags = torch.zeros(info.world_size, device=flag.device)
    flags[info.rank] = flag.float()
    dist.all_reduce(flags)
    return [rank for rank, value in enumerate(flags.tolist()) if value > 0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
