"""The training loop's progress output: readable in a terminal and in a log file."""

from __future__ import annotations

import pytest
import torch

from bengaliai.compute.distributed import DistInfo
from bengaliai.compute.precision import Precision
from bengaliai.core.competition import COMPONENTS, N_CLASSES
from bengaliai.training.augment import AugmentConfig
from bengaliai.training.engine import LossConfig, StepContext, train_one_epoch
from bengaliai.training.inputs import DataConfig


class _Heads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = torch.nn.ModuleDict({name: torch.nn.Linear(64, N_CLASSES[name]) for name in COMPONENTS})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = x.flatten(1)
        return {name: head(flat) for name, head in self.heads.items()}


def test_a_log_file_gets_a_few_progress_lines_per_epoch_not_one_per_ten_steps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    generator = torch.Generator().manual_seed(0)
    steps = 60
    batches = [
        (
            torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8, generator=generator),
            torch.stack([torch.randint(0, N_CLASSES[name], (4,), generator=generator) for name in COMPONENTS], 1),
            torch.arange(4),
        )
        for _ in range(steps)
    ]
    model = _Heads()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    ctx = StepContext(
        device=torch.device("cpu"), precision=Precision("fp32", "test"), channels_last=False, data=DataConfig(),
        augment=AugmentConfig(cutmix_p=0.0, mixup_p=0.0), loss=LossConfig(), grad_clip=0.0, dist=DistInfo(),
    )
    loss, rate, skipped = train_one_epoch(model, batches, optimizer, scheduler, None, ctx, generator, epoch=0, total=steps)
    assert loss > 0 and rate > 0 and skipped == 0
    err = capsys.readouterr().err  # not a terminal: the bar refreshes at most once a minute
    frames = [frame for frame in err.replace("\r", "\n").split("\n") if frame.strip()]
    assert 1 <= len(frames) <= 3, frames
