"""``bengaliai leaderboard``: one row per experiment of a runs folder, to compare experiments at a glance.

Everything comes from the run folders themselves (config.yaml, run.json, summary.json or
metrics.csv, best.pt, oof.json), so the table needs no bookkeeping beside training. The
out-of-fold columns come from ``oof.json`` while it is up to date with the folds' ``oof.npz`` and
inputs, and are recomputed in memory otherwise: the leaderboard is a view and writes nothing (only
``bengaliai oof`` writes oof.json, whose alpha predict uses). An experiment that cannot be scored (its
folds no longer match train.csv or the folds file, a file of it is unreadable) keeps its row, with the
out-of-fold columns empty and the last column, ``note``, saying why. Folds trained with different
settings are never summarised as one: their settings cells read ``mixed`` and ``note`` gives each fold's
value (one short word keeps the table aligned where per-fold values would widen a column for one row).
Routing columns (runs with the auxiliary grapheme head): the rule predict applies (``off`` where it
gains nothing out of fold), the out-of-fold score with it, and the shares of seen images the grapheme
head keeps and of unseen images it passes on to the component heads. ``images_per_s`` is the median
training throughput over every epoch of every fold, beside the scores when backbones are compared.
"""

from __future__ import annotations

import io
import json
import logging
import math
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from bengaliai.core.errors import BengaliaiError
from bengaliai.data.folds import n_folds, read_folds
from bengaliai.data.runinfo import (
    CONFIG_YAML,
    MODEL_SETTINGS,
    RUN_JSON,
    SUMMARY_JSON,
    check_ensemble_inputs,
    describe_differences,
    differing_settings,
    fold_files,
    read_run_config,
    run_input,
)
from bengaliai.data.supervision import ALL, per_source
from bengaliai.evaluation.oof import OOF_NPZ, compute_oof
from bengaliai.evaluation.oof_report import OOF_JSON, read_oof_report, report_mismatch
from bengaliai.model.classifier import ModelConfig

log = logging.getLogger(__name__)

COLUMNS: tuple[str, ...] = (
    "experiment", "model", "image", "extra", "epochs", "folds_done", "fold_scores", "oof_score", "recall_root",
    "recall_vowel", "recall_consonant", "best_alpha", "score_with_prior", "routing", "score_routed", "kept_seen",
    "passed_unseen", "train_time", "images_per_s", "date", "git_commit", "note",
)
FLOAT_COLUMNS: tuple[str, ...] = (
    "oof_score", "recall_root", "recall_vowel", "recall_consonant", "best_alpha", "score_with_prior", "score_routed",
    "kept_seen", "passed_unseen",
)
_RIGHT_ALIGNED = frozenset({"epochs", "folds_done", *FLOAT_COLUMNS, "train_time", "images_per_s"})
_RECALL_COLUMNS = {"recall_root": "grapheme_root", "recall_vowel": "vowel_diacritic",
                   "recall_consonant": "consonant_diacritic"}
_COMMIT_CHARS = 10
DEFAULT_WIDTH = ModelConfig.base_width  # every published backbone's: the model column names other widths
MIXED = "mixed"  # a settings cell of an experiment whose folds differ in it


def collect_leaderboard(runs_dir: Path, input_dir: Path | None = None) -> pd.DataFrame:
    """One row per ``runs_dir/<experiment>`` with a ``fold<K>/config.yaml``, best out-of-fold score first.

    ``input_dir`` replaces the runs' ``data.input`` where the out-of-fold score must be recomputed.
    An experiment with an unreadable file keeps its row, with what can be read and a ``note`` naming the file.
    """
    runs_dir = Path(runs_dir)
    candidates = sorted(d for d in runs_dir.iterdir() if d.is_dir()) if runs_dir.is_dir() else []
    experiments = [d for d in candidates if fold_files(d, CONFIG_YAML)]
    if not experiments:
        raise BengaliaiError(
            f"no experiments in {runs_dir}: looked for {runs_dir}/<experiment>/fold<K>/config.yaml; "
            "`bengaliai train` writes runs there (or pass the runs folder it wrote to)"
        )
    frame = pd.DataFrame([experiment_row(d, input_dir) for d in experiments], columns=list(COLUMNS))
    frame[list(FLOAT_COLUMNS)] = frame[list(FLOAT_COLUMNS)].astype(float)
    return frame.sort_values(
        ["oof_score", "experiment"], ascending=[False, True], na_position="last", kind="stable"
    ).reset_index(drop=True)


def experiment_row(experiment_dir: Path, input_dir: Path | None = None) -> dict[str, Any]:
    """The leaderboard row of one experiment folder.

    The columns that describe the folds' settings read ``mixed`` where the folds differ, and ``note`` names
    the settings with each fold's value; folds that differ in runinfo.MODEL_SETTINGS get no out-of-fold
    columns (``bengaliai oof`` refuses them too). ``note`` also says why out-of-fold columns are empty.
    """
    folds = {k: path.parent for k, path in fold_files(experiment_dir, CONFIG_YAML).items()}
    configs, notes = _read_configs(folds)
    config = configs[min(configs)] if configs else {}
    total = _n_folds(config, input_dir) if configs else None
    done = [k for k, d in folds.items() if (d / "best.pt").is_file()]
    progress = {k: _fold_progress(d) for k, d in folds.items()}
    shown = range(max(total or 0, max(folds) + 1))
    scores = [progress[k][0] if k in progress else None for k in shown]
    started = [p for p in progress.values() if p != (None, None)]
    seconds = [p[1] for p in started]
    first_run = _earliest_run(folds.values())
    row: dict[str, Any] = {
        "experiment": experiment_dir.name,
        "model": _same(configs, lambda c: _model(c.get("model", {}))),
        "image": _same(configs, lambda c: c.get("data", {}).get("cache", "")),
        "extra": _same(configs, lambda c: _extra(c.get("data", {}))),
        "epochs": _same(configs, lambda c: c.get("epochs")),
        "folds_done": f"{len(done)}/{total}" if total else str(len(done)),
        "fold_scores": " ".join("-" if s is None else f"{s:.4f}" for s in scores),
        # Blank rather than a partial sum when some fold predates summary.json.
        "train_time": _duration(sum(seconds)) if seconds and None not in seconds else "",
        "images_per_s": _images_per_s(folds.values()),
        "date": str(first_run.get("started", ""))[:10],
        "git_commit": _short_commit(str(first_run.get("git_commit", ""))),
    }
    # Only the folds with an oof.npz are scored: a fold still training in other settings leaves them be.
    scored = {k: c for k, c in configs.items() if k in fold_files(experiment_dir, OOF_NPZ)}
    unscorable = bool(differing_settings(scored))
    if differing := differing_settings(configs, (*MODEL_SETTINGS, "epochs")):
        notes.append(f"folds differ{' (not scored as one)' if unscorable else ''}: {describe_differences(differing)}")
    report, problem = (None, None) if unscorable else _oof_report(experiment_dir, input_dir)
    if report is not None:
        row |= {"oof_score": report["score"], "best_alpha": report["prior"]["alpha"],
                "score_with_prior": report["prior"]["score"]}
        row |= {column: report["recalls"][name] for column, name in _RECALL_COLUMNS.items()}
        row |= _routing_columns(report.get("routing"))
    if problem is not None and problem not in notes:  # an unreadable config.yaml is noted once
        notes.append(f"out-of-fold columns empty: {problem}")
    return row | {"note": ". ".join(notes)}


def _read_configs(folds: dict[int, Path]) -> tuple[dict[int, dict[str, Any]], list[str]]:
    """The config.yaml of each fold that has a readable one, and a note for each that has not."""
    configs, notes = {}, []
    for fold, run_dir in folds.items():
        try:
            configs[fold] = read_run_config(run_dir)
        except BengaliaiError as error:
            log.warning("%s", error)
            notes.append(_one_line(str(error)))
    return configs, notes


def _same(configs: dict[int, dict[str, Any]], setting: Callable[[dict[str, Any]], Any]) -> Any:
    """A setting the folds share, ``mixed`` where they differ (``note`` says how), blank without a config."""
    values = [setting(config) for config in configs.values()]
    if not values:
        return ""
    return values[0] if all(value == values[0] for value in values) else MIXED


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _routing_columns(routing: dict[str, Any] | None) -> dict[str, Any]:
    """The routing rule predict would apply (``off`` where it does not gain) and its out-of-fold figures."""
    if not routing:
        return {}
    rule = "off" if routing.get("threshold") is None else f"{routing['score_name']}>={routing['threshold']:.4g}"
    return {"routing": rule, "score_routed": routing["score"], "kept_seen": routing["kept_seen"],
            "passed_unseen": routing["passed_unseen"]}


def _extra(data: dict[str, Any]) -> str:
    """The extra training sources of a run, by folder name, with their batch shares where set and the
    heads they supervise where not all (``lf:0.3 bli:0.2(root)``)."""
    sources = [Path(str(path)).name for path in data.get("extra") or []]
    shares = list(data.get("extra_share") or [])
    heads = per_source(data.get("extra_heads") or [], len(sources))
    return " ".join(
        (f"{name}:{share:g}" if shares else name) + ("" if head == ALL else f"({head})")
        for name, share, head in zip(sources, shares or sources, heads, strict=False)
    )


def _n_folds(config: dict[str, Any], input_dir: Path | None) -> int | None:
    """Folds of the run's folds file, or None if it cannot be read."""
    _, folds_csv = run_input(config, input_dir)
    try:
        return n_folds(read_folds(folds_csv))
    except BengaliaiError as error:
        log.debug("number of folds unknown: %s", error)
        return None


def _fold_progress(run_dir: Path) -> tuple[float | None, float | None]:
    """Best validation score and training seconds of a fold (seconds None before summary.json existed)."""
    try:
        summary = json.loads((run_dir / SUMMARY_JSON).read_text(encoding="utf-8"))
        return float(summary["best_score"]), float(summary["train_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        metrics = pd.read_csv(run_dir / "metrics.csv")
        return (float(metrics["score"].max()) if len(metrics) else None), None
    except (OSError, ValueError, KeyError, pd.errors.EmptyDataError):
        return None, None


def _model(model: dict[str, Any]) -> str:
    """The architecture, with its width where it is not the published one (``resnet18 w32``)."""
    arch, width = str(model.get("arch", "")), model.get("base_width", DEFAULT_WIDTH)
    return arch if width == DEFAULT_WIDTH else f"{arch} w{width}"


def _images_per_s(run_dirs: Any) -> str:
    """The median training throughput over every epoch of every fold (metrics.csv), blank without one.

    The median, so that an epoch slowed by another job on the machine does not set the figure.
    """
    rates: list[float] = []
    for run_dir in run_dirs:
        try:
            rates += pd.read_csv(run_dir / "metrics.csv", usecols=["images_per_s"])["images_per_s"].dropna().tolist()
        except (OSError, ValueError, pd.errors.EmptyDataError):
            continue
    return f"{statistics.median(rates):,.0f}" if rates else ""


def _earliest_run(run_dirs: Any) -> dict[str, Any]:
    """run.json of the fold that started first (empty if none is readable)."""
    runs = []
    for run_dir in run_dirs:
        try:
            run = json.loads((run_dir / RUN_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(run, dict):
            runs.append(run)
    return min(runs, key=lambda run: str(run.get("started", "~")), default={})


def _short_commit(commit: str) -> str:
    dirty = commit.endswith("-dirty")
    short = commit.removesuffix("-dirty")[:_COMMIT_CHARS]
    return f"{short}-dirty" if dirty else short


def _duration(seconds: float) -> str:
    total = round(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _oof_report(experiment_dir: Path, input_dir: Path | None) -> tuple[dict[str, Any] | None, str | None]:
    """oof.json while it is up to date, else a fresh evaluation in memory; None and why if neither can be had."""
    npz = fold_files(experiment_dir, OOF_NPZ)
    if not npz:
        return None, None
    try:
        report = read_oof_report(experiment_dir)
    except BengaliaiError as error:
        log.warning("%s; recomputed for the table", error)
        report = None
    try:
        if report is not None:
            newest = max(path.stat().st_mtime_ns for path in npz.values())
            # A report from before routing was tuned lacks "routing": recomputed, so routing columns show.
            fresh = (report.get("folds") == sorted(npz) and "routing" in report
                     and (experiment_dir / OOF_JSON).stat().st_mtime_ns >= newest)
            stale = report_mismatch(experiment_dir, report) if fresh else "older than an oof.npz or other folds"
            if stale is None:
                check_ensemble_inputs([path.parent for path in npz.values()], input_dir)
                return report, None
            log.info("%s: %s is out of date (%s): recomputed for the table, not rewritten; "
                     "`bengaliai oof --run %s` updates it", experiment_dir.name, OOF_JSON, stale, experiment_dir)
        return compute_oof(experiment_dir, input_dir).as_json(), None
    except BengaliaiError as error:
        log.warning("%s: out-of-fold columns left empty: %s", experiment_dir.name, error)
        return None, _one_line(str(error))


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_leaderboard(frame: pd.DataFrame, fmt: Literal["table", "markdown", "csv"] = "table") -> str:
    """The leaderboard as aligned text for a terminal, a GitHub markdown table or CSV; floats with 4 decimals."""
    if fmt == "csv":
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False, float_format="%.4f", lineterminator="\n")
        return buffer.getvalue()
    header = [str(column) for column in frame.columns]
    rows = [[_cell(value) for value in record] for record in frame.itertuples(index=False, name=None)]
    right = [column in _RIGHT_ALIGNED for column in header]
    if fmt == "markdown":
        def line(cells: list[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        separator = "|" + "|".join("---:" if r else "---" for r in right) + "|"
        return "\n".join([line(header), separator, *(line(row) for row in rows)]) + "\n"
    if fmt == "table":
        widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]

        def aligned(cells: list[str]) -> str:
            padded = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)]
            return "  ".join(padded).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([aligned(header), rule, *(aligned(row) for row in rows)]) + "\n"
    raise BengaliaiError(f"unknown leaderboard format {fmt!r}; expected table, markdown or csv")
