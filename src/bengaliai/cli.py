"""The ``bengaliai`` command line: one subcommand per pipeline stage.

download|synth -> prepare -> folds -> train -> oof|leaderboard -> predict -> kernel. Stage
modules are imported only when their subcommand runs, so ``--help`` is instant and nothing
heavy happens at import. Errors the user can fix end as one message on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bengaliai import __version__
from bengaliai.errors import BengaliaiError

if TYPE_CHECKING:  # the stage modules load only when their subcommand runs
    from bengaliai.inference import InferenceConfig

log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], None]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _default_workers() -> int:
    from bengaliai.threads import available_cpus  # affinity and cgroup quota, not the host's count

    return max(1, min(available_cpus(), 8))


def _run_synth(args: argparse.Namespace) -> None:
    from bengaliai.config import load_config
    from bengaliai.render import RenderConfig
    from bengaliai.synth import synthesize

    config = load_config(RenderConfig, args.config, args.set)
    letterforms = None
    if args.roots_from is not None:
        from bengaliai.letterforms import LetterformConfig

        letterforms = LetterformConfig(p=args.letterform_p)
    synthesize(
        args.out, n_train=args.train, n_test=args.test, seed=args.seed, workers=args.workers, config=config,
        roots_from=args.roots_from, letterforms=letterforms, id_prefix=args.id_prefix, graphemes=args.graphemes,
    )


def _run_prepare(args: argparse.Namespace) -> None:
    from bengaliai.prepare import prepare
    from bengaliai.preprocess import PreprocessConfig

    config = PreprocessConfig(mode=args.mode, size=args.size)
    prepare(
        args.input, config, workers=args.workers, splits=tuple(args.splits), max_block_bytes=int(args.block_gb * 2**30),
        cache_root=args.cache_dir,
    )


def _run_folds(args: argparse.Namespace) -> None:
    from bengaliai.folds import make_folds

    make_folds(
        args.input, n_splits=args.n_splits, seed=args.seed, unseen_graphemes=args.unseen_graphemes,
        out=args.out, force=args.force,
    )


def _run_download(args: argparse.Namespace) -> None:
    from bengaliai.download import download

    download(args.out, force=args.force)


def _run_import_banglalekha(args: argparse.Namespace) -> None:
    from bengaliai.banglalekha import import_banglalekha
    from bengaliai.threads import available_cpus

    workers = args.workers or available_cpus()
    import_banglalekha(args.src, args.out, seed=args.seed, workers=workers, limit_per_class=args.limit_per_class)


def _run_train(args: argparse.Namespace) -> None:
    from bengaliai.config import load_config
    from bengaliai.train import TrainConfig, train

    config = load_config(TrainConfig, args.config, args.set)
    scores = train(config, folds=args.fold, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns; one prints
        for fold, score in scores.items():
            print(f"fold {fold}: best validation score {score:.4f}")


def _alpha(text: str) -> float | None:
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 'auto' or a number >= 0, got {text}")
    return value


def _inference_config(args: argparse.Namespace) -> InferenceConfig:
    from bengaliai.inference import InferenceConfig

    return InferenceConfig(
        batch_size=args.batch_size, precision=args.precision, device=args.device, tta=args.tta,
        compile=getattr(args, "compile", False),
    )


def _run_predict(args: argparse.Namespace) -> None:
    from bengaliai.predict import predict

    result = predict(
        args.run, input_dir=args.input, folds=args.folds, out=args.out, config=_inference_config(args),
        alpha=args.alpha, workers=args.workers, block_images=args.block_images, threads=args.threads,
        routing=args.routing,
    )
    print(result.summary())


def _run_kernel(args: argparse.Namespace) -> None:
    from bengaliai.kernel import build_kernel, push_kernel

    build = build_kernel(
        args.run, args.out, folds=args.folds, config=_inference_config(args), alpha=args.alpha,
        user=args.user, gpu=args.gpu, machine_shape=args.machine_shape, routing=args.routing,
    )
    print(build.summary())
    if args.push:
        push_kernel(build)


def _run_oof(args: argparse.Namespace) -> None:
    from bengaliai.oof import evaluate_oof

    print(evaluate_oof(args.run, input_dir=args.input).summary())


def _run_leaderboard(args: argparse.Namespace) -> None:
    from bengaliai.leaderboard import collect_leaderboard, format_leaderboard

    print(format_leaderboard(collect_leaderboard(args.runs), args.format))


def _add_inference_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", type=Path, required=True, help="experiment folder runs/<experiment> (holding fold<K>/best.pt)")
    p.add_argument("--folds", default="all", help="folds to ensemble: 'all' (every trained fold) or a list such as 0,2")
    p.add_argument("--tta", type=_positive_int, default=1, help="test-time views: 1 = none, up to 8 small shifts/scales (default: 1)")
    p.add_argument(
        "--alpha", type=_alpha, default=None, metavar="auto|A",
        help="prior correction p / freq**A; auto = the alpha `bengaliai oof` tuned (none without oof.json); 0 = off",
    )
    p.add_argument(
        "--routing", choices=("auto", "off"), default="auto",
        help="seen/unseen routing: images the auxiliary grapheme head is confident about take that grapheme's "
        "labels; auto = on when the checkpoints have the head and `bengaliai oof` tuned a threshold (default: auto)",
    )
    p.add_argument("--batch-size", type=_positive_int, default=256, help="images per forward pass (default: 256)")
    p.add_argument(
        "--precision", choices=("auto", "bf16", "fp16", "fp32"), default="auto",
        help="auto: bf16 on GPUs of compute capability >= 8.0 and CPUs with native bf16, fp16 on 7.x GPUs "
        "(T4, V100), else fp32 (default: auto)",
    )
    p.add_argument("--device", default="auto", help="cuda, cpu, mps or auto (default: auto)")


def _run_demo(args: argparse.Namespace) -> None:
    from bengaliai.demo import run_demo

    result = run_demo(args.workdir, seed=args.seed, workers=args.workers)
    # The one result the user waits for goes to stdout; everything else is logged to stderr.
    print(result.summary())


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand; each one's help says what it reads and writes."""
    parser = argparse.ArgumentParser(
        prog="bengaliai",
        description="Bengali.AI Handwritten Grapheme Classification pipeline: "
        "download|synth -> prepare -> folds -> train -> oof|leaderboard -> predict -> kernel.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages too")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "synth",
        help="render a stand-in dataset in the exact competition format",
        description="Render Bengali graphemes with several fonts and handwriting-like distortion into "
        "DIR, exactly as Kaggle ships the competition: train.csv, test.csv, class_map.csv, "
        "sample_submission.csv and {train,test}_image_data_{0..3}.parquet (137x236 uint8, dark ink on "
        "light). Train graphemes follow the real training set (1295 graphemes, near uniform; see --graphemes); the "
        "test split also holds graphemes unseen in train. Also writes test_labels.csv (not part of "
        "the competition files) so that predictions on the synthetic test can be scored, and synth.json "
        "(sizes, seed and the resolved render settings). The same seed and settings give the same bytes "
        "whatever the worker count. Render settings (fonts, pen_p, stroke_width, elastic_amplitude, ...: "
        "see bengaliai.render.RenderConfig) come from the defaults, then --config, then each --set, e.g. "
        "--set pen_p=0.8 --set 'stroke_width=[3,6]' --set 'fonts=[galada-400.ttf,/path/to/Other.ttf]'.",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    p.add_argument("--train", type=_non_negative_int, default=20_000, help="training images (default: 20000)")
    p.add_argument("--test", type=_non_negative_int, default=2_000, help="test images (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=_positive_int, default=_default_workers(), help="rendering processes")
    p.add_argument("--config", type=Path, help="YAML file of render settings")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override one render setting (repeatable)"
    )
    p.add_argument(
        "--roots-from", type=Path, metavar="IMPORTED_DIR",
        help="draw graphemes on the handwritten bare roots of this folder (e.g. from `bengaliai import "
        "banglalekha`): the vowel signs and diacritics of a font are redrawn by pen on a real root; graphemes "
        "whose root has no samples stay font-rendered. Prepares IMPORTED_DIR/cache/raw first if needed",
    )
    p.add_argument(
        "--letterform-p", type=float, default=1.0, metavar="P",
        help="with --roots-from: chance a grapheme is drawn on a real root when its root has one (default: 1)",
    )
    p.add_argument(
        "--id-prefix", default="Train", metavar="PREFIX",
        help="train image ids PREFIX_<i> (default: Train); another prefix, e.g. LF, keeps an extra source's "
        "ids apart from a main synthetic set's",
    )
    p.add_argument(
        "--graphemes", choices=("seen", "unseen", "all"), default="seen",
        help="which graphemes the train split shows: seen = the 1295 of the real training set (default); "
        "unseen = graphemes missing from it, valid under its constraints and shaped as one clean cluster in "
        "every font used (about 1900 with the bundled fonts; see bengaliai.unseen), meant as an extra "
        "training source (with --id-prefix); all = half the images each. synth.json records the choice and "
        "the number of distinct graphemes",
    )
    p.set_defaults(handler=_run_synth)

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
    p.add_argument("--workers", type=_positive_int, default=_default_workers(), help="threads for decoding and resizing")
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

    p = sub.add_parser(
        "train",
        help="train one fold or all folds into runs/<experiment>/fold<K>",
        description="Train the multi-head ResNet on the prepared cache (bengaliai prepare) with the folds of "
        "bengaliai folds. Settings: defaults in code, then the YAML of --config, then each --set key=value "
        "(e.g. --set optim.lr=3e-4 --set data.batch_size=128 --set model.arch=resnet18). Each fold writes "
        "runs/<experiment>/fold<K>/: config.yaml, run.json (git commit, versions), metrics.csv, curves.png, "
        "best.pt, last.pt and oof.npz. Several GPUs: torchrun --nproc_per_node=N -m bengaliai train ...",
    )
    p.add_argument("--config", type=Path, default=None, help="experiment YAML (e.g. configs/resnet34.yaml)")
    p.add_argument("--fold", default="0", help="fold number, comma list, or 'all' (default: 0)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override one setting (repeatable)")
    p.add_argument("--resume", action="store_true", help="continue from last.pt of each fold's run folder")
    p.set_defaults(handler=_run_train)

    p = sub.add_parser(
        "oof",
        help="score an experiment out of fold and tune the prior correction",
        description="Gather the out-of-fold probabilities of runs/<experiment>/fold*/oof.npz (each image from its "
        "own fold), score them with the competition metric (overall, per component, seen and unseen graphemes, "
        "per fold), tune the prior-correction alpha and, for runs with the auxiliary grapheme head "
        "(model.aux_graphemes=true) on folds with unseen graphemes, the seen/unseen routing score and threshold, "
        "and write runs/<experiment>/oof.json and per_class_recall.png (the weakest classes). predict and kernel "
        "read the tuned alpha and routing from oof.json.",
    )
    p.add_argument("--run", type=Path, required=True, help="experiment folder runs/<experiment>")
    p.add_argument("--input", type=Path, default=None, help="folder with train.csv and train_folds.csv (default: the run's)")
    p.set_defaults(handler=_run_oof)

    p = sub.add_parser(
        "leaderboard",
        help="compare experiments: one row each, sorted by out-of-fold score",
        description="One row per experiment under RUNS: model, image size, epochs, folds done, per-fold scores, "
        "out-of-fold score with the three recalls, best prior alpha, training time, date and git commit. "
        "Out-of-fold figures come from oof.json while it is up to date, else are computed in memory; "
        "the leaderboard writes nothing (`bengaliai oof` writes oof.json). An experiment whose folds no longer "
        "match train.csv or the folds file shows no out-of-fold figures, with a warning.",
    )
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder of experiments (default: runs)")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table", help="output format (default: table)")
    p.set_defaults(handler=_run_leaderboard)

    p = sub.add_parser(
        "predict",
        help="predict the test set with a fold ensemble and write the submission",
        description="Stream DIR/test_image_data_*.parquet one file and block at a time, prepare the images exactly "
        "like the training cache, average the softmax of the chosen folds' best.pt (and of --tta views), apply "
        "the prior correction, and write row_id,target in the order of test.csv (validated, atomically) plus "
        "the probabilities before correction as <out>.npz for blending. On a synthetic test set (synth's "
        "test_labels.csv present) it also prints the test score.",
    )
    _add_inference_options(p)
    p.add_argument("--input", type=Path, default=None, help="folder with test.csv and the test parquet files (default: the run's input)")
    p.add_argument("--out", type=Path, default=None, help="submission CSV (default: submissions/<experiment>.csv)")
    p.add_argument("--compile", action="store_true", help="torch.compile with frozen weights (faster after a warm-up)")
    p.add_argument("--workers", type=_positive_int, default=_default_workers(), help="preprocessing threads")
    p.add_argument("--block-images", type=_positive_int, default=4096, help="raw images decoded at once (memory: 32 KB each)")
    p.add_argument(
        "--threads", type=_positive_int, default=None,
        help="torch threads (default: the CPUs this process may use, by affinity and cgroup quota; on a machine "
        "shared with other jobs, give it the cores that are free)",
    )
    p.set_defaults(handler=_run_predict)

    p = sub.add_parser(
        "kernel",
        help="build (and push) an internet-off Kaggle kernel for an experiment",
        description="Write OUT/dataset (slim fold checkpoints, inference.json with the ensemble and prior settings, "
        "dataset-metadata.json) and OUT/kernel (inference.py with this package bundled inside, kernel-metadata.json: "
        "competition bengaliai-cv19, internet off). The kernel's submission equals `bengaliai predict` with the same "
        "options. --push uploads the dataset and the kernel with the kaggle package (needs credentials).",
    )
    _add_inference_options(p)
    p.add_argument("--out", type=Path, required=True, help="build folder")
    p.add_argument("--user", default=None, help="Kaggle user name (default: from KAGGLE_USERNAME or ~/.kaggle/kaggle.json)")
    p.add_argument("--gpu", action="store_true", help="run the kernel on a GPU")
    p.add_argument(
        "--machine-shape", default=None, metavar="SHAPE",
        help="Kaggle GPU machine with --gpu (kernel-metadata.json machine_shape; default NvidiaTeslaT4). Shapes the "
        "Kaggle API documents: NvidiaTeslaT4, NvidiaTeslaP100 (kagglesdk kernels_api_service.py; kaggle 2.2.4 passes "
        "the value on unchecked). Avoid P100: the torch of Kaggle's current image has no sm_60 kernels.",
    )
    p.add_argument("--push", action="store_true", help="upload the dataset and push the kernel")
    p.set_defaults(handler=_run_kernel)

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
    p.add_argument("--src", type=Path, required=True, help="the BanglaLekha-Isolated folder holding Images/")
    p.add_argument("--out", type=Path, required=True, help="output directory (created if missing)")
    p.add_argument("--seed", type=int, default=0, help="random seed of sizes, positions and shading (default: 0)")
    p.add_argument(
        "--workers", type=_positive_int, default=None,
        help="worker processes (default: the CPUs this process may use, by affinity and cgroup quota)",
    )
    p.add_argument(
        "--limit-per-class", type=_positive_int, default=None, metavar="N",
        help="at most N images per class, evenly spaced in file-name order (default: all)",
    )
    p.set_defaults(handler=_run_import_banglalekha)

    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on a small synthetic dataset",
        description="synth (6,000 train and 1,200 test images) -> prepare (crop, 64 px) -> folds (5, with 20 "
        "unseen graphemes) -> train (a small ResNet-18, 12 epochs, folds 0 and 1) -> oof (score, prior alpha) -> "
        "predict (2-fold ensemble) -> leaderboard -> kernel build, inside WORKDIR: data in WORKDIR/input, runs in "
        "WORKDIR/runs/demo, the submission in WORKDIR/submissions/demo.csv, the Kaggle kernel in WORKDIR/kernel. "
        "Prints where everything is and the scores (validation, out of fold, and test against the synthetic "
        "labels). Data steps whose outputs already exist are skipped; the demo run is trained afresh each time.",
    )
    p.add_argument("--workdir", type=Path, default=Path("."), help="working directory (default: .)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=_positive_int, default=_default_workers(), help="worker processes/threads")
    p.set_defaults(handler=_run_demo)
    return parser


def configure_logging(verbose: bool) -> None:
    """One format for every module's logger; warnings of noisy libraries stay quiet."""
    # Under torchrun only rank 0 tells the story; the other ranks speak up for warnings and errors.
    quiet_rank = int(os.environ.get("RANK", "0")) > 0
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING if quiet_rank else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
    for noisy in ("PIL", "matplotlib", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; return the process exit code."""
    os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
    args = build_parser().parse_args(argv)
    configure_logging(args.verbose)
    handler: Handler = args.handler
    try:
        handler(args)
    except BengaliaiError as error:
        print(f"bengaliai {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bengaliai {args.command}: interrupted", file=sys.stderr)
        return 130
    return 0
