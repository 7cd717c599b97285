"""What a training epoch's steps record on the device and read only at check points: the loss sum,
non-finite losses, and the fp16 steps the GradScaler skipped.

A step never waits for the device: each one adds to 0-d tensors on it, and the host reads them every
``CHECK_EVERY`` steps and at the end of the epoch (on every rank at once under torchrun), and when the
progress bar is about to show the loss.

Without a GradScaler (fp32, bf16) a NaN or infinite loss stops training (``NonFiniteLoss``), naming the
batches since the last check. With one (fp16) it does not: an overflow is normal in fp16 training, the
scaler skips that step (inf/nan gradients) and lowers its scale. The skipped steps are counted and
logged, and only a long run of them in a row (``MAX_CONSECUTIVE_SKIPS``: the scale has collapsed, the
model has diverged) stops training (``TooManySkippedSteps``).
"""

from __future__ import annotations

import logging

import torch

from bengaliai.compute.distributed import DistInfo, ranks_with
from bengaliai.core.errors import BengaliaiError

log = logging.getLogger(__name__)

# Steps between checks of the device flags: each check waits for the device, so not every step.
CHECK_EVERY = 50
# fp16 steps skipped in a row that stop a run: the scale halves at each one (65536 reaches 1e-26 after
# 100), so by then no step will ever be finite again. A healthy run skips a handful now and then.
MAX_CONSECUTIVE_SKIPS = 100


class NonFiniteLoss(BengaliaiError):
    """The loss became NaN or infinite; training stops instead of writing garbage weights."""


class TooManySkippedSteps(NonFiniteLoss):
    """fp16 loss scaling skipped ``MAX_CONSECUTIVE_SKIPS`` steps in a row: training diverged."""


class StepWatch:
    """One epoch's device-side record of its steps (``record``), read at check points (``check``, ``totals``).

    ``scaler`` is the epoch's GradScaler (fp16) or None; ``check_every`` steps between checks.
    """

    def __init__(self, device: torch.device, scaler: torch.amp.GradScaler | None, dist: DistInfo,
                 check_every: int = CHECK_EVERY) -> None:
        self.scaler, self.dist, self.check_every = scaler, dist, check_every
        self.loss_sum = torch.zeros((), device=device)
        self.counted = torch.zeros((), device=device)  # images whose loss was finite
        self.non_finite = torch.zeros((), dtype=torch.bool, device=device)
        self.skips = torch.zeros((), dtype=torch.int64, device=device)
        self.run = torch.zeros((), dtype=torch.int64, device=device)  # skipped in a row, up to the last step
        self.longest = torch.zeros((), dtype=torch.int64, device=device)
        self.first_unchecked = 0

    def record(self, loss: torch.Tensor, images: int, skipped: torch.Tensor | None) -> None:
        """Add one step: its loss over ``images`` images and, with a scaler, whether it skipped the step.

        Kernels only, no host read. A non-finite loss counts in no mean: under fp16 its step is skipped.
        """
        loss = loss.detach()
        finite = torch.isfinite(loss)
        if skipped is None:
            self.non_finite |= ~finite
        else:
            self.skips += skipped
            self.run.mul_(skipped).add_(skipped)  # +1 on a skip, back to 0 on a step taken
            torch.maximum(self.longest, self.run, out=self.longest)
        self.loss_sum += torch.where(finite, loss, 0.0) * images
        self.counted += finite * images

    def stepped(self, epoch: int, step: int) -> None:
        """After step ``step`` (0-based): check every ``check_every`` steps."""
        if (step + 1) % self.check_every == 0:
            self.check(epoch, step)

    def check(self, epoch: int, last: int) -> None:
        """Stop every rank with one message if the steps since the last check went wrong (a host read;
        a collective under torchrun, so all ranks stop together)."""
        first, self.first_unchecked = self.first_unchecked, last + 1
        where = f"batch {first}" if first == last else f"batches {first}-{last}"
        if self.scaler is None:
            ranks = ranks_with(self.non_finite, self.dist)
            if ranks:
                raise NonFiniteLoss(f"loss is nan or inf at epoch {epoch}, {where}{self._on(ranks)}; "
                                    "last.pt keeps the last good epoch")
            return
        ranks = ranks_with(self.longest >= MAX_CONSECUTIVE_SKIPS, self.dist)
        if ranks:
            raise TooManySkippedSteps(
                f"fp16 loss scaling skipped {int(self.longest)} steps in a row for inf or nan gradients at epoch {epoch}, "
                f"{where}{self._on(ranks)} (loss scale now {self.scaler.get_scale():g}): training diverged; last.pt keeps "
                "the last good epoch (a lower optim.lr, or precision=bf16 or fp32, may train)"
            )

    def finish(self, epoch: int, last: int) -> tuple[float, float, int]:
        """The epoch's end (``last``: its last step, -1 if none): check the steps not checked yet, log the
        skipped ones, and return this rank's totals (``totals``)."""
        if last >= self.first_unchecked:
            self.check(epoch, last)
        totals = self.totals()
        if self.scaler is not None and totals[2] and self.dist.is_main:
            log.info("epoch %d: fp16 loss scaling skipped %d of %d steps (inf or nan gradients); loss scale now %g",
                     epoch, totals[2], last + 1, self.scaler.get_scale())
        return totals

    def totals(self) -> tuple[float, float, int]:
        """(sum of loss x images, images counted, steps skipped) on this rank, in one host read."""
        loss_sum, counted, skips = torch.stack([self.loss_sum, self.counted, self.skips.float()]).tolist()
        return loss_sum, counted, int(skips)

    def skipped(self) -> int:
        """Steps the scaler skipped so far this epoch (a host read: for logging points only)."""
        return int(self.skips)

    def _on(self, ranks: list[int]) -> str:
        return f" on rank(s) {', '.join(map(str, ranks))}" if self.dist.enabled else ""
