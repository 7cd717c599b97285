"""Pictures people would rather look at than read: training curves, per-class recall."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from bengaliai.core.competition import COMPONENTS, LABEL_STRINGS, N_CLASSES
from bengaliai.core.fileio import atomic_path
from bengaliai.core.fonts import font_path

# The grapheme roots shown in the per-class plot: the weakest of 168 (vowels and consonants: all).
WEAKEST_ROOTS = 20


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


def per_class_recall(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Recall and support of every class (recall NaN where a class has no image)."""
    support = np.bincount(y_true, minlength=n_classes)
    hits = np.bincount(y_true[y_true == y_pred], minlength=n_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, hits / np.maximum(support, 1), np.nan), support


def _label_fonts() -> list[str]:
    """Font families for tick labels: the default, then the bundled Bengali font for the glyphs."""
    from matplotlib import font_manager

    # A regular weight: matplotlib warns when a family has no "normal" face.
    path = font_path("tiro-bangla-400.ttf")
    if not path.is_file():
        return [str(font_manager.rcParams["font.family"][0])]
    font_manager.fontManager.addfont(str(path))
    return ["DejaVu Sans", font_manager.FontProperties(fname=str(path)).get_name()]


def plot_per_class_recall(
    probabilities: dict[str, np.ndarray], y_true: dict[str, np.ndarray], out_png: Path, title: str
) -> None:
    """Bars of per-class recall (no prior correction): the weakest grapheme roots, every vowel and consonant."""
    import matplotlib

    matplotlib.use("Agg")  # no display on training machines
    import matplotlib.pyplot as plt

    panels = []
    for name in COMPONENTS:
        recall, support = per_class_recall(y_true[name], probabilities[name].argmax(axis=1), N_CLASSES[name])
        present = np.flatnonzero(support > 0)
        order = present[np.lexsort((-support[present], recall[present]))]
        shown = order[:WEAKEST_ROOTS] if name == "grapheme_root" else order
        panels.append((name, shown, recall, support, len(present)))
    heights = [max(len(shown), 1) for _, shown, *_ in panels]
    with warnings.catch_warnings():
        # Matplotlib does not shape Bengali: a conjunct may show as boxes, which is fine for a label.
        warnings.filterwarnings("ignore", message=r"(?s).*[Gg]lyph.*missing")
        fonts = _label_fonts()
        fig, axes = plt.subplots(3, 1, figsize=(8, 1.5 + 0.26 * sum(heights)),
                                 gridspec_kw={"height_ratios": heights})
        for ax, (name, shown, recall, support, n_present) in zip(axes, panels):
            y = np.arange(len(shown))
            ax.barh(y, recall[shown], color=["tab:red" if r < 0.8 else "tab:blue" for r in recall[shown]])
            # Class 0 of the diacritics is spelled "0" in the competition's tables: no diacritic.
            texts = ["none" if LABEL_STRINGS[name][k] == "0" else LABEL_STRINGS[name][k] for k in shown]
            labels = [f"{k} {text}  (n={support[k]})" for k, text in zip(shown, texts)]
            ax.set_yticks(y, labels, fontfamily=fonts, fontsize=8)
            for yi, k in zip(y, shown):
                ax.text(recall[k] + 0.01, yi, f"{recall[k]:.3f}", va="center", fontsize=7)
            ax.invert_yaxis()
            ax.set_xlim(0, 1.12)
            what = f"{len(shown)} weakest of {n_present}" if len(shown) < n_present else f"all {n_present}"
            ax.set_title(f"{name}: {what} classes", fontsize=10)
        axes[-1].set_xlabel("recall (argmax, no prior correction)")
        fig.suptitle(title)
        fig.tight_layout()
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, dpi=90)
        plt.close(fig)
