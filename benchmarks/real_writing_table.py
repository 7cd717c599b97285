"""Several runs scored on several splits of labelled real handwriting, as markdown tables for a report.

    python benchmarks/real_writing_table.py --run runs/A --run runs/B \
        --real dev=../shared/data/real_handwriting_dev --real bhcc=DIR [--alpha 0] [--tta 1] [--json OUT]

Each run's fold ensemble (every trained fold) is loaded once and scored on every split with
``eval_real_handwriting.evaluate_folders``. Three tables are printed:

1. one row per run: its synthetic out-of-fold score (``oof.json``: ``score``, and ``seen.score`` in
   brackets; ``-`` without one), then per split the score over the classes the split holds and the
   root / vowel / consonant recalls over those classes;
2. vowel accuracy per sign, one column per sign and split (image counts in the header);
3. per split, the vowel confusion counts summed over all runs: rows true sign, columns predicted
   sign, with each row's total and recall, and a last row over all signs.

Rows follow the order of ``--run``, splits the order of ``--real``, signs the class order: the
tables depend only on the checkpoints and the images.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval_real_handwriting import VOWEL_SIGNS, evaluate_folders

from bengaliai.core.competition import COMPONENTS
from bengaliai.inference.checkpoints import fold_checkpoints, training_input
from bengaliai.inference.prior import resolve_prior

log = logging.getLogger("real_writing_table")

SHORT = {name: name.removeprefix("grapheme_").removesuffix("_diacritic") for name in COMPONENTS}
MISSING = "-"


def parse_split(text: str) -> tuple[str, Path]:
    """``NAME=DIR`` of ``--real``."""
    name, sep, folder = text.partition("=")
    if not sep or not name or not folder:
        raise argparse.ArgumentTypeError(f"expected NAME=DIR, got {text!r}")
    return name, Path(folder)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, action="append", required=True, help="runs/<exp> (repeat for several)")
    parser.add_argument("--real", type=parse_split, action="append", required=True,
                        help="NAME=DIR: a folder of PNGs and labels.csv, shown as NAME (repeat for several)")
    parser.add_argument("--alpha", default="0", help="prior correction: a number, or auto for each oof.json's")
    parser.add_argument("--tta", type=int, default=1, help="test-time views (default: 1 = none)")
    parser.add_argument("--json", type=Path, default=None, help="write every figure and the tables here")
    args = parser.parse_args(argv)
    for what, names in (("run", [run.name for run in args.run]), ("split", [name for name, _ in args.real])):
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            parser.error(f"{what} name(s) given twice: {', '.join(repeated)}")
    return args


def read_oof(run: Path) -> dict[str, float | None] | None:
    """``score`` and ``seen.score`` of a run's ``oof.json``; None without the file."""
    path = Path(run) / "oof.json"
    if not path.is_file():
        return None
    report = json.loads(path.read_text(encoding="utf-8"))
    seen = report.get("seen") or {}
    return {"score": report.get("score"), "seen": seen.get("score")}


def score_runs(runs: Sequence[Path], splits: Sequence[tuple[str, Path]], tta: int = 1,
               alpha: float | None = 0.0) -> dict[str, dict[str, Any]]:
    """Per run name: its checkpoints, prior alpha, out-of-fold scores and each split's figures (evaluate)."""
    results = {}
    for run in runs:
        checkpoints = fold_checkpoints(run, "all")
        prior = resolve_prior(run, alpha, Path(training_input(checkpoints[0])), checkpoints)
        scored = evaluate_folders(checkpoints, [folder for _, folder in splits], tta, prior)
        results[Path(run).name] = {
            "run": str(run), "checkpoints": [str(p) for p in checkpoints], "alpha": prior.alpha,
            "oof": read_oof(run), "splits": {name: result for (name, _), result in zip(splits, scored, strict=True)},
        }
    return results


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _number(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _oof_cell(oof: dict[str, float | None] | None) -> str:
    return MISSING if oof is None else f"{_number(oof['score'])} ({_number(oof['seen'])})"


def _split_sizes(results: dict[str, dict[str, Any]]) -> dict[str, int]:
    first = next(iter(results.values()))
    return {name: result["n"] for name, result in first["splits"].items()}


def score_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Table 1: synthetic out-of-fold score, then per split the score and recalls over the classes held."""
    header = ["run", "synthetic OOF (seen)"]
    for name, n in _split_sizes(results).items():
        header += [f"{name} ({n}): score", f"{name}: " + " / ".join(SHORT.values())]
    rows = []
    for run, entry in results.items():
        row = [run, _oof_cell(entry["oof"])]
        for result in entry["splits"].values():
            recalls = " / ".join(f"{result['held_recalls'][name]:.4f}" for name in COMPONENTS)
            row += [f"{result['held_score']:.4f}", recalls]
        rows.append(row)
    return markdown(header, rows)


def sign_columns(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, int]]:
    """(sign, split, images) for each vowel sign of the union over the splits (class order), split by split."""
    first = next(iter(results.values()))["splits"]
    signs = sorted({sign for result in first.values() for sign in result["vowel_by_sign"]}, key=VOWEL_SIGNS.index)
    return [(sign, split, result["vowel_by_sign"][sign]["n"])
            for sign in signs for split, result in first.items() if sign in result["vowel_by_sign"]]


def sign_table(results: dict[str, dict[str, Any]]) -> list[str]:
    """Table 2: vowel accuracy per sign, one row per run, one column per sign and split."""
    columns = sign_columns(results)
    header = ["run"] + [f"{sign} ({split}, {n})" for sign, split, n in columns]
    rows = [[run] + [f"{entry['splits'][split]['vowel_by_sign'][sign]['accuracy']:.3f}" for sign, split, _ in columns]
            for run, entry in results.items()]
    return markdown(header, rows)


def summed_confusion(results: dict[str, dict[str, Any]], split: str) -> dict[str, dict[str, int]]:
    """A split's vowel confusion counts (true sign -> predicted sign) summed over the runs, in class order."""
    total: dict[str, dict[str, int]] = {}
    for entry in results.values():
        for true, predicted in entry["splits"][split]["vowel_confusion"].items():
            row = total.setdefault(true, {})
            for sign, count in predicted.items():
                row[sign] = row.get(sign, 0) + count
    return {true: total[true] for true in sorted(total, key=VOWEL_SIGNS.index)}


def confusion_table(results: dict[str, dict[str, Any]], split: str) -> list[str]:
    """Table 3 for one split: true sign by predicted sign, row total and recall, and a row over all signs."""
    counts = summed_confusion(results, split)
    signs = sorted({s for row in counts.values() for s in row} | set(counts), key=VOWEL_SIGNS.index)
    rows = []
    for true, row in counts.items():
        n = sum(row.values())
        rows.append([true] + [str(row.get(s, 0)) for s in signs] + [str(n), f"{row.get(true, 0) / n:.3f}"])
    column_sums = [sum(row.get(s, 0) for row in counts.values()) for s in signs]
    n_all = sum(column_sums)
    right = sum(row.get(true, 0) for true, row in counts.items())
    rows.append(["all"] + [str(c) for c in column_sums] + [str(n_all), f"{right / n_all:.3f}"])
    return markdown(["true \\ predicted", *signs, "total", "recall"], rows)


def build_tables(results: dict[str, dict[str, Any]]) -> str:
    """The three tables as one markdown text."""
    runs = len(results)
    parts = [
        "### Real handwriting: score over the classes held (recalls root / vowel / consonant)", "",
        *score_table(results), "",
        "### Vowel accuracy per sign (sign (split, images))", "",
        *sign_table(results),
    ]
    for split in _split_sizes(results):
        parts += ["", f"### Vowel confusion on {split}, summed over {runs} run(s)", ""]
        parts += confusion_table(results, split)
    return "\n".join(parts) + "\n"


def main(argv: Sequence[str] | None = None) -> str:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    alpha = None if args.alpha == "auto" else float(args.alpha)
    results = score_runs(args.run, args.real, args.tta, alpha)
    tables = build_tables(results)
    for line in tables.splitlines():
        log.info("%s", line)
    if args.json:
        report = {"tta": args.tta, "alpha": args.alpha, "splits": {name: str(folder) for name, folder in args.real},
                  "runs": results, "tables": tables}
        args.json.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        log.info("wrote %s", args.json)
    return tables


if __name__ == "__main__":
    main()
