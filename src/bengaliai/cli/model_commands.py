"""The model subcommands of ``bengaliai``: train, oof, leaderboard, predict, kernel and demo.

Each subcommand's options and the function they run stand together; ``cli.build_parser`` adds them
in pipeline order. Stage modules are imported only when their subcommand runs. Each result the user
waits for (scores, a summary) is printed to stdout; everything else is logged to stderr. The options
of ``kernel --train`` (the training kernel) and the ``pull`` subcommand are in ``kaggle_commands``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from bengaliai.cli.kaggle_commands import add_train_kernel_options, check_kernel_options, run_train_kernel
from bengaliai.cli.options import _positive_int, default_workers

if TYPE_CHECKING:  # the stage modules load only when their subcommand runs
    from bengaliai.cli.options import Subcommands
    from bengaliai.inference.ensemble import InferenceConfig


def _run_train(args: argparse.Namespace) -> None:
    from bengaliai.core.config import load_config
    from bengaliai.training.train import TrainConfig, train

    config = load_config(TrainConfig, args.config, args.set)
    scores = train(config, folds=args.fold, resume=args.resume)
    if int(os.environ.get("RANK", "0")) == 0:  # under torchrun every rank returns; one prints
        for fold, score in scores.items():
            print(f"fold {fold}: best validation score {score:.4f}")


def add_train(sub: Subcommands) -> None:
    """``bengaliai train``: train folds into runs/<experiment>/fold<K>."""
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


def _run_oof(args: argparse.Namespace) -> None:
    from bengaliai.evaluation.oof import evaluate_oof

    print(evaluate_oof(args.run, input_dir=args.input).summary())


def add_oof(sub: Subcommands) -> None:
    """``bengaliai oof``: the out-of-fold score and the tuned prior correction."""
    p = sub.add_parser(
        "oof",
        help="score an experiment out of fold and tune the prior correction",
        description="Gather the out-of-fold probabilities of runs/<experiment>/fold*/oof.npz (each image from its "
        "own fold), score them with the competition metric (overall, per component, per fold, and seen and unseen "
        "graphemes apart, each over the classes it holds; held-out graphemes also on every held-out image each "
        "fold's model read), tune the prior-correction alpha and, for runs with the auxiliary grapheme head "
        "(model.aux_graphemes=true) on folds with unseen graphemes, the seen/unseen routing score and threshold, "
        "and write runs/<experiment>/oof.json and per_class_recall.png (the weakest classes). predict and kernel "
        "read the tuned alpha and routing from oof.json.",
    )
    p.add_argument("--run", type=Path, required=True, help="experiment folder runs/<experiment>")
    p.add_argument("--input", type=Path, default=None, help="folder with train.csv and train_folds.csv (default: the run's)")
    p.set_defaults(handler=_run_oof)


def _run_leaderboard(args: argparse.Namespace) -> None:
    from bengaliai.evaluation.leaderboard import collect_leaderboard, format_leaderboard

    print(format_leaderboard(collect_leaderboard(args.runs), args.format))


def add_leaderboard(sub: Subcommands) -> None:
    """``bengaliai leaderboard``: one row per experiment."""
    p = sub.add_parser(
        "leaderboard",
        help="compare experiments: one row each, sorted by out-of-fold score",
        description="One row per experiment under RUNS: model (with its width where not 64), image size, epochs, "
        "folds done, per-fold scores, out-of-fold score with the three recalls, best prior alpha, training time, "
        "training images/s (median over the epochs of every fold), date and git commit. "
        "Out-of-fold figures come from oof.json while it is up to date, else are computed in memory; "
        "the leaderboard writes nothing (`bengaliai oof` writes oof.json). An experiment whose folds no longer "
        "match train.csv or the folds file shows no out-of-fold figures, with a warning.",
    )
    p.add_argument("--runs", type=Path, default=Path("runs"), help="folder of experiments (default: runs)")
    p.add_argument("--format", choices=("table", "markdown", "csv"), default="table", help="output format (default: table)")
    p.set_defaults(handler=_run_leaderboard)


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


def _add_inference_options(p: argparse.ArgumentParser, run_required: bool = True) -> None:
    """The options ``predict`` and ``kernel`` share, so the kernel's submission can equal predict's."""
    p.add_argument(
        "--run", type=Path, required=run_required, help="experiment folder runs/<experiment> (holding fold<K>/best.pt)"
    )
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


def _inference_config(args: argparse.Namespace) -> InferenceConfig:
    from bengaliai.inference.ensemble import InferenceConfig

    return InferenceConfig(
        batch_size=args.batch_size, precision=args.precision, device=args.device, tta=args.tta,
        compile=getattr(args, "compile", False),
    )


def _run_predict(args: argparse.Namespace) -> None:
    from bengaliai.inference.predict import predict

    result = predict(
        args.run, input_dir=args.input, folds=args.folds, out=args.out, config=_inference_config(args),
        alpha=args.alpha, workers=args.workers, block_images=args.block_images, threads=args.threads,
        routing=args.routing,
    )
    print(result.summary())


def add_predict(sub: Subcommands) -> None:
    """``bengaliai predict``: a fold ensemble's submission for the test set."""
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
    p.add_argument("--workers", type=_positive_int, default=default_workers(), help="preprocessing threads")
    p.add_argument("--block-images", type=_positive_int, default=4096, help="raw images decoded at once (memory: 32 KB each)")
    p.add_argument(
        "--threads", type=_positive_int, default=None,
        help="torch threads (default: the CPUs this process may use, by affinity and cgroup quota; on a machine "
        "shared with other jobs, give it the cores that are free)",
    )
    p.set_defaults(handler=_run_predict)


def _run_kernel(args: argparse.Namespace) -> None:
    check_kernel_options(args)
    if args.train:
        run_train_kernel(args)
        return
    from bengaliai.kaggle.kernel import build_kernel
    from bengaliai.kaggle.push import push_kernel

    build = build_kernel(
        args.run, args.out, folds=args.folds, config=_inference_config(args), alpha=args.alpha,
        user=args.user, gpu=args.gpu, machine_shape=args.machine_shape, routing=args.routing,
    )
    print(build.summary())
    if args.push:
        push_kernel(build)


def add_kernel(sub: Subcommands) -> None:
    """``bengaliai kernel``: an internet-off Kaggle kernel for an experiment, or (--train) one that trains it."""
    p = sub.add_parser(
        "kernel",
        help="build (and push) an internet-off Kaggle kernel: inference for an experiment, or --train to train one",
        description="Write OUT/dataset (slim fold checkpoints, inference.json with the ensemble and prior settings, "
        "dataset-metadata.json) and OUT/kernel (inference.py with this package bundled inside, kernel-metadata.json: "
        "competition bengaliai-cv19, internet off). The kernel's submission equals `bengaliai predict` with the same "
        "options. --push uploads the dataset and the kernel with the kaggle package (needs credentials). With --train, "
        "write instead OUT/kernel-metadata.json (GPU T4 x2, internet off) and OUT/train.py, a kernel that prepares the "
        "competition's images, makes the folds and trains the folds of --config on both GPUs with torchrun; its output "
        "is runs/<experiment>/fold<K>/ and train_folds.csv (`bengaliai pull` brings them home).",
    )
    _add_inference_options(p, run_required=False)
    p.add_argument(
        "--out", type=Path, required=True,
        help="build folder (OUT/kernel and OUT/dataset; with --train OUT/kernel-metadata.json and OUT/train.py)",
    )
    p.add_argument("--user", default=None, help="Kaggle user name (default: from KAGGLE_USERNAME or ~/.kaggle/kaggle.json)")
    p.add_argument("--gpu", action="store_true", help="run the kernel on a GPU (a training kernel always does)")
    p.add_argument(
        "--machine-shape", default=None, metavar="SHAPE",
        help="Kaggle GPU machine with --gpu or --train (kernel-metadata.json machine_shape; default NvidiaTeslaT4, "
        "which is the editor's 'GPU T4 x2'). Shapes the Kaggle API documents: NvidiaTeslaT4, NvidiaTeslaP100 (kagglesdk "
        "kernels_api_service.py; kaggle 2.2.4 passes the value on unchecked). Avoid P100: the torch of Kaggle's current "
        "image has no sm_60 kernels.",
    )
    p.add_argument("--push", action="store_true", help="upload the dataset and push the kernel (--train: push the kernel)")
    add_train_kernel_options(p)
    p.set_defaults(handler=_run_kernel)


def _run_demo(args: argparse.Namespace) -> None:
    from bengaliai.cli.demo import run_demo

    print(run_demo(args.workdir, seed=args.seed, workers=args.workers).summary())


def add_demo(sub: Subcommands) -> None:
    """``bengaliai demo``: the whole pipeline on a small synthetic dataset."""
    p = sub.add_parser(
        "demo",
        help="run the whole pipeline on a small synthetic dataset",
        description="synth (6,000 train and 1,200 test images) -> prepare (crop, 64 px) -> folds (5, with 20 "
        "unseen graphemes) -> train (a small ResNet-18, 12 epochs, folds 0 and 1) -> oof (score, prior alpha) -> "
        "predict (2-fold ensemble) -> leaderboard -> kernel build, inside a folder of its own, WORKDIR/demo: data in "
        "demo/input, the run in demo/runs/demo, the submission in demo/submissions/demo.csv, the Kaggle kernel in "
        "demo/kernel; the workflow's input/ and runs/ are left alone. Prints where everything is and the scores "
        "(validation, out of fold, and test against the synthetic labels). Data steps whose outputs already exist "
        "are skipped; the demo run is trained afresh each time.",
    )
    p.add_argument(
        "--workdir", type=Path, default=Path("."), help="working directory; the demo writes only WORKDIR/demo (default: .)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--workers", type=_positive_int, default=default_workers(), help="worker processes/threads")
    p.set_defaults(handler=_run_demo)
