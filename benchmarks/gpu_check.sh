#!/usr/bin/env bash
# The one command to run on a lent GPU machine: installs the carried wheels, then runs
# benchmarks/gpu_check.py (all checks, about 7 minutes on an H100/H200; the steps are in benchmarks/gpu_steps/)
# into $OUT.
#
# 1. Here, once per checkout: `make gpu-wheels` (the wheels go to .whl/, which .gitignore ignores; about 7.7 MB).
#    The device image (Python 3.12, see /work/.library/device/KINDS.md) has torch, numpy, scipy,
#    scikit-learn, opencv-python-headless, pyyaml, pandas, pyarrow, matplotlib, pillow, tqdm, psutil,
#    but not these: albumentations and what it needs beyond that list (albucore pinned by it,
#    pydantic + pydantic-core + annotated-types + typing-inspection, stringzilla + simsimd imported by
#    albucore), iterative-stratification (folds), and typing-extensions >= 4.16 (pydantic needs it;
#    installed there only when the image's is older, see below). benchmarks/gpu_steps/wheels.py lists
#    them (CARRIED); the versions are those of .venv. The script refuses at once, in one line, when .whl/
#    is missing, empty, lacks one of them or holds two versions of one, before any minute is spent on
#    installing; `bash benchmarks/gpu_check.sh --check-wheels` runs only that check (here too).
#
# 2. The device tool's call (nothing else to prepare; the package travels as src/, PYTHONPATH=src):
#
#    run(command="bash benchmarks/gpu_check.sh", carry=[".whl"], timeout_s=540)
#
#    The script stops its steps by --budget-s (450 s by default) and rewrites the table after every
#    check, so a run cut short still returns what it measured. Extra arguments are passed on, e.g.
#    a second, shorter try of some steps: command="bash benchmarks/gpu_check.sh --steps resume,compile".
#
# 3. The reply's files_at holds gpu_check.md (the table), gpu_check.json (raw numbers, tracebacks)
#    and gpu_check.log (everything printed). Copy the table into BENCHMARKS.md.
set -o pipefail
python3 "$(dirname "$0")/gpu_steps/wheels.py" check .whl || exit 1
if [ "${1:-}" = "--check-wheels" ]; then
    exit 0
fi
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
wheels=(.whl/*.whl)
if python3 -c 'import importlib.metadata as m, sys; v = m.version("typing_extensions").split("."); sys.exit(0 if (int(v[0]), int(v[1])) >= (4, 16) else 1)' 2>/dev/null; then
    wheels=("${wheels[@]/*typing_extensions-*/}")  # the image's is new enough: keep it
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site ${wheels[@]} || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
PYTHONUNBUFFERED=1 python3 benchmarks/gpu_check.py --out "$OUT/gpu_check.md" "$@" 2>&1 | tee "$OUT/gpu_check.log"
