"""The data subcommands of ``bengaliai``: download, import, prepare and folds (synth: ``synth_commands``).

Each subcommand's options and the function they run stand together; ``cli.build_parser`` adds them
in pipeline order. Stage modules are imported only when their subcommand runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from bengaliai.cli.options import _non_negative_int, _positive_float, _positive_int, default_workers

if TYPE_CHECKING:
    from bengaliai.cli.options import Subcommands


def _run_download(args: argparse.Namespace) -> None:
    from bengaliai.core.fileio import check_folder
    from bengaliai.kaggle.download import download

    check_folder(args.out)
    download(args.out, force=args.force)


def add_download(sub: Subcommands) -> None:
    """``bengaliai download``: the real competition files."""
    p = sub.add_parser(
        "download",
        help="fetch the real competition files with the Kaggle API",
        description="Download and unzip the bengaliai-cv19 files into DIR with the kaggle package. "
        "Needs Kaggle credentials (KAGGLE_API_TOKEN, ~/.kaggle/access_token, ~/.kaggle/kaggle.json or "
        "KAGGLE_USERNAME and KAGGLE_KEY) and the competition's rules accepted on kaggle.com.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="download again even if the files are there")
    p.set_defaults(handler=_run_download)


def _run_import(args: argparse.Namespace) -> None:
    from bengaliai.compute.threads import available_cpus

    if args.source == "banglalekha":
        from bengaliai.handwriting.banglalekha import BANGLALEKHA as dataset
    else:
        from bengaliai.handwriting.compounds import COMPOUNDS as dataset
    from bengaliai.handwriting.folder_import import import_folders

    if getattr(args, "roots_only", False):
        dataset = dataset.bare_roots()
    workers = args.workers or available_cpus()
    import_folders(
        dataset, args.src, args.out, seed=args.seed, workers=workers, limit_per_class=args.limit_per_class,
        max_bad=args.max_bad, force=args.force,
    )


def _run_import_bhcc(args: argparse.Namespace) -> None:
    from bengaliai.handwriting.bhcc import import_bhcc

    import_bhcc(
        args.src, args.out, signs_out=args.signs_out, seed=args.seed, force=args.force,
        dev_writers=args.dev_writers, dev_out=args.dev_out,
    )


def _add_import_options(p: argparse.ArgumentParser, src_help: str) -> None:
    p.add_argument("--src", type=Path, required=True, help=src_help)
    p.add_argument(
        "--out", type=Path, required=True,
        help="output directory: new, empty, or an earlier import of the same settings, which is replaced (created "
        "if missing; written all at once when every file is complete, so a failed import leaves it as it was)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of sizes, positions and shading (default: 0)")
    p.add_argument(
        "--workers", type=_positive_int, default=None,
        help="worker processes (default: the CPUs this process may use, by affinity and cgroup quota)",
    )
    p.add_argument(
        "--limit-per-class", type=_positive_int, default=None, metavar="N",
        help="at most N images per class, evenly spaced in file-name order (default: all)",
    )
    p.add_argument(
        "--max-bad", type=_non_negative_int, default=100, metavar="N",
        help="skip up to N unreadable or blank images (each logged, all listed in import.json); one more stops "
        "the import, naming them, and nothing is written (default: 100: a broken source stops within seconds, a "
        "good one loses at most 0.3%% of its images)",
    )
    p.add_argument(
        "--force", action="store_true",
        help="replace an earlier import in OUT made with another dataset, source, seed, --limit-per-class or "
        "placement (its cache/ too); files that no import wrote are never replaced",
    )
    p.set_defaults(handler=_run_import)


def add_import(sub: Subcommands) -> None:
    """``bengaliai import SOURCE``: an external handwriting dataset as training files."""
    p = sub.add_parser(
        "import",
        help="turn an external handwriting dataset into competition training files",
        description="Convert a dataset you fetched yourself into the competition's training format.",
    )
    sources = p.add_subparsers(dest="source", required=True, metavar="SOURCE")
    p = sources.add_parser(
        "banglalekha",
        help="BanglaLekha-Isolated: 73 classes of bare grapheme roots, about 145,000 images",
        description="Read SRC/Images/<1..84>/*.png of BanglaLekha-Isolated (Biswas et al. 2017). Fetch it yourself "
        "from Mendeley Data (dataset hf6sf8zrkc, version 2): it states no licence, so this project never ships it. "
        "The 73 class folders that are grapheme roots become graphemes (root, 0, 0); chandrabindu (50) and the "
        "digits (51-60) are left out. Each image is inverted to dark ink on light paper, scaled, thinned, placed, "
        "blurred and shaded like the competition's images. Writes to OUT: train.csv (the competition's columns, "
        "ids BLI_<folder>_<index>), train_image_data_<i>.parquet (at most 50,000 rows each), sources.csv (each "
        "image's source file and writer, i.e. the form serial in its name: group folds by it) and import.json "
        "(counts per class, settings, seed). The same seed gives the same bytes whatever the worker count; "
        "then `bengaliai prepare --input OUT --splits train`.",
    )
    _add_import_options(p, "the BanglaLekha-Isolated folder holding Images/")
    p = sources.add_parser(
        "compounds",
        help="handwritten compound characters: conjunct roots (some with ra-phala), about 30,000 images",
        description="Read SRC/<1..168>/*.jpg, the data/ folder of github.com/ShahrearBinAmin/Bangla-OCR-Dataset "
        "(commit 03b188c9; `git archive` it from a clone): 42x28 px handwritten compound characters, about 200 per "
        "class. The repository states no origin and no licence, so this project never ships its images. The "
        "folders whose grapheme was read with confidence from the images become competition graphemes (a "
        "conjunct root, some with ra-phala); the rest are left out. Images are scaled to the competition's "
        "sizes, placed, blurred and shaded like `import banglalekha`. Writes train.csv (ids CMP_<folder>_<index>), "
        "train_image_data_<i>.parquet, sources.csv and import.json to OUT; then `bengaliai prepare --input OUT "
        "--splits train`. Its rows are bare roots or ra-phala forms; with --roots-only only the bare roots, as "
        "`synth --roots-from` needs them.",
    )
    _add_import_options(p, "the folder holding the class folders 1/ .. 168/")
    p.add_argument(
        "--roots-only", action="store_true",
        help="keep only the folders of bare conjunct roots (no ra-phala forms): the folder `synth --roots-from` "
        "takes, beside BanglaLekha's letters",
    )
    p = sources.add_parser(
        "bhcc",
        help="Bangla Handwriting Character Corpus: scanned table pages, 5 writers per row, about 2,800 graphemes",
        description="Read the five-format page scans of the Bangla Handwriting Character Corpus (SRC holds "
        "'Raw Dataset (Five Format)' and 'Bangla Characters.xlsx'; fetch it yourself, the project never ships it). "
        "Each scanned row is placed in the row list and verified against its printed character and code points; "
        "the five hand cells (writers 1-5) of each verified grapheme row are cut to their ink, scaled, placed, "
        "blurred and shaded like `import banglalekha`. Writes to OUT: train.csv (ids BHCC_<list row>_<writer>), "
        "train_image_data_<i>.parquet, sources.csv (page file, page row, list row, writer, text, how the row was "
        "verified, whether the grapheme is among the training set's 1,295: group folds by writer) and import.json "
        "(rows found, verified, refused, unmapped, sign rows, skipped blank cells, writers). Bare vowel-sign rows "
        "are no graphemes: they go to SIGNS_OUT in the same format with only vowel_diacritic meaningful (root and "
        "consonant 0, grapheme the sign itself), for synth's real signs, never as grapheme training data. "
        "Refused, unplaced and unmapped rows are skipped and counted; then `bengaliai prepare --input OUT --splits "
        "train`. With --dev-writers whole writers are held out of OUT and SIGNS_OUT: their graphemes go to DEV_OUT "
        "as a real-handwriting dev folder (137x236 PNGs and labels.csv, as benchmarks/eval_real_handwriting.py "
        "--real reads it), their signs nowhere.",
    )
    p.add_argument("--src", type=Path, required=True, help="the corpus's root, holding 'Raw Dataset (Five Format)'")
    p.add_argument(
        "--out", type=Path, required=True,
        help="output directory of the graphemes: new, empty, or an earlier import of the same settings, which is "
        "replaced (written all at once when every file is complete)",
    )
    p.add_argument(
        "--signs-out", type=Path, default=None, metavar="DIR",
        help="output directory of the bare vowel-sign rows (no graphemes: only vowel_diacritic is meaningful; "
        "default: <OUT>_signs beside OUT)",
    )
    p.add_argument(
        "--dev-writers", type=int, nargs="+", default=[], metavar="N",
        help="hold these writers out as a second real dev split (never trained on); e.g. --dev-writers 4 5. "
        "Writers are 1-5, at most four held out; their grapheme images go to DEV_OUT, not OUT, and their signs "
        "nowhere (default: none, all five writers in OUT)",
    )
    p.add_argument(
        "--dev-out", type=Path, default=None, metavar="DIR",
        help="output directory of the held-out writers: <image_id>.png (137x236, dark ink on light paper), "
        "labels.csv, sources.csv and import.json, for benchmarks/eval_real_handwriting.py --real (default: "
        "<OUT>_dev beside OUT)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of sizes, positions and shading (default: 0)")
    p.add_argument(
        "--force", action="store_true",
        help="replace earlier imports in OUT, SIGNS_OUT and DEV_OUT made with another dataset, source, seed, "
        "placement or held-out writers (their cache/ too); files that no import wrote are never replaced",
    )
    p.set_defaults(handler=_run_import_bhcc)


def _run_prepare(args: argparse.Namespace) -> None:
    from bengaliai.data.prepare import prepare
    from bengaliai.data.preprocess import PreprocessConfig

    config = PreprocessConfig(mode=args.mode, size=args.size)
    prepare(
        args.input, config, workers=args.workers, splits=tuple(args.splits), max_block_bytes=int(args.block_gb * 2**30),
        cache_root=args.cache_dir,
    )


def add_prepare(sub: Subcommands) -> None:
    """``bengaliai prepare``: the uint8 .npy cache of the parquet images."""
    p = sub.add_parser(
        "prepare",
        help="stream the parquet images into a uint8 .npy cache",
        description="Read each {train,test}_image_data_*.parquet in DIR in bounded memory and write "
        "DIR/cache/<mode><size>/<file>.npy (uint8, ink high, background 0) with <file>.csv holding the "
        "image ids in array order. raw keeps 137x236; resize pads to a square keeping the aspect and "
        "resizes to SIZE; crop cuts the bounding box of the ink (noise thresholded, with a margin), "
        "pads to a square and resizes to SIZE. Inference uses the same function. Files already "
        "prepared from an unchanged parquet are skipped.",
    )
    p.add_argument("--input", type=Path, required=True, help="directory with the competition files")
    p.add_argument("--mode", choices=("raw", "resize", "crop"), default="crop", help="preprocessing (default: crop)")
    p.add_argument("--size", type=_positive_int, default=128, help="output side in pixels for resize/crop (default: 128)")
    p.add_argument("--workers", type=_positive_int, default=default_workers(), help="threads for decoding and resizing")
    p.add_argument(
        "--splits", nargs="+", choices=("train", "test"), default=["train", "test"], help="which image files (default: both)"
    )
    p.add_argument(
        "--block-gb", type=_positive_float, default=1.0,
        help="decoded pixels held at once; a competition file is 1.6 GB, so 2 decodes it in one block: "
        "about 25%% faster, peak memory about 2 GB instead of 1.3 (default: 1)",
    )
    p.add_argument(
        "--cache-dir", type=Path, default=None,
        help="write the caches to CACHE_DIR/<mode><size>/ instead of DIR/cache/ (for a read-only DIR such as "
        "/kaggle/input; train with --set data.cache_dir=CACHE_DIR)",
    )
    p.set_defaults(handler=_run_prepare)


def _run_folds(args: argparse.Namespace) -> None:
    from bengaliai.core.fileio import ensure_writable
    from bengaliai.data.folds import make_folds

    if args.out is not None:
        ensure_writable(args.out)  # a folder or a path below a file: one line now, not a traceback later

    make_folds(
        args.input, n_splits=args.n_splits, seed=args.seed, unseen_graphemes=args.unseen_graphemes,
        out=args.out, force=args.force,
    )


def add_folds(sub: Subcommands) -> None:
    """``bengaliai folds``: the seeded multilabel-stratified K-fold split."""
    p = sub.add_parser(
        "folds",
        help="write the seeded multilabel-stratified K-fold split",
        description="Stratify train.csv over the one-hot labels of all three components into K folds "
        "and write DIR/train_folds.csv (image_id, fold, unseen). With --unseen-graphemes N, N whole "
        "graphemes are held out of every training split and validated in every fold (unseen=True), "
        "imitating the private test set's unseen graphemes. Training reads this file and never "
        "recomputes it; runs record its fingerprint, so an existing folds file with other content is "
        "refused unless --force (an identical one is left as it is).",
    )
    p.add_argument("--input", type=Path, required=True, help="directory with train.csv")
    p.add_argument(
        "--out", type=Path, default=None,
        help="folds file to write (default: INPUT/train_folds.csv); e.g. /kaggle/working/train_folds.csv "
        "when INPUT is read-only (then train with --set folds_file=that path)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing folds file whose content differs")
    p.add_argument("--n-splits", type=_positive_int, default=5, help="number of folds (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--unseen-graphemes", type=_non_negative_int, default=0, help="graphemes held out of all training splits (default: 0)"
    )
    p.set_defaults(handler=_run_folds)
