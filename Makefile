# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the package with its CPU serving stack and test tools, and run
# `affect-mllm doctor --fix` (removes CUDA-linked torchaudio/torchcodec, installs the torchvision import hook).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test style quality bench tiny-base clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[cpu,dev,bench]"
	$(BIN)/affect-mllm doctor --fix --skip-vllm
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/affect-mllm demo $(DEMO_OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15 $(PYTEST_ARGS)

# Rebuild the committed perception-pretrained tiny bases (about an hour each on 2 CPU cores; CI never runs it).
tiny-base: $(STAMP)
	$(BIN)/affect-mllm train pretrain-tiny --config recipes/tiny-omni/pretrain.yaml
	$(BIN)/affect-mllm train pretrain-tiny --config recipes/tiny-vl/pretrain.yaml
	$(BIN)/affect-mllm train pretrain-vocab --config recipes/tiny-omni/pretrain_vocab.yaml
	$(BIN)/affect-mllm train pretrain-vocab --config recipes/tiny-vl/pretrain_vocab.yaml

# Speed, memory and learning figures; each script ends with one JSON line.
bench: $(STAMP)
	for script in media synthfacs rewards learnability serving learning grpo_rollouts synthesis; do \
		$(BIN)/python benchmarks/$$script.py || exit 1; done

style: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

quality: $(STAMP)
	$(BIN)/ruff check .

clean-demo:
	rm -rf $(DEMO_OUT)
