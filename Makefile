# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create .venv if missing, install the package with its CPU serving stack, web page and test tools, and run
# `affect-mllm doctor --fix` (removes CUDA-linked torchaudio/torchcodec, installs the torchvision import hook).
# `make test` also installs Debian's chromium for the web page's browser test (Playwright drives it; no browser
# is downloaded); without root or sudo that one test is skipped and says why.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo_out
PYTEST_ARGS ?=

.PHONY: demo test browser style quality bench tiny-base clean-demo

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e ".[cpu,dev,bench,web]"
	$(BIN)/affect-mllm doctor --fix --skip-vllm
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/affect-mllm demo $(DEMO_OUT)

test: $(STAMP) browser
	$(BIN)/python -m pytest -q --durations=15 $(PYTEST_ARGS)

browser:
	@test -x /usr/bin/chromium || { \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo -n"; \
		else echo "no root or sudo: the browser test will be skipped (apt-get install chromium)"; exit 0; fi; \
		$$SUDO apt-get install -y --no-install-recommends chromium >/dev/null 2>&1 || \
		{ $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } || \
		echo "chromium could not be installed: the browser test will be skipped"; }

# Rebuild the committed perception-pretrained tiny bases (about an hour each on 2 CPU cores; CI never runs it).
tiny-base: $(STAMP)
	$(BIN)/affect-mllm train pretrain-tiny --config recipes/tiny-omni/pretrain.yaml
	$(BIN)/affect-mllm train pretrain-tiny --config recipes/tiny-vl/pretrain.yaml
	$(BIN)/affect-mllm train pretrain-vocab --config recipes/tiny-omni/pretrain_vocab.yaml
	$(BIN)/affect-mllm train pretrain-vocab --config recipes/tiny-vl/pretrain_vocab.yaml

# Speed, memory and learning figures; each script ends with one JSON line (hours on 2 CPU cores; the README names
# each script's run time). benchmarks/gpu_check.py needs a GPU and is not in this list.
bench: $(STAMP)
	for script in media synthfacs rewards learnability serving hardening learning grpo_rollouts synthesis \
			timeline modality face_crop preflight_check real_width; do \
		$(BIN)/python benchmarks/$$script.py || exit 1; done

style: $(STAMP)
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

quality: $(STAMP)
	$(BIN)/ruff check .

clean-demo:
	rm -rf $(DEMO_OUT)
