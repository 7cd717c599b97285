# Two commands on a fresh machine: `make demo` and `make test`.
# The interpreter that creates .venv (read only when .venv is created; `make clean` removes it):
# Python 3.11 by default, another with e.g. `make PYTHON=python3.12 demo`.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

export NO_ALBUMENTATIONS_UPDATE := 1

.PHONY: venv demo test test-all bench gpu-wheels clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/bengaliai demo --workdir .

test: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -q

# Two of the scripts in benchmarks/ (benchmarks/README.md lists them all). Run it on an idle machine.
bench: $(STAMP)
	@echo "make bench: 2 of the scripts in benchmarks/ (all of them, and what each needs: benchmarks/README.md)"
	@echo "1. bench_prepare.py: first generates one full-size image file (50,210 images, about 1.6 GB) in a temporary"
	@echo "   folder, then times prepare (two ways) against pd.read_parquet, 3 runs each: 3-5 min, up to 6.5 GiB of RAM"
	@echo "2. bench_synth.py: synth of 7,000 images with 1 and 2 workers, then rendering alone: about 1 min"
	$(PY) benchmarks/bench_prepare.py
	$(PY) benchmarks/bench_synth.py

# .whl/: the wheels benchmarks/gpu_check.sh installs on the GPU machine, which reaches no package registry:
# exactly the packages its image lacks (benchmarks/gpu_steps/wheels.py, CARRIED), at .venv's versions, built
# for its Python 3.12 on linux x86_64, each without its dependencies (the image has the rest). A failed
# download leaves the old folder as it was.
GPU_PLATFORMS := manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64
gpu-wheels: $(STAMP)
	rm -rf .whl.tmp
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		$(addprefix --platform ,$(GPU_PLATFORMS)) -d .whl.tmp $$($(PY) benchmarks/gpu_steps/wheels.py requirements)
	$(PY) benchmarks/gpu_steps/wheels.py check .whl.tmp
	rm -rf .whl && mv .whl.tmp .whl
	@ls .whl

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
