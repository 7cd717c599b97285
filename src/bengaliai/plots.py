"""Pictures people would rather look at than read: training curves of a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bengaliai.fileio import atomic_path


def plot_curves(metrics_csv: Path, out_png: Path) -> None:
    """Loss, validation recalls and learning rate per epoch, from a run's ``metrics.csv``."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    metrics = pd.read_csv(metrics_csv)
    fig, (ax_loss, ax_score, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot(metrics["epoch"], metrics["train_loss"], marker="o", label="train")
    ax_loss.plot(metrics["epoch"], metrics["valid_loss"], marker="o", label="valid")
    ax_loss.set(title="loss", xlabel="epoch")
    ax_loss.legend()
    for column, style in (("score", "-"), ("recall_grapheme_root", "--"), ("recall_vowel_diacritic", ":"), ("recall_consonant_diacritic", "-.")):
        ax_score.plot(metrics["epoch"], metrics[column], style, marker="o", label=column.removeprefix("recall_"))
    best = metrics["score"].idxmax()
    ax_score.annotate(f"best {metrics['score'][best]:.4f}", (metrics["epoch"][best], metrics["score"][best]))
    ax_score.set(title="validation (macro recall)", xlabel="epoch")
    ax_score.legend(loc="lower right")
    ax_lr.plot(metrics["epoch"], metrics["lr"], marker="o")
    ax_lr.set(title="learning rate (end of epoch)", xlabel="epoch")
    fig.suptitle(str(Path(metrics_csv).parent))
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=90)
    plt.close(fig)
