"""benchmarks/real_writing_table.py: runs by splits of real writing as markdown tables, from real tiny checkpoints."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

from bengaliai.core.competition import LABEL_STRINGS

from real_writing_builders import REAL_LABELS, write_real_folder

SIGNS = LABEL_STRINGS["vowel_diacritic"]
# The second split holds ূ (5), which the first does not, and lacks ে (7) and ো (9).
OTHER_LABELS = ((13, 0, 0), (22, 5, 0), (23, 3, 2))


@pytest.fixture
def table(benchmark: Callable[[str], ModuleType]) -> ModuleType:
    return benchmark("real_writing_table")


def _tables(text: str) -> list[list[list[str]]]:
    """The cells of each markdown table of ``text``, header first, separator line left out."""
    tables: list[list[list[str]]] = []
    previous = ""
    for line in text.splitlines():
        if line.startswith("| "):
            if not previous.startswith("|"):
                tables.append([])
            tables[-1].append([cell.strip() for cell in line.strip().strip("|").split(" | ")])
        previous = line
    return tables


def test_tables_of_two_runs_on_two_splits(table: ModuleType, untrained_runs: tuple[Path, Path], tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    write_real_folder(tmp_path / "dev")
    write_real_folder(tmp_path / "bhcc", OTHER_LABELS, prefix="Bhcc")
    out = tmp_path / "tables.json"
    argv = [arg for run in untrained_runs for arg in ("--run", str(run))]
    argv += ["--real", f"dev={tmp_path / 'dev'}", "--real", f"bhcc={tmp_path / 'bhcc'}", "--json", str(out)]
    with caplog.at_level(logging.INFO, logger="real_writing_table"):
        text = table.main(argv)
    printed = [record.getMessage() for record in caplog.records if record.name == "real_writing_table"]
    assert printed == [*text.splitlines(), f"wrote {out}"]  # through logging, line by line
    scores, signs, dev_confusion, bhcc_confusion = _tables(text)

    assert scores[0] == ["run", "synthetic OOF (seen)", "dev (7): score", "dev: root / vowel / consonant",
                         "bhcc (3): score", "bhcc: root / vowel / consonant"]
    assert [row[:2] for row in scores[1:]] == [["alpha", "0.5000 (0.6000)"], ["beta", "-"]]
    assert all(len(row) == 6 for row in scores)
    assert all(re.fullmatch(r"\d\.\d{4} / \d\.\d{4} / \d\.\d{4}", row[3]) for row in scores[1:])

    # Signs in class order, each split that holds one shown with its images; the counts add up to each split's size.
    columns = [(0, "dev", 2), (0, "bhcc", 1), (3, "dev", 3), (3, "bhcc", 1), (5, "bhcc", 1), (7, "dev", 1),
               (9, "dev", 1)]
    assert signs[0] == ["run"] + [f"{SIGNS[k]} ({split}, {n})" for k, split, n in columns]
    counts = {"dev": 0, "bhcc": 0}
    for header in signs[0][1:]:
        split, n = re.fullmatch(r".+ \((\w+), (\d+)\)", header).groups()
        counts[split] += int(n)
    assert counts == {"dev": len(REAL_LABELS), "bhcc": len(OTHER_LABELS)}
    assert [row[0] for row in signs[1:]] == ["alpha", "beta"] and all(len(row) == 8 for row in signs)

    expected = ((dev_confusion, len(REAL_LABELS), (0, 3, 7, 9)), (bhcc_confusion, len(OTHER_LABELS), (0, 3, 5)))
    for confusion, n, held in expected:
        header, body, last = confusion[0], confusion[1:-1], confusion[-1]
        assert header[0] == "true \\ predicted" and header[-2:] == ["total", "recall"]
        assert [row[0] for row in body] == [SIGNS[k] for k in held]
        assert all(len(row) == len(header) for row in confusion)
        assert last[0] == "all" and int(last[-2]) == 2 * n  # summed over the 2 runs
        assert sum(int(row[-2]) for row in body) == 2 * n
        assert [sum(int(row[i]) for row in body) for i in range(1, len(header) - 2)] == [int(c) for c in last[1:-2]]
        for row in body:
            assert sum(int(c) for c in row[1:-2]) == int(row[-2])
            assert float(row[-1]) == pytest.approx(int(row[header.index(row[0])]) / int(row[-2]), abs=5e-4)

    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["tables"] == text and list(report["runs"]) == ["alpha", "beta"]
    assert report["runs"]["beta"]["oof"] is None
    assert report["runs"]["alpha"]["splits"]["dev"]["n"] == len(REAL_LABELS)


def test_the_tables_depend_only_on_the_checkpoints(table: ModuleType, untrained_runs: tuple[Path, Path],
                                                   tmp_path: Path) -> None:
    write_real_folder(tmp_path / "dev")
    splits = [("dev", tmp_path / "dev")]
    first = table.build_tables(table.score_runs(untrained_runs, splits))
    assert table.build_tables(table.score_runs(untrained_runs, splits)) == first


def test_confusion_recall_and_sign_accuracy_from_known_results(table: ModuleType) -> None:
    def result(by_sign: dict[str, tuple[int, float]], confusion: dict[str, dict[str, int]]) -> dict[str, object]:
        return {"n": 4, "held_score": 0.5, "held_recalls": {"grapheme_root": 0.1, "vowel_diacritic": 0.2,
                                                             "consonant_diacritic": 0.3},
                "vowel_by_sign": {s: {"n": n, "accuracy": a} for s, (n, a) in by_sign.items()},
                "vowel_confusion": confusion}

    a, i = SIGNS[1], SIGNS[2]
    results = {
        "r1": {"oof": {"score": 0.7, "seen": None}, "splits": {"dev": result({a: (3, 1.0), i: (1, 0.0)},
                                                                            {a: {a: 3}, i: {a: 1}})}},
        "r2": {"oof": None, "splits": {"dev": result({a: (3, 2 / 3), i: (1, 1.0)}, {a: {a: 2, i: 1}, i: {i: 1}})}},
    }
    scores, signs, confusion = _tables(table.build_tables(results))
    assert scores[1] == ["r1", "0.7000 (-)", "0.5000", "0.1000 / 0.2000 / 0.3000"]
    assert signs == [["run", f"{a} (dev, 3)", f"{i} (dev, 1)"], ["r1", "1.000", "0.000"], ["r2", "0.667", "1.000"]]
    assert confusion == [["true \\ predicted", a, i, "total", "recall"], [a, "5", "1", "6", "0.833"],
                         [i, "1", "1", "2", "0.500"], ["all", "6", "2", "8", "0.750"]]


@pytest.mark.parametrize("argv, message", [
    (["--run", "runs/a", "--real", "dev"], "expected NAME=DIR"),
    (["--run", "runs/a", "--real", "dev=x", "--real", "dev=y"], "split name(s) given twice: dev"),
    (["--run", "runs/a", "--run", "other/a", "--real", "dev=x"], "run name(s) given twice: a"),
])
def test_option_mistakes_are_refused(table: ModuleType, argv: list[str], message: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        table.parse_args(argv)
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_script_prints_the_tables_on_stdout(untrained_runs: tuple[Path, Path], tmp_path: Path) -> None:
    write_real_folder(tmp_path / "dev")
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "real_writing_table.py"
    command = [sys.executable, str(script), "--run", str(untrained_runs[1]), "--real", f"dev={tmp_path / 'dev'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    scores = _tables(result.stdout)[0]
    assert scores[0][2:] == ["dev (7): score", "dev: root / vowel / consonant"] and scores[1][:2] == ["beta", "-"]
