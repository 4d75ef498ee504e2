# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch is pinned here (not in pyproject) so a fresh machine never pulls a CUDA build.
TORCH_PIN ?= torch==2.13.0

.PHONY: demo test lint install install-test clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH_PIN)
	$(PY) -m pip install -q -e .
	touch $@

# The test extra adds pytest, ruff, the metric references, peft (LoRA tests) and DeepSpeed (tests/test_deepspeed.py); the demo
# does not need them (and accelerate imports DeepSpeed, with a start-up warning, wherever it is installed).
$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/seqgan-hf train --config recipes/oracle_quick.yaml --overwrite_output_dir true

lint: install-test
	$(VENV)/bin/ruff check seqgan_hf tests benchmarks

test: install-test lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
