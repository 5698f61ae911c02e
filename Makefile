# One obvious way to set up, run and test the course. Every target creates the
# local virtual environment (.venv) first if it is not there.
#
#   make course      execute every chapter headless (build/course/)
#   make test        unit tests + every chapter through nbval (quick size)
#   make book        the executed chapters as a static site (build/book/_build/html/)
#   make student     student copies of the chapters, solutions removed (build/student/)
#   make lab         JupyterLab on chapters/ with this environment's kernel
#
# Torch is installed first and pinned, as a CPU build by default. For a CUDA
# build, install your own torch into .venv first, or pass for example
#   make setup TORCH_SPEC="torch==2.13.0" TORCH_INDEX="--index-url https://download.pytorch.org/whl/cu126"
# and TORCH_SPEC= (empty) to keep whatever torch .venv already has.

PYTHON      ?= python3
VENV        ?= .venv
BIN         := $(VENV)/bin
TORCH_SPEC  ?= torch==2.13.0
TORCH_INDEX ?=
STAMP       := $(VENV)/.installed

.PHONY: setup course course-quick demo test test-unit test-browser benchmark book student lab clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH_SPEC)" ]; then $(BIN)/python -m pip install -q $(TORCH_INDEX) "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q -e ".[test]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

course: setup
	$(BIN)/fusion-kit course

course-quick: setup
	$(BIN)/fusion-kit course --quick

demo: setup
	$(BIN)/fusion-kit demo

test: setup
	FUSION_KIT_QUICK=1 $(BIN)/python -m pytest

test-unit: setup
	FUSION_KIT_QUICK=1 $(BIN)/python -m pytest tests

test-browser: setup
	FUSION_KIT_QUICK=1 $(BIN)/python -m pytest tests -m browser

benchmark: setup
	$(BIN)/python benchmarks/fit_overhead.py

book: setup
	$(BIN)/fusion-kit book

student: setup
	$(BIN)/fusion-kit student

lab: setup
	$(BIN)/fusion-kit lab

clean:
	rm -rf build .pytest_cache
